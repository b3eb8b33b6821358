"""A stand-in for an alert stream (the seed polls Fink's ZTF stream every hour): alert-like records written as
Parquet, with a light curve, a cutout stamp and a few scores per alert, and features computed from them.

Three kinds of source, which a person can tell apart by eye on the labelling screen:

- real transients: a smooth rise then a slower fade, a point-like stamp, a high detection score;
- bogus detections: a flat, noisy light curve, a streak or a dipole in the stamp, a lower detection score;
- variable stars: a periodic light curve around a constant mean, a point-like stamp.

The truth is written beside the pool (``truth.csv``), never inside it: the model only sees the features, and
the sample's training step uses the truth only to report how good each round's model is.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

KINDS = ("real", "bogus", "varstar")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
POINTS = 16
FEATURES = ["drb", "sgscore", "ndet", "amplitude", "rise_rate", "fade_rate", "scatter", "periodicity",
            "stamp_peak", "stamp_elongation"]


def _stamp(rng: np.random.Generator, kind: str, size: int = 21) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    noise = rng.normal(40, 12, (size, size))
    roll = rng.random()
    if kind == "bogus" and roll < 0.35:  # a streak (satellite, cosmic ray)
        angle = rng.uniform(0, np.pi)
        dist = np.abs(x * np.sin(angle) - y * np.cos(angle))
        img = noise + 180 * np.exp(-(dist**2) / 1.5)
    elif kind == "bogus" and roll < 0.7:  # a dipole: a bad subtraction
        img = noise + 170 * np.exp(-((x - 2) ** 2 + y**2) / 4) - 120 * np.exp(-((x + 2) ** 2 + y**2) / 4)
    else:  # a point source (some bogus ones look like one too: the hard cases)
        width = rng.uniform(2.5, 4.0)
        img = noise + rng.uniform(140, 210) * np.exp(-(x**2 + y**2) / width)
    return np.clip(img, 0, 255).astype(np.uint8)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _light_curve(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mjd = np.sort(60600 + rng.uniform(0, 30, POINTS))
    fid = rng.integers(1, 3, POINTS)  # 1 = g, 2 = r
    t = mjd - mjd[0]
    base = rng.uniform(18.5, 20.0)
    if kind == "real":
        peak = rng.uniform(5, 15)
        rise = rng.uniform(0.3, 1.8)  # faint, slow transients are the hard cases
        mag = np.where(t < peak, base + rise * (1 - t / peak) ** 2, base + (t - peak) * rng.uniform(0.005, 0.05))
    elif kind == "varstar":
        period = rng.uniform(2, 9)
        mag = base + rng.uniform(0.3, 0.8) * np.sin(2 * np.pi * t / period + rng.uniform(0, 6.3))
    else:
        mag = base + rng.normal(0, rng.uniform(0.1, 0.5), POINTS)
    mag = mag + 0.15 * (fid == 1)  # g is a little fainter for these red-ish sources
    err = rng.uniform(0.03, 0.25, POINTS)
    return mjd, mag + rng.normal(0, err), err, fid


def _features(mjd: np.ndarray, mag: np.ndarray, stamp: np.ndarray) -> list[float]:
    order = np.argsort(mjd)
    t, m = mjd[order] - mjd.min(), mag[order]
    brightest = int(np.argmin(m))
    rise = (m[0] - m[brightest]) / max(t[brightest], 1e-3)
    fade = (m[-1] - m[brightest]) / max(t[-1] - t[brightest], 1e-3)
    smooth = np.convolve(m, np.ones(3) / 3, mode="same")
    scatter = float(np.std(m[1:-1] - smooth[1:-1]))
    detrended = m - m.mean()
    spectrum = np.abs(np.fft.rfft(detrended))
    periodicity = float(spectrum[2:].max() / (spectrum.sum() + 1e-9))
    centre = stamp[8:13, 8:13].astype(float)
    ys, xs = np.nonzero(stamp > stamp.mean() + 2 * stamp.std())
    elongation = float(np.std(xs) / (np.std(ys) + 1e-3)) if len(xs) > 2 else 1.0
    return [float(np.ptp(m)), float(rise), float(fade), scatter, periodicity, float(centre.max()),
            max(elongation, 1 / max(elongation, 1e-3))]


def write_pool(folder: Path, n: int, *, seed: int = 7, files: int = 3) -> Path:
    """``n`` alerts in ``files`` Parquet files under ``folder`` and their truth in ``folder.parent/truth.csv``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = rng.choice(len(KINDS), n, p=[0.3, 0.45, 0.25])
    rows: dict[str, list] = {c: [] for c in ["candid", "objectId", "ra", "dec", "magpsf", "sigmapsf", "drb",
                                              "sgscore", "ndet", "mjd", "mag", "magerr", "fid", "stamp", *FEATURES]}
    for i in range(n):
        kind = KINDS[kinds[i]]
        mjd, mag, err, fid = _light_curve(rng, kind)
        stamp = _stamp(rng, kind)
        drb = float(np.clip(rng.beta(5, 2.5) if kind != "bogus" else rng.beta(3, 3), 0, 1))
        feats = _features(mjd, mag, stamp)
        values = {
            "candid": 2_900_000_000_000 + i * 7919, "objectId": "ZTF26" + "".join(rng.choice(list(LETTERS), 7)),
            "ra": float(rng.uniform(0, 360)), "dec": float(rng.uniform(-25, 80)),
            "magpsf": float(mag[-1]), "sigmapsf": float(err[-1]), "drb": drb,
            "sgscore": float(rng.beta(2, 5) if kind != "varstar" else rng.beta(5, 2)), "ndet": int(len(mjd)),
            "mjd": mjd.tolist(), "mag": mag.tolist(), "magerr": err.tolist(), "fid": fid.tolist(),
            "stamp": _png(stamp),
        }
        values.update(dict(zip(FEATURES[3:], feats, strict=True)))
        for key, value in values.items():
            rows[key].append(value)
    table = pa.table(rows)
    per_file = -(-n // files)
    for f in range(files):
        part = table.slice(f * per_file, per_file)
        tmp = folder / f".alerts_{f:03d}.parquet.tmp"
        pq.write_table(part, tmp, row_group_size=500)
        tmp.replace(folder / f"alerts_{f:03d}.parquet")
    truth = folder.parent / "truth.csv"
    truth.write_text("candid,truth\n" + "".join(f"{c},{KINDS[k]}\n" for c, k in zip(rows["candid"], kinds, strict=True)))
    return folder


def read_truth(path: Path) -> dict[str, str]:
    """The hidden kind of each alert, by candid (as text, like the label store's keys)."""
    lines = path.read_text().splitlines()[1:]
    return dict(line.split(",", 1) for line in lines)
