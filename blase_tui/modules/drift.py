"""Drift tests whose false-alarm rate is the one asked for, at every sample size (``Monitor`` uses them).

Fixed thresholds (PSI > 0.1, a p-value of 0.05 per feature) raise a different share of false alarms at every
sample size and bin count, and twenty features tested at 5% each raise one most days. Here every feature
gets a test whose null distribution is known for the actual sizes, and the decision is taken on its p-value
with Holm's correction across the features, so the chance that *any* feature is flagged when nothing changed
is at most ``alpha`` (``tests/test_drift_calibration.py`` measures it on 400 no-change trials a size).

- **numeric**: the two-sample Kolmogorov-Smirnov statistic between the reference sample the priors keep and
  the live values; its p-value at the effective size ``n*m/(n+m)``: the exact distribution
  (``scipy.stats.kstwo``) up to 40, above that the Kolmogorov limit with Stephens' small-sample correction
  (``sqrt(n) + 0.12 + 0.11/sqrt(n)``), within 2% of the exact p-value from 40 on and ~50x faster. The plain
  limit would be conservative at small sizes (fewer alarms than asked for).
  Also reported, not decided on: PSI over the reference deciles with its calibrated threshold
  ``(1/n + 1/m) * chi2_{1-alpha}(B-1)`` (PSI under no change is about that chi-square), and the Wasserstein
  distance divided by the reference's standard deviation.
- **categorical** (and numeric priors given only as a histogram): the chi-squared test of homogeneity between
  the reference counts and the live counts (categories expected fewer than 5 times pooled); also reported:
  the Jensen-Shannon distance.
- **numeric with ties** (counts, ratings, a mass at zero: fewer distinct reference values than half the
  sample): KS assumes continuous values and is conservative on ties (about 1% of alarms at 5%), so these get
  chi-squared on bins cut by the reference alone (:func:`tied_result`).
- **missing values**: each feature's missing share against the priors', Fisher's exact test with the mid-p
  (:func:`missing_pvalue`); a feature the live data does not have at all is flagged (:func:`absent`).
- **image embeddings**: MMD with a permutation null (:func:`mmd_test`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class FeatureDrift:
    feature: str
    test: str  # "ks" or "chi2"
    statistic: float
    p_value: float
    n: int  # live values tested
    m: int  # reference values
    drifted: bool = False
    adjusted_alpha: float | None = None  # the level Holm's step compared this p-value with
    extra: dict[str, float] = field(default_factory=dict)  # psi, psi_threshold, wasserstein, js

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Distribution:
    """One feature's values as a drift test plugin sees them (``blase.monitors``): ``values`` with how often each
    was seen, ``weights``. Numeric: the reference's distinct values, and the live values counted on them (a live
    value equal to a reference value at that value, the others at the mean of those between two neighbours), so a
    report over millions of rows holds no more than the reference. Categorical: each category once, as text."""

    kind: str  # "numeric" or "categorical"
    values: np.ndarray
    weights: np.ndarray

    @property
    def n(self) -> int:
        return int(round(float(self.weights.sum())))


def ks_test(reference_sorted: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value (``reference_sorted``: the reference sample, sorted)."""
    live = np.sort(live)
    m, n = len(reference_sorted), len(live)
    points = np.concatenate([reference_sorted, live])
    cdf_ref = np.searchsorted(reference_sorted, points, side="right") / m
    cdf_live = np.searchsorted(live, points, side="right") / n
    d = float(np.max(np.abs(cdf_ref - cdf_live)))
    return d, ks_pvalue(d, n, m)


def ks_pvalue(d: float, n: int, m: int) -> float:
    """The p-value of a two-sample KS statistic ``d`` between ``n`` and ``m`` values."""
    effective = n * m / (n + m)
    if effective <= 40:  # the exact distribution (fast for so few values)
        from scipy.stats import kstwo

        return float(kstwo.sf(d, max(1, int(round(effective)))))
    # beyond, the limit with Stephens' correction: within a few thousandths of the exact p-value, and ~50x
    # faster than kstwo (which takes up to 3 ms a test from 100 values on). scipy.special.kolmogorov is
    # kstwobign.sf, bit for bit, without importing scipy.stats (0.65 s, against scipy.special's 0.15 s: as long
    # as a drift report's reading)
    from scipy.special import kolmogorov

    root = np.sqrt(effective)
    return float(kolmogorov((root + 0.12 + 0.11 / root) * d))


class NumericReference:
    """A numeric feature's reference sample, prepared once: its distinct values (the grid live values are
    counted on), its CDF there, its decile edges (for PSI) and its spread."""

    def __init__(self, sample: np.ndarray, bins: int = 10) -> None:
        ordered = np.sort(np.asarray(sample, dtype=np.float64))
        self.m = len(ordered)
        self.grid, counts = np.unique(ordered, return_counts=True)
        self.cdf = np.cumsum(counts) / self.m  # F_ref at each grid value
        self.counts = counts
        # PSI's bins: cut at reference values (order statistics), so live counts on the grid fall in one bin each
        self.edges = np.unique(ordered[(np.arange(1, bins) * self.m) // bins])
        self.bin_counts = np.bincount(np.searchsorted(self.edges, ordered, side="right"), minlength=len(self.edges) + 1)
        self.spread = float(np.std(ordered)) or 1.0
        self._lookup: _Lookup | None = None  # built where live values are first counted (not shipped to workers)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lookup"] = None  # up to 512 KiB: a worker builds its own in a millisecond
        return state

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each of the finite values ``x`` goes on the grid, ``np.searchsorted(grid, x, side="left")``
        exactly (about 10x faster for a large grid: ``_Lookup``), and the grid value there (inf past the end)."""
        if self._lookup is None:
            self._lookup = _Lookup(self.grid)
        return self._lookup.locate(x)


LOOKUP_MAX = 1 << 17  # buckets of a lookup table at most (256 KiB a feature for up to 65,535 grid values)
CHUNK = 1 << 17  # live values counted at a time (a 256 MiB budget's batch in one go)
CHUNK_BYTES = 64 * CHUNK  # what counting a chunk holds at once (its temporaries), 8 MiB
STEPS = 4  # grid values of a crowded bucket stepped over one at a time before a binary search


class _Lookup:
    """``searchsorted`` on a sorted grid by a table instead of a binary search. Values are cut into uniform
    buckets, ``floor((x - lo) * scale)`` clipped to ``[0, top]``; the table holds, per bucket, how many grid
    values lie in lower buckets. The bucket function is monotone (each step rounds monotonically) and grid values
    go through the same operations, so every grid value of a lower bucket is below ``x`` and every one of a
    higher bucket above it: ``x``'s place is the table's entry plus the grid values of its own bucket below it.
    Buckets are 4-8 per grid value over the central 99.6% of the grid (more where that leaves a quarter of the
    grid sharing buckets), so most hold at most one grid value: one comparison settles them. Values in a crowded
    bucket step over its grid values one comparison at a time, and after ``STEPS`` (the tails, a heavy tail's
    dense part) go to ``np.searchsorted``, few of them. No float tolerance anywhere: the result is bit for bit
    ``searchsorted``'s (tests/test_monitor.py checks heavy tails, ties, extreme magnitudes, neighbours)."""

    def __init__(self, grid: np.ndarray) -> None:
        k = len(grid)
        self.grid = grid
        self.padded = np.append(grid, np.inf)  # the value at place k: above every finite x
        self.start: np.ndarray | None = None
        cut = k // 500
        self.lo = float(grid[cut]) if k else 0.0
        width = float(grid[k - 1 - cut]) - self.lo if k else 0.0
        if k < 64 or not (np.isfinite(width) and width > 0):  # a small grid: the binary search is as fast
            return
        size = 1 << max(10, int(np.ceil(np.log2(4 * k))))
        while True:
            self.scale, self.top = size / width, float(size + 1)
            if not np.isfinite(self.scale):
                return
            buckets = self._bucket(grid)
            counts = np.bincount(buckets, minlength=size + 2)  # grid values per bucket
            if size >= LOOKUP_MAX or np.mean(counts[buckets] > 1) < 0.25:
                break
            size *= 2
        # grid values in lower buckets, in the narrowest integers that hold k: the table is read at random, and
        # a smaller one stays in the cache (uint16: 128 KiB for 10,000 values, 20% faster than int32)
        narrow = np.uint16 if k < 2**16 else np.int32 if k < 2**31 else np.int64
        self.start = np.zeros(size + 2, dtype=narrow)
        self.start[1:] = np.cumsum(counts[:-1])

    def _bucket(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            y = np.subtract(x, self.lo)
            np.multiply(y, self.scale, out=y)
        np.clip(y, 0.0, self.top, out=y)  # +-inf too (x - lo overflowing): the end buckets
        return y.astype(np.intp)  # >= 0: truncation is floor

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.start is None:
            at = np.searchsorted(self.grid, x, side="left")
            return at, self.padded.take(at)
        at = self.start.take(self._bucket(x)).astype(np.intp)
        at += self.padded.take(at) < x  # a bucket's one grid value below x
        there = self.padded.take(at)
        crowded = there < x  # more than one: step over them (few values), then a binary search (fewer still)
        if crowded.any():
            which = np.flatnonzero(crowded)
            part, place = x[which], at[which] + 1
            for _ in range(STEPS):
                value = self.padded.take(place)
                further = value < part
                if not further.any():
                    break
                place += further
            else:
                value = self.padded.take(place)
                rest = np.flatnonzero(value < part)
                place[rest] = np.searchsorted(self.grid, part[rest], side="left")
                value[rest] = self.padded.take(place[rest])
            at[which], there[which] = place, value
        return at, there


class NumericLive:
    """Live values of one numeric feature, reduced to counts on the reference's grid: how many equal each
    reference value, how many (and their sum) lie between two neighbours. From them the KS statistic and PSI of
    everything added are exact, and the Wasserstein distance too except inside an interval where the two
    distribution functions cross (there it is interpolated). Memory is the reference's size, whatever the
    number of live values: a drift report over 10 million rows streams."""

    def __init__(self, reference: NumericReference) -> None:
        self.ref = reference
        k = len(reference.grid)
        self.equal = np.zeros(k, dtype=np.int64)
        self.between = np.zeros(k + 1, dtype=np.int64)  # [i]: values between grid[i-1] and grid[i] (open)
        self.sums = np.zeros(k + 1)
        self.n = 0
        self.low, self.high = np.inf, -np.inf  # the live values' range (for plots)

    def add(self, values: Any) -> None:
        x = np.asarray(values)
        if x.dtype == object:  # pandas' nullable numbers and booleans: NA -> NaN, unreadable values -> NaN
            import pandas as pd

            x = pd.to_numeric(pd.Series(x.ravel()), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        x = np.asarray(x, dtype=np.float64).ravel()
        if not len(x):
            return
        low, high = float(x.min()), float(x.max())  # NaN propagates: both finite, every value is
        if not (np.isfinite(low) and np.isfinite(high)):
            x = x[np.isfinite(x)]
            if not len(x):
                return
            low, high = float(x.min()), float(x.max())
        k = len(self.ref.grid)
        for begin in range(0, len(x), CHUNK):  # in pieces: the temporaries stay bounded (CHUNK_BYTES)
            part = x[begin:begin + CHUNK]
            at, there = self.ref.locate(part)
            hit = there == part
            if hit.any():  # ties with reference values: one count per (place, equal or not)
                pair = at * 2
                pair += hit  # 2i: between grid[i-1] and grid[i]; 2i + 1: equal to grid[i]
                counts = np.bincount(pair, minlength=2 * k + 2)
                self.equal += counts[1:2 * k:2]
                self.between += counts[0::2]
                self.sums += np.bincount(pair, weights=part, minlength=2 * k + 2)[0::2]
            else:
                self.between += np.bincount(at, minlength=k + 1)
                self.sums += np.bincount(at, weights=part, minlength=k + 1)
        self.n += len(x)
        self.low, self.high = min(self.low, low), max(self.high, high)

    def merge(self, other: NumericLive) -> None:
        """Add the counts of ``other`` (the same reference): what a worker found in its files."""
        self.equal += other.equal
        self.between += other.between
        self.sums += other.sums
        self.n += other.n
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)

    def _live_cdf(self) -> np.ndarray:
        return np.cumsum(self.between[:-1] + self.equal) / self.n  # F_live at each grid value

    def ks(self) -> tuple[float, float]:
        live = self._live_cdf()
        before_next = live + self.between[1:] / self.n  # F_live just before the next grid value
        d = max(float(self.between[0] / self.n), float(np.max(np.abs(self.ref.cdf - live))),
                float(np.max(np.abs(self.ref.cdf - before_next))))
        return d, ks_pvalue(d, self.n, self.ref.m)

    def psi(self, alpha: float = 0.05) -> tuple[float, float]:
        """PSI over the reference's decile bins, and the value PSI stays under with probability ``1 - alpha``
        when nothing changed (``(1/n + 1/m) * chi2_{1-alpha}(B - 1)``)."""
        from scipy.special import gammaincinv  # chi2.ppf(q, k) is 2 * gammaincinv(k / 2, q), bit for bit

        edges, grid = self.ref.edges, self.ref.grid
        live_counts = np.bincount(np.searchsorted(edges, grid, side="right"), weights=self.equal,
                                  minlength=len(edges) + 1)
        below = np.append(np.searchsorted(edges, grid, side="left"), len(edges))  # a value between grid[i-1], grid[i]
        live_counts = live_counts + np.bincount(below, weights=self.between, minlength=len(edges) + 1)
        ref_counts = self.ref.bin_counts
        p = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * len(ref_counts))
        q = (live_counts + 0.5) / (live_counts.sum() + 0.5 * len(live_counts))
        value = float(np.sum((q - p) * np.log(q / p)))
        quantile = 2 * gammaincinv(max(1, len(ref_counts) - 1) / 2, 1 - alpha)  # chi2_{1-alpha}(B - 1)
        threshold = float((1 / self.n + 1 / self.ref.m) * quantile)
        return value, threshold

    def wasserstein(self) -> float:
        """The Wasserstein-1 distance (the area between the two distribution functions), in units of the
        reference's standard deviation."""
        grid, n = self.ref.grid, self.n
        live = self._live_cdf()
        total = (self.between[0] * grid[0] - self.sums[0]) / n  # below the reference: F_ref = 0
        total += (self.sums[-1] - self.between[-1] * grid[-1]) / n  # above it: F_ref = 1
        if len(grid) > 1:
            width = np.diff(grid)
            start = live[:-1] - self.ref.cdf[:-1]  # F_live - F_ref where each interval starts ...
            end = start + self.between[1:-1] / n  # ... and just before it ends
            signed = start * width + (self.between[1:-1] * grid[1:] - self.sums[1:-1]) / n
            crossing = (start < 0) & (end > 0)
            area = np.where(start >= 0, signed, -signed)
            with np.errstate(divide="ignore", invalid="ignore"):
                interpolated = width * (start ** 2 + end ** 2) / (2 * (end - start))
            total += float(np.sum(np.where(crossing, interpolated, area)))
        return float(total) / self.ref.spread

    def distributions(self) -> tuple[Distribution, Distribution]:
        """The reference and what was added, for a drift test plugin (:class:`Distribution`)."""
        between = self.between > 0
        values = np.concatenate([self.ref.grid[self.equal > 0], self.sums[between] / self.between[between]])
        weights = np.concatenate([self.equal[self.equal > 0], self.between[between]]).astype(np.float64)
        order = np.argsort(values, kind="stable")
        reference = Distribution("numeric", self.ref.grid, self.ref.counts.astype(np.float64))
        return reference, Distribution("numeric", values[order], weights[order])

    def result(self, name: str, alpha: float) -> FeatureDrift:
        value, threshold = self.psi(alpha)
        extra = {"psi": value, "psi_threshold": threshold, "wasserstein": self.wasserstein()}
        if tied(self.ref):  # counts and mass points: chi-squared on the reference's own bins, not KS
            drift = tied_result(self, name, alpha)
            drift.extra.update(extra)
            return drift
        d, p = self.ks()
        return FeatureDrift(name, "ks", d, p, self.n, self.ref.m, extra=extra)


class CountsLive:
    """Live values of a categorical feature (or of a numeric one whose priors are a histogram, counted on its
    bins), tested with chi-squared against the reference counts."""

    def __init__(self, reference_counts: dict[Any, float], edges: list[float] | None = None) -> None:
        self.reference = reference_counts
        self.edges = None if edges is None else np.asarray(edges, dtype=np.float64)
        self.counts: dict[Any, float] = {}
        self.n = 0

    def add(self, values: Any) -> None:
        if self.edges is not None:
            x = np.asarray(values, dtype=np.float64).ravel()
            x = x[np.isfinite(x)]
            which = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, len(self.edges) - 2)
            found = dict(enumerate(np.bincount(which, minlength=len(self.edges) - 1).tolist()))
            self.n += len(x)
        else:
            import pandas as pd

            series = pd.Series(np.asarray(values, dtype=object).ravel()).dropna()
            found = series.astype(str).value_counts().to_dict()
            self.n += len(series)
        for key, count in found.items():
            self.counts[key] = self.counts.get(key, 0) + count

    def merge(self, other: CountsLive) -> None:
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.n += other.n

    def distributions(self) -> tuple[Distribution, Distribution]:
        """The reference and what was added, for a drift test plugin (:class:`Distribution`); a numeric feature
        whose priors are a histogram is categorical here (its bins, numbered)."""
        def of(counts: dict[Any, float]) -> Distribution:
            keys = sorted(counts, key=str)
            return Distribution("categorical", np.array([str(k) for k in keys], dtype=object),
                                np.array([float(counts[k]) for k in keys]))

        return of(self.reference), of(self.counts)

    def result(self, name: str, alpha: float) -> FeatureDrift:
        stat, p, js = chi2_test(self.reference, self.counts)
        return FeatureDrift(name, "chi2", stat, p, self.n, int(sum(self.reference.values())), extra={"js": js})


def chi2_test(reference_counts: dict[str, float], live_counts: dict[str, float]) -> tuple[float, float, float]:
    """Chi-squared homogeneity test of two count tables; ``(statistic, p-value, Jensen-Shannon distance)``.
    Categories expected fewer than 5 times in either sample are pooled into one."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2

    keys = sorted(set(reference_counts) | set(live_counts), key=str)
    ref = np.array([float(reference_counts.get(k, 0)) for k in keys])
    live = np.array([float(live_counts.get(k, 0)) for k in keys])
    with np.errstate(invalid="ignore"):  # rounding can leave a tiny negative under its square root: 0
        js = float(np.nan_to_num(jensenshannon(ref / max(ref.sum(), 1), live / max(live.sum(), 1), base=2))) \
            if ref.sum() and live.sum() else 0.0
    total = ref + live
    share_ref, share_live = ref.sum() / total.sum(), live.sum() / total.sum()
    small = (total * min(share_ref, share_live)) < 5
    if small.any():
        ref = np.append(ref[~small], ref[small].sum())
        live = np.append(live[~small], live[small].sum())
        keep = (ref + live) > 0
        ref, live = ref[keep], live[keep]
    if len(ref) < 2:
        return 0.0, 1.0, js
    table = np.vstack([ref, live])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, len(ref) - 1)), js


def holm(results: list[FeatureDrift], alpha: float) -> list[FeatureDrift]:
    """Mark ``drifted`` by Holm's step-down procedure: the chance that any feature is flagged when none
    drifted is at most ``alpha``, whatever the dependence between features."""
    order = sorted(range(len(results)), key=lambda i: results[i].p_value)
    k = len(results)
    still = True
    for rank, i in enumerate(order):
        level = alpha / (k - rank)
        results[i].adjusted_alpha = level
        if still and results[i].p_value <= level:
            results[i].drifted = True
        else:
            still = False
    return results


# ------------------------------------------------------------------------------------- tied (count) features
TIED_BINS = 20  # bins of a tied feature's chi-squared test (atoms heavier than a bin keep their own)


def tied(reference: NumericReference) -> bool:
    """Whether a numeric feature's reference has so many ties (counts, ratings, a mass at zero) that KS, which
    assumes continuous values, would be conservative: fewer distinct values than half the sample."""
    return len(reference.grid) < 0.5 * reference.m


def tied_result(live: NumericLive, name: str, alpha: float) -> FeatureDrift:
    """Chi-squared test of a tied feature on bins cut by the reference alone: consecutive reference values are
    gathered until a bin holds ``1/TIED_BINS`` of the sample, so a value heavier than that (0 of a count) is a bin
    of its own. Live values between two reference values fall in the bin of the upper one, values beyond the
    reference's range in the end bins and, when there are any, are also tested on their own (a constant
    reference against live values that all differ). Calibrated where KS on tied values raised almost no alarm."""
    ref = live.ref
    counts = np.diff(np.concatenate([[0.0], ref.cdf])) * ref.m
    start = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    _, which = np.unique(np.floor(start / (ref.m / TIED_BINS)), return_inverse=True)
    bins = int(which.max()) + 1
    reference_counts = np.bincount(which, weights=counts, minlength=bins)
    per_grid = (live.equal + live.between[:-1]).astype(np.float64)  # between grid[i-1] and grid[i]: grid[i]'s bin
    live_counts = np.bincount(which, weights=per_grid, minlength=bins)
    live_counts[-1] += live.between[-1]
    stat, p, js = chi2_test(dict(enumerate(reference_counts.tolist())), dict(enumerate(live_counts.tolist())))
    outside = int(max(live.between[0], live.between[-1]))
    if outside:
        # values below the reference's least or above its largest (a 5 where the reference only had 0s and 1s):
        # when nothing changed, all m + n values are exchangeable, and k live values beyond one end of the
        # reference have probability C(n, k) / C(n + m, k) at most (ties only make it less likely); doubled for
        # the two ends. The feature's p-value is the smaller of the two tests, doubled (Bonferroni)
        from scipy.special import gammaln

        n, m, k = live.n, ref.m, outside
        log_p = gammaln(n + 1) - gammaln(n - k + 1) - gammaln(n + m + 1) + gammaln(n + m - k + 1)
        p = min(1.0, 2 * min(p, 2 * float(np.exp(log_p))))
    return FeatureDrift(name, "chi2", stat, p, live.n, ref.m, extra={"js": js, "bins": float(bins)})


# ------------------------------------------------------------------------------------------- missing values
class MissingLive:
    """How many live values of a feature are missing (NaN, None), to test against the priors' share."""

    def __init__(self, reference_missing: int, reference_total: int) -> None:
        self.reference_missing, self.reference_total = int(reference_missing), int(reference_total)
        self.missing = 0
        self.n = 0

    def add(self, values: Any) -> None:
        array = np.asarray(values)
        if array.dtype.kind == "f":  # as the priors count: not finite (NaN, inf); one sum finds a column without
            missing = int(np.count_nonzero(~np.isfinite(array))) if array.size and not np.isfinite(array.sum()) \
                else 0
        elif array.dtype.kind in "biu":
            missing = 0
        else:
            import pandas as pd

            missing = int(pd.isna(pd.Series(array.ravel(), dtype=object)).sum())
        self.missing += missing
        self.n += int(array.size)

    def merge(self, other: MissingLive) -> None:
        self.missing += other.missing
        self.n += other.n

    def informative(self) -> bool:
        """Whether there is anything to test: some value missing in the reference or live."""
        return self.n > 0 and (self.reference_missing > 0 or self.missing > 0)

    def result(self, name: str) -> FeatureDrift:
        p = missing_pvalue(self.reference_missing, self.reference_total, self.missing, self.n)
        share = self.missing / self.n
        ref_share = self.reference_missing / max(self.reference_total, 1)
        drift = FeatureDrift(name, "missing", share - ref_share, p, self.n, self.reference_total,
                             extra={"missing_share": share, "reference_missing_share": ref_share})
        return drift


def missing_pvalue(ref_missing: int, ref_total: int, live_missing: int, live_total: int) -> float:
    """Two-sided mid-p of Fisher's exact test on the 2x2 table of missing / present values (reference, live):
    the hypergeometric probability of tables less likely than the one seen, plus half of those as likely. Exact
    at 100 rows as at a million (the mid-p keeps the discrete test from being conservative)."""
    from scipy.stats import hypergeom

    total, missing = ref_total + live_total, ref_missing + live_missing
    if total == 0 or missing in (0, total):
        return 1.0
    low, high = max(0, missing - ref_total), min(missing, live_total)
    support = np.arange(low, high + 1)
    probs = hypergeom.pmf(support, total, missing, live_total)
    seen = float(hypergeom.pmf(live_missing, total, missing, live_total))
    tol = seen * 1e-7
    p = float(probs[probs < seen - tol].sum() + 0.5 * probs[np.abs(probs - seen) <= tol].sum())
    return min(1.0, max(p, 0.0))


def absent(name: str, reference_total: int) -> FeatureDrift:
    """A feature of the priors the live data does not have at all (a column gone): flagged, whatever the rest."""
    return FeatureDrift(name, "missing", 1.0, 0.0, 0, reference_total, extra={"missing_share": 1.0, "absent": 1.0})


# ------------------------------------------------------------------------------------- image embeddings
PERMUTATIONS = 999
MMD_LIVE = 500  # live embeddings tested at most (a seeded sample of a bigger batch)


def mmd_test(reference: np.ndarray, live: np.ndarray, bandwidth: float, *, permutations: int = PERMUTATIONS,
             seed: int = 0) -> tuple[float, float]:
    """Maximum mean discrepancy between two samples of vectors (RBF kernel of width ``bandwidth``) and its
    permutation p-value ``(1 + #{permuted >= seen}) / (1 + permutations)``: exact at every size, whatever the
    distribution, because under no change the labels "reference" and "live" are exchangeable."""
    rng = np.random.default_rng(seed)
    reference, live = np.asarray(reference, dtype=np.float64), np.asarray(live, dtype=np.float64)
    if len(live) > MMD_LIVE:
        live = live[np.sort(rng.choice(len(live), MMD_LIVE, replace=False))]
    both = np.concatenate([reference, live])
    m, n = len(reference), len(live)
    squared = np.sum(both ** 2, axis=1)
    kernel = np.exp(-np.maximum(squared[:, None] + squared[None, :] - 2 * both @ both.T, 0) / (2 * bandwidth ** 2))
    weights = np.empty((m + n, permutations + 1))
    weights[:, 0] = np.r_[np.full(m, 1 / m), np.full(n, -1 / n)]
    for j in range(1, permutations + 1):
        weights[:, j] = rng.permutation(weights[:, 0])
    statistics = np.einsum("ij,ij->j", kernel @ weights, weights)  # w' K w per column: the (biased) MMD^2
    seen = statistics[0]
    p = (1 + int(np.sum(statistics[1:] >= seen - 1e-12))) / (1 + permutations)
    return float(max(seen, 0.0)), float(p)


def mmd_result(name: str, reference: np.ndarray, live: np.ndarray, bandwidth: float) -> FeatureDrift:
    statistic, p = mmd_test(reference, live, bandwidth)
    return FeatureDrift(name, "mmd", statistic, p, len(live), len(reference))
