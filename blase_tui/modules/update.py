"""``Update`` (seed 000): retrain a model on new data and promote the new version only when it is better.

>>> Update().run(base_model_path="models/v1/", new_data_path="raw_data/", update_mode="append_only",
...              transform_fn="transforming.clean_features", evaluate_after=True)

1. **The base**: a registered model (``name``, ``name:3``, ``name@champion``), a model file, or a folder holding
   one model file; a file is matched to its registered version by content, which names the data it was
   trained on.
2. **The new data**: what ``Extract`` reads (a folder of images in class folders, CSV, Parquet, npy shards),
   passed through ``transform_fn`` (a dotted name resolved in the project: ``transforming.clean_features`` is
   ``clean_features`` in ``scripts/transforming.py`` or ``transforming.py``) so that it has the columns the
   base trained on. A share of it (``holdout``, 20%, chosen by key, the same every time) is held out.
3. **The training set**, by ``update_mode``:
   ``append_only``: the base's training data plus the new data, a fresh model of the base's architecture;
   ``window``: the newest ``window`` records of the same, fresh model; ``fine_tune``: the base's weights
   trained further on the new data only (``partial_fit`` for a scikit-learn estimator that has it);
   ``full``: everything the base had (training and validation splits) plus the new data, fresh model.
4. **The challenger** is saved as the next version of the base's name; its card names the base version and
   the data added (``update``), and its run records both as inputs.
5. **evaluate_after**: the champion (the version ``name@alias`` names, else the base) and the challenger
   predict the same held-out records (the base's test split, when there is one, every set the base's own
   updates held out, and the held-out new data), record by record, in the same order. The challenger gets the
   ``champion`` alias only when a one-sided paired test says it is better at ``level`` (default 0.05) AND its
   score is better by more than ``margin``: for accuracy, McNemar's exact test (under "no better", each record
   only one of the two got right is a fair coin: p = P(Binomial(b + c, 1/2) >= b), b the records only the
   challenger got right, c those only the champion got right); for RMSE, a paired bootstrap (2,000 resamples of
   the records, seeded with ``seed``; p = (1 + resamples where the challenger's RMSE is not lower) / 2,001).
   A plain "higher score" would promote a challenger no better than the champion whenever it happens to get a
   few more records right. The test, its p-value, the level and both scores are recorded (metrics ``update/...`` with ``update/p_value``, the
   tag ``update.decision``, ``update/decision.json``) and said in one line.

A base given as ``models/v<N>`` (the seed's ``models/v1/``) that is not on disk is version N of the project's
registered model, when the project has one model name (said in one line).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.models.frameworks import of_file
from blase_tui.modules import recording

if TYPE_CHECKING:
    from blase_tui.store.records import ModelVersionDetail

MODES = ("append_only", "window", "fine_tune", "full")
RESAMPLES = 2000  # the paired bootstrap's (RMSE): p is at least 1 / 2001
_VERSION_FOLDER = re.compile(r"^(?:\./)?models/v(\d+)/?$")


@dataclass
class Decision:
    base: str
    challenger: str
    metric: str
    champion_score: float | None
    challenger_score: float | None
    promoted: bool
    records: int
    why: str
    champion: str = ""  # the version the challenger was judged against: name@alias's, else the base
    test: str = ""  # "mcnemar" (accuracy) or "paired_bootstrap" (rmse); "" when not compared
    p_value: float | None = None  # one-sided: the chance of a gain this large from a challenger no better
    level: float = 0.05  # promoted only when p_value < level (and the gain is above the margin)
    evidence: dict[str, int] = field(default_factory=dict)  # the discordant records, or the resamples

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class Update:
    def __init__(self, epochs: int = 5, holdout: float = 0.2, margin: float = 0.0, window: int = 10_000,
                 alias: str = "champion", batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0,
                 level: float = 0.05) -> None:
        if not 0 < holdout < 1:
            raise BlaseError(f"holdout must be a share between 0 and 1, not {holdout!r}.")
        if not 0 < level < 1:
            raise BlaseError(f"level must be a significance level between 0 and 1 (such as 0.05), not {level!r}.")
        if not margin >= 0:
            raise BlaseError(f"margin must be 0 or more (the gain a challenger must beat the champion by), not"
                             f" {margin!r}.")
        self.epochs, self.holdout, self.margin, self.window, self.level = epochs, holdout, margin, window, level
        self.alias, self.batch_size, self.learning_rate, self.seed = alias, batch_size, learning_rate, seed
        self.decision: Decision | None = None
        self._stamp = ""  # names this update's folders (the run's id, unique per update)

    def run(self, base_model_path: str | Path, new_data_path: str | Path, update_mode: str = "append_only",
            transform_fn: str | Any = None, evaluate_after: bool = True) -> Decision:
        if update_mode not in MODES:
            raise BlaseError(f"update_mode must be one of {', '.join(MODES)}, not {update_mode!r}.")
        recording.params("update", base_model_path=str(base_model_path), new_data_path=str(new_data_path),
                         update_mode=update_mode, transform_fn=transform_fn if isinstance(transform_fn, str) or
                         transform_fn is None else getattr(transform_fn, "__name__", "function"),
                         evaluate_after=evaluate_after, epochs=self.epochs, holdout=self.holdout, margin=self.margin,
                         level=self.level)
        base, given = _base(base_model_path)
        card = base.card or {}
        signature = card.get("input") or {}
        x_col, y_col = signature.get("column"), signature.get("target")
        if not x_col or not y_col:
            raise BlaseError(f"{base.name} v{base.version}'s card does not say which columns it was trained on"
                             " (input column and target); Update retrains models saved by Train.save_model.")
        transform = _transform(transform_fn)
        root = recording.project_root()
        stamp = _stamp()
        work = root / "data" / "updates" / f"{base.name}-v{base.version}-{stamp}"
        for again in range(2, 10_000):  # a second update in the same step (or second): a folder of its own
            if not work.exists():
                break
            stamp = f"{_stamp()}-{again}"
            work = root / "data" / "updates" / f"{base.name}-v{base.version}-{stamp}"
        self._stamp = stamp
        new_train, new_holdout = work / "new" / "train", work / "new" / "holdout"
        n_new, n_held = _write_new(Path(new_data_path), transform, x_col, y_col, new_train, new_holdout,
                                   self.holdout)
        base_splits = _base_splits(base)
        # every held-out set of the base's line (its test split, and the new data each earlier update held out)
        # plus this one: a model made by an update is judged on what its ancestors were judged on, not only on
        # the newest data
        held = _held_out(base, base_splits, root) + [new_holdout]
        train_dir = work / "train_set" / "train"
        if update_mode == "fine_tune":
            _copy_split([new_train], train_dir, x_col, y_col)
        else:
            sources = [base_splits.get("train")] + ([base_splits.get("val")] if update_mode == "full" else [])
            sources = [s for s in sources if s is not None]
            if not sources:
                raise BlaseError(f"the data {base.name} v{base.version} was trained on is not there any more"
                                 f" (nor recorded); use update_mode=\"fine_tune\" to train on the new data alone.")
            limit = self.window if update_mode == "window" else None
            _copy_split([*sources, new_train], train_dir, x_col, y_col, newest=limit)
        challenger = self._train(base, given, update_mode, work / "train_set", x_col, y_col, (n_new, n_held),
                                 Path(new_data_path), [_relative(p, root) for p in held])
        decision = Decision(base=f"{base.name} v{base.version}", challenger=challenger, metric="",
                            champion_score=None, challenger_score=None, promoted=False, records=0,
                            why="not evaluated (evaluate_after=False)", level=self.level)
        if evaluate_after:
            held = [p for p in held if (p / "_manifest.json").is_file()]
            decision = self._evaluate(self._champion(base), challenger, held, x_col, y_col)
            decision.base = f"{base.name} v{base.version}"
        self.decision = decision
        self._record(decision)
        return decision

    # ------------------------------------------------------------------------------------------ training
    def _train(self, base: ModelVersionDetail, given: Path | None, mode: str, data_dir: Path, x_col: str, y_col: str,
               counts: tuple[int, int], new_data: Path, held_out: list[str]) -> str:
        from blase_tui.models.frameworks import open_model
        from blase_tui.modules.train import Train

        framework = base.framework
        loaded = open_model(Path(base.path), framework, base.file_name, None).model
        task = (base.card or {}).get("task", "classification")
        trainer = Train()
        if framework == "sklearn":
            from sklearn.base import clone

            model = loaded if mode == "fine_tune" else clone(loaded)
            if mode == "fine_tune" and not hasattr(model, "partial_fit"):
                raise BlaseError(f"a {type(model).__name__} cannot be trained further (no partial_fit); use"
                                 " update_mode=\"append_only\" or \"full\".")
        else:
            model = loaded if mode == "fine_tune" else _fresh(loaded, framework, self.seed)
        with recording.internal():
            trainer.set_model(model, framework=framework)
            trainer.configure_training(batch_size=self.batch_size, learning_rate=self.learning_rate, task=task,
                                       input_column=x_col, target_column=y_col, seed=self.seed)
            trainer.extra_card = {"update": {"base": f"{base.name} v{base.version}", "mode": mode,
                                             "data_added": str(new_data), "records_added": counts[0],
                                             "records_held_out": counts[1], "held_out": held_out}}
            trainer.train(epochs=self.epochs, data_dir=data_dir)
            suffix = Path(base.file_name).suffix
            path = Path("models") / "updates" / f"{base.name}-{self._stamp}{suffix}"
            saved = trainer.save_model(path, name=base.name)
        if given is not None:  # the file the user named, recorded as the update's input
            recording.dataset(given, role="input")
        recording.say("trained %s from %s (%s) with %d new records (%d more held out to judge it)", saved,
                      f"{base.name} v{base.version}", mode, counts[0], counts[1])
        return saved

    # --------------------------------------------------------------------------------------- evaluation
    def _champion(self, base: ModelVersionDetail) -> ModelVersionDetail:
        """What the challenger must beat: the version ``name@alias`` names now (the one serving), else the base
        when no version holds the alias yet. An update from an older version must still beat the champion."""
        try:
            champion = recording.model_version(f"{base.name}@{self.alias}")
        except BlaseError:  # no version holds the alias yet
            return base
        if champion.version != base.version:
            recording.say("%s v%d is %s@%s: the challenger is judged against it, not against its base %s v%d",
                          champion.name, champion.version, champion.name, self.alias, base.name,
                          base.version)
        return champion

    def _evaluate(self, base: ModelVersionDetail, challenger: str, held: list[Path], x_col: str, y_col: str) -> Decision:
        from blase_tui.models.frameworks import open_model
        from blase_tui.models.predictor import Predictor, trained_by_blase
        from blase_tui.modules.shards import open_split

        name, _, version = challenger.partition(" v")
        new = recording.model_version(f"{name}:{version}")
        task = (base.card or {}).get("task", "classification")
        metric = "accuracy" if task == "classification" else "rmse"
        champ = f"{base.name} v{base.version}"
        # per record, in the same order for both (the same folders, the same batches): right or wrong
        # (accuracy), the squared error (rmse); the paired test compares them record by record
        per_record: dict[str, np.ndarray] = {}
        records = 0
        for role, row in (("champion", base), ("challenger", new)):
            predictor = Predictor(open_model(Path(row.path), row.framework, row.file_name, None),
                                  row.framework, task=task, classes=(row.card or {}).get("classes"),
                                  trained_by_blase=trained_by_blase(row.card))
            preds, truths = [], []
            for folder in held:
                split = open_split(folder)
                for _, cols in split.batches(256, columns=[x_col, y_col]):
                    preds.append(predictor.labels(np.asarray(cols[x_col])))
                    truths.append(np.asarray(cols[y_col]))
            if not preds:
                return Decision(base=champ, challenger=challenger, metric=metric, champion_score=None,
                                challenger_score=None, promoted=False, records=0, level=self.level,
                                why="no held-out records to compare on; nothing promoted")
            pred, truth = np.concatenate(preds), np.concatenate(truths)
            records = len(truth)
            if metric == "accuracy":
                per_record[role] = pred.astype(str) == truth.astype(str)
            else:
                per_record[role] = (pred.astype(float) - truth.astype(float)) ** 2
        if metric == "accuracy":
            old, new_score = (float(np.mean(per_record[r])) for r in ("champion", "challenger"))
            p_value, wins, losses = mcnemar(per_record["champion"], per_record["challenger"])
            test, label = "mcnemar", "McNemar"
            evidence = {"challenger_only_right": wins, "champion_only_right": losses}
            detail = f"{wins} vs {losses} discordant records"
        else:
            old, new_score = (float(np.sqrt(np.mean(per_record[r]))) for r in ("champion", "challenger"))
            p_value = paired_bootstrap(per_record["champion"], per_record["challenger"], RESAMPLES, self.seed)
            test, label = "paired_bootstrap", "paired bootstrap"
            evidence = {"resamples": RESAMPLES}
            detail = f"{RESAMPLES} resamples of {records} records"
        above_margin = new_score > old + self.margin if metric == "accuracy" else new_score < old - self.margin
        significant = p_value < self.level
        promoted = above_margin and significant
        margin = f" by more than the margin {self.margin}" if self.margin else ""
        if significant:
            evidence_text = f"{label} p = {_p_text(p_value)} < {self.level}, {detail}"
        else:
            evidence_text = f"{label} p = {_p_text(p_value)}, not below {self.level}, {detail}"
        if promoted:
            recording.set_model_alias(name, int(version), self.alias)
            why = (f"{challenger} {metric} {new_score:.4f} beats {champ}'s {old:.4f}{margin} ({evidence_text}): it is"
                   f" now {name}@{self.alias}")
        else:
            held = any(self.alias in v.aliases for v in recording.model_versions() if v.name == name)
            why = (f"{challenger} {metric} {new_score:.4f} does not beat {champ}'s {old:.4f}{margin}"
                   f" ({evidence_text}): " + (f"{self.alias} stays as it was" if held else
                                               f"{champ} stays (no version is {name}@{self.alias} yet)"))
        return Decision(base=champ, challenger=challenger, metric=metric, champion_score=old,
                        challenger_score=new_score, promoted=promoted, records=records, why=why,
                        champion=champ, test=test, p_value=p_value, level=self.level, evidence=evidence)

    def _record(self, decision: Decision) -> None:
        if decision.champion_score is not None:
            recording.metrics({f"update/champion_{decision.metric}": decision.champion_score,
                               f"update/challenger_{decision.metric}": decision.challenger_score,
                               "update/promoted": float(decision.promoted),
                               **({"update/p_value": decision.p_value} if decision.p_value is not None else {})})
        recording.tags({"update.decision": "promoted" if decision.promoted else "kept the champion"})
        folder = recording.artifact_dir()
        if folder is not None:
            (folder / "update").mkdir(parents=True, exist_ok=True)
            (folder / "update" / "decision.json").write_text(json.dumps(decision.as_dict(), indent=1))
        recording.say("%s", decision.why)


# -------------------------------------------------------------------------------------------- the tests
def mcnemar(champion_right: np.ndarray, challenger_right: np.ndarray) -> tuple[float, int, int]:
    """One-sided exact McNemar test on paired right/wrong arrays (the same records, in the same order): the
    p-value of "the challenger is no better than the champion", and the discordant counts (records only the
    challenger got right, records only the champion got right). Under that hypothesis each discordant record
    is a fair coin, so p = P(Binomial(b + c, 1/2) >= b); 1.0 when the two never disagree."""
    from scipy.stats import binom

    champion_right, challenger_right = np.asarray(champion_right, bool), np.asarray(challenger_right, bool)
    if champion_right.shape != challenger_right.shape:
        raise ValueError("the paired test needs both models' results on the same records")
    wins = int(np.sum(challenger_right & ~champion_right))
    losses = int(np.sum(champion_right & ~challenger_right))
    if wins + losses == 0:
        return 1.0, 0, 0
    return float(min(1.0, binom.sf(wins - 1, wins + losses, 0.5))), wins, losses


def paired_bootstrap(champion_sq: np.ndarray, challenger_sq: np.ndarray, resamples: int = RESAMPLES,
                     seed: int = 0) -> float:
    """One-sided paired bootstrap on per-record squared errors (the same records, in the same order): records
    are drawn with replacement ``resamples`` times (the same draw for both models), and p = (1 + the number of
    resamples where the challenger's RMSE is not lower than the champion's) / (resamples + 1)."""
    champion_sq, challenger_sq = np.asarray(champion_sq, float), np.asarray(challenger_sq, float)
    if champion_sq.shape != challenger_sq.shape or champion_sq.ndim != 1:
        raise ValueError("the paired test needs both models' errors on the same records")
    n = len(champion_sq)
    if n == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)  # resamples drawn at once: about 16 MB of indices
    not_better = done = 0
    while done < resamples:
        take = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(take, n))
        gain = np.sqrt(champion_sq[idx].mean(axis=1)) - np.sqrt(challenger_sq[idx].mean(axis=1))
        not_better += int(np.sum(~(gain > 0)))  # (a NaN error is no gain)
        done += take
    return (1 + not_better) / (resamples + 1)


def _p_text(p: float) -> str:
    return f"{p:.1e}" if p < 1e-4 else f"{p:.2g}"


# ------------------------------------------------------------------------------------------------ helpers
def _stamp() -> str:
    import time

    where = recording.where().get("run_id")
    return where or time.strftime("%Y%m%d-%H%M%S")


def _base(ref: str | Path) -> tuple[ModelVersionDetail, Path | None]:
    """The base model's registry version (with card and path), from a reference, a file or a folder holding one;
    and the file the user named (None for a reference)."""
    from blase_tui.modules.deploy import choose_model

    path = Path(ref)
    if path.is_dir():
        found = [p for p in sorted(path.iterdir()) if of_file(p) is not None]
        if len(found) != 1:
            raise BlaseError(f"{path} holds {len(found)} model files ({', '.join(p.name for p in found) or 'none'});"
                             " give the file, or a registered model such as \"name@champion\".")
        path = found[0]
    elif not path.exists() and (folder := _VERSION_FOLDER.match(str(ref))):
        return _registered_instead(str(ref), int(folder.group(1))), None
    elif not path.exists() and ("/" in str(ref) or path.suffix):
        raise BlaseError(f"{ref} does not exist; give a model file, a folder holding one, or a registered model"
                         " (`blase models list`).")
    chosen = choose_model(str(path) if path.exists() else str(ref))
    if chosen.version is None:
        raise BlaseError(f"{path} is not a registered model version (no training record to retrain from); save"
                         " it with Train.save_model or ctx.log_model first.")
    return recording.model_version(f"{chosen.name}:{chosen.version}"), path if path.exists() else None


def _registered_instead(ref: str, number: int) -> ModelVersionDetail:
    """For the seed's ``models/v1/`` when nobody made that folder: version ``number`` of the project's one
    registered model name, said in one line."""
    registered = recording.model_versions()
    names = sorted({v.name for v in registered})
    if not names:
        raise BlaseError(f"{ref} does not exist and the project has no registered model; give a model file, a folder"
                         " holding one, or train and save one first (Train.save_model).")
    if len(names) > 1:
        raise BlaseError(f"{ref} does not exist and the project has several registered models ({', '.join(names)});"
                         f" give base_model_path as name:{number}, such as \"{names[0]}:{number}\".")
    name = names[0]
    versions = sorted(v.version for v in registered if v.name == name)
    if number not in versions:
        raise BlaseError(f"{ref} does not exist and {name}, the project's registered model, has no version {number}"
                         f" (it has {', '.join(f'v{v}' for v in versions)}); give one of those, such as"
                         f" \"models/v{versions[-1]}/\" or \"{name}:{versions[-1]}\".")
    recording.say("%s does not exist; using %s v%d, the project's registered model", ref, name, number)
    return recording.model_version(f"{name}:{number}")


def _transform(fn: str | Any) -> Any:
    """``transform_fn`` as a function: a callable, or a dotted name resolved in the project's code."""
    if fn is None or callable(fn):
        return fn
    module_name, _, func = str(fn).rpartition(".")
    if not module_name:
        raise BlaseError(f"transform_fn {fn!r} must be module.function, such as \"transforming.clean_features\".")
    root = recording.project_root()
    for folder in (root / "scripts", root):
        if (folder / (module_name.replace(".", "/") + ".py")).is_file() and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BlaseError(f"transform_fn {fn!r}: cannot import {module_name} ({exc}); put it in scripts/"
                         f"{module_name.replace('.', '/')}.py.") from None
    target = getattr(module, func, None)
    if not callable(target):
        raise BlaseError(f"transform_fn {fn!r}: {module_name} has no function {func}.")
    return target


def _batches(path: Path) -> Any:
    """Batches of what ``Extract`` reads at ``path``."""
    from blase_tui.modules.extract import Extract
    from blase_tui.modules.train import raw_images

    if not path.exists():
        raise BlaseError(f"new data {path} does not exist; give the folder or file of new records.")
    extract = Extract()
    if path.is_dir() and (path / "_manifest.json").is_file():
        yield from _split_batches(path)
    elif raw_images(path):
        yield from extract.load_images(directory=path)
    elif path.suffix == ".csv" or path.is_dir() and next(path.glob("*.csv"), None) is not None:
        yield from extract.load_csv(path)
    elif path.suffix == ".parquet" or path.is_dir() and next(path.glob("*.parquet"), None) is not None:
        yield from extract.load_parquet(path)
    else:
        raise BlaseError(f"new data {path}: no images, CSV, Parquet or npy shards there.")


def _split_batches(folder: Path) -> Any:
    from blase_tui.modules.batch import Batch, BatchMeta
    from blase_tui.modules.shards import open_split

    split = open_split(folder)
    names = list(split.columns)
    for i, (positions, cols) in enumerate(split.batches(4096, columns=names)):
        yield Batch([f"{folder.name}:{p}" for p in positions], {k: np.asarray(v) for k, v in cols.items()},
                    BatchMeta(str(folder), i))


def _write_new(path: Path, transform: Any, x_col: str, y_col: str, train: Path, holdout: Path,
               share: float) -> tuple[int, int]:
    """The new data, transformed, as npy shards: ``holdout`` gets ``share`` of the records (by key); returns
    how many records went to training and how many were held out."""
    import zlib

    from blase_tui.modules.batch import Batch
    from blase_tui.modules.load import Load

    loader = Load()
    count = held_count = 0
    for batch in _batches(path):
        if transform is not None:
            out = transform(batch)
            batch = out if isinstance(out, Batch) else Batch(batch.keys, dict(out), batch.meta)
        data = batch.data if isinstance(batch.data, dict) else {c: batch.data[c].to_numpy() for c in batch.data.column_names}
        missing = [c for c in (x_col, y_col) if c not in data]
        if missing:
            raise BlaseError(f"the new data has the columns {', '.join(data)}; the base model was trained on {x_col}"
                             f" and {y_col}: give a transform_fn that makes {', '.join(missing)}.")
        held = np.array([zlib.crc32(str(k).encode()) % 10_000 < share * 10_000 for k in batch.keys])
        for mask, target in ((~held, train), (held, holdout)):
            if mask.any():
                keys = [k for k, m in zip(batch.keys, mask, strict=True) if m]
                loader.save_to_filesystem(Batch(keys, {x_col: np.asarray(data[x_col])[mask],
                                                       y_col: np.asarray(data[y_col])[mask]}, batch.meta),
                                          target, format="npy")
        count += len(batch)
        held_count += int(held.sum())
    if count == 0:
        raise BlaseError(f"new data {path} holds no records.")
    recording.dataset(path, role="input")  # (the readers record theirs too: the same path, the same hash)
    return count - held_count, held_count


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _held_out(base: ModelVersionDetail, splits: dict[str, Path], root: Path) -> list[Path]:
    """The base's test split and the held-out sets its card says it was judged on (an update's ``held_out``),
    those still there, each once."""
    card = base.card or {}
    listed = [root / p for p in (card.get("update") or {}).get("held_out", [])]
    out: list[Path] = []
    for path in [splits.get("test"), *listed]:
        if path is not None and (path / "_manifest.json").is_file() and path.resolve() not in {p.resolve() for p in out}:
            out.append(path)
    return out


def _base_splits(base: ModelVersionDetail) -> dict[str, Path]:
    """The splits the base model was trained (and can be tested) on: ``train``, ``val``, ``test``, from the
    inputs its training step recorded (a prepared folder's splits, or a raw image folder made into shards)."""
    out: dict[str, Path] = {}
    card = base.card or {}
    for path in recording.training_inputs(base.run_id, base.step_run_id or card.get("training_step_run")):
        if not path.is_dir():
            continue
        if (path / "_manifest.json").is_file() and path.name in ("train", "val", "test"):
            out.setdefault(path.name, path)
            test = path.parent / "test"
            if path.name == "train" and (test / "_manifest.json").is_file():
                out.setdefault("test", test)
        else:
            from blase_tui.modules.train import raw_images

            if raw_images(path):
                cached = recording.cache_dir("update-base") / path.name
                if not (cached / "_manifest.json").is_file():
                    from blase_tui.modules.load import Load

                    shutil.rmtree(cached, ignore_errors=True)
                    loader = Load(record=False)
                    with recording.internal():
                        for batch in _batches(path):
                            loader.save_to_filesystem(batch, cached, format="npy")
                out.setdefault("train", cached)
    return out


def _copy_split(sources: list[Path], target: Path, x_col: str, y_col: str, newest: int | None = None) -> None:
    """One npy split from several (streamed), or the newest ``newest`` records of them."""
    from blase_tui.modules.batch import Batch
    from blase_tui.modules.load import Load

    batches = [b for s in sources for b in _split_batches(s)]
    if newest is not None:
        total = sum(len(b) for b in batches)
        skip = max(0, total - newest)
    else:
        skip = 0
    loader = Load(record=False)
    with recording.internal():
        for batch in batches:
            if skip >= len(batch):
                skip -= len(batch)
                continue
            data = {c: np.asarray(batch.data[c])[skip:] for c in (x_col, y_col)}
            loader.save_to_filesystem(Batch(list(batch.keys)[skip:], data, batch.meta), target, format="npy")
            skip = 0


def _fresh(model: Any, framework: str, seed: int) -> Any:
    """The same architecture with new weights."""
    if framework == "torch":
        import torch

        torch.manual_seed(seed)
        fresh = copy.deepcopy(model)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        return fresh
    import keras

    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)
