"""``blase runs reproduce RUN [--step S]``: execute a run's steps again, from the code the run recorded, with its
params and inputs, into a new run; then say, output by output, whether the result is the same.

The reproduction happens in a folder of its own inside the project (``.blase/reproduce/RUN-N/``), so the
project's own outputs are never touched:

- **code**: the commit the run recorded (``git archive``) with its uncommitted changes (the patch), and over it
  the Python files the run kept (``code/`` artifacts: exactly what ran). Without git, those Python files and
  today's ``blase.toml``. ``code="current"`` takes the project's code as it is now instead: "what would my
  change do to this run's outputs".
- **inputs**: each dataset the steps read that no earlier step of the reproduction writes: its kept content
  (an output of an earlier run), else the project's file or folder, linked (never copied; an input that
  changed since the run is said first, with the environment).
- **steps**: each one started as it was (``command.json``: ``blase step`` with its exact params, or the
  script with its arguments), in a fresh store, so nothing is reused.

The reproduction's runs then move into the project (tagged ``reproduces``) and the folder is removed, or kept
when an output differs, so the two can be compared by hand.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from blase_tui.core.codeuse import definitions, part_file
from blase_tui.core.project import Project
from blase_tui.core.signature import environment, project_code_files
from blase_tui.errors import ConfigError
from blase_tui.store.exclusions import is_exclusion_set
from blase_tui.store.records import RunDescription, StepDescription
from blase_tui.store.runstore import REPRODUCES, RunStore
from blase_tui.store.safepath import UnsafePath, inside
from blase_tui.store.values import is_timing

IDENTICAL, DIFFERENT, MISSING, EXTRA = "identical", "different", "missing", "extra"
# a JSON output that differs only in when and in which run it was made (a model card, a training log)
EQUIVALENT = "same"
TIMING = "timing"  # a metric that measures time: listed, never compared
AGREE = (IDENTICAL, EQUIVALENT, TIMING)
def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if not is_timing(str(k))}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


@dataclass
class Difference:
    step: str
    kind: str  # "dataset", "artifact", "metric"
    name: str
    status: str  # identical, different, missing (the reproduction did not make it), extra (only the reproduction)
    recorded: Any = None
    now: Any = None
    detail: list[str] = field(default_factory=list)  # a differing text or JSON output: its first differing lines


@dataclass
class Reproduction:
    run_id: str
    code: str  # "recorded" or "current"
    notes: list[str] = field(default_factory=list)  # environment and input differences, said first
    results: list[Difference] = field(default_factory=list)
    new_runs: list[str] = field(default_factory=list)
    failed: str | None = None  # the step that failed, with its line
    folder: Path | None = None  # kept when something differs

    @property
    def identical(self) -> bool:
        return self.failed is None and all(r.status in AGREE for r in self.results)


def environment_differences(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs between a run's recorded environment and this one, one line each (Python first)."""
    if recorded is None:
        return ["the run's environment was not recorded; it cannot be compared"]
    lines = []
    for key in ("python", "implementation", "platform", "machine"):
        if recorded.get(key) != current.get(key):
            lines.append(f"{key}: {recorded.get(key)} when recorded, {current.get(key)} now")
    then, now = recorded.get("threads"), current.get("threads")
    if then is not None and then != now:
        def said(t: dict[str, Any]) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(t.items())) or "none"
        lines.append(f"threads: {said(then)} when recorded, {said(now or {})} now (float results of PyTorch, BLAS and"
                     " scikit-learn can differ in the last digits with another thread count)")
    old, new = recorded.get("packages") or {}, current.get("packages") or {}
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            was = old.get(name, "not installed")
            now = new.get(name, "not installed")
            lines.append(f"package {name}: {was} when recorded, {now} now")
    return lines


def reproduce(project: Project, run_ref: str, *, step: str | None = None, code: str = "recorded",
              keep: bool = False, out: TextIO | None = None) -> Reproduction:
    """Execute run ``run_ref``'s steps (only ``step`` when given) again and compare what they make."""
    out = out or sys.stderr
    if code not in ("recorded", "current"):
        raise ConfigError(f"--code must be `recorded` or `current`, not `{code}`.")
    store = project.store
    run_id = store.resolve_run(run_ref)
    desc = store.describe_run(run_id)
    steps = [s for s in desc.steps if step is None or s.step == step]
    if step is not None and not steps:
        names = ", ".join(dict.fromkeys(s.step for s in desc.steps)) or "none"
        raise ConfigError(f"run {run_id} has no step `{step}`; its steps: {names}.")
    if not steps:
        raise ConfigError(f"run {run_id} has no steps to execute again (it was recorded by Track alone, outside"
                          " any step); reproduce runs made by `blase step` or a project script.")
    commands = [_command(project, run_id, s) for s in steps]
    report = Reproduction(run_id=run_id, code=code)

    recorded_env = None
    if desc.run.env_hash and store.cas.has(desc.run.env_hash):
        recorded_env = json.loads(store.cas.read_bytes(desc.run.env_hash))
    report.notes += [f"environment differs: {line}" for line in
                     environment_differences(recorded_env, environment(project.cache_dir))]

    base = project.root / ".blase" / "reproduce"
    base.mkdir(parents=True, exist_ok=True)
    folder = next(base / f"{run_id}-{n}" for n in itertools.count(1) if not (base / f"{run_id}-{n}").exists())
    folder.mkdir()
    try:
        report.notes += _lay_out_code(project, desc, folder, code)
        report.notes += _lay_out_inputs(project, steps, folder)
        # the steps read the exclusion sets and labels saved before they first ran, as they did then
        from blase_tui.store.reindex import seed_project_state

        shadow = RunStore(folder)
        try:
            seed_project_state(shadow, store, before=_state_time(store, desc, steps))
            referenced = _lay_out_runs(project, steps, shadow, run_id)
        finally:
            shadow.close()
        for s, command in zip(steps, commands, strict=True):
            print(f"blase: reproducing step `{s.step}` of run {run_id} ...", file=out, flush=True)
            proc = subprocess.run(command, cwd=folder, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                report.failed = f"step `{s.step}` exited {proc.returncode} when executed again"
                break
        report.new_runs, made = _adopt(project, folder, run_id, referenced)
        report.results = _compare(project, steps, made, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if keep or not report.identical:
        report.folder = folder
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def _state_time(store: RunStore, desc: RunDescription, steps: list[StepDescription]) -> float | None:
    """When the steps first ran, for the project state they read (exclusion sets, labels): for a reproduction,
    when the run it reproduces ran them (its own steps read that run's state, not the project's at the time)."""
    names = {s.step for s in steps}
    seen = {desc.run.id}
    while (origin := desc.tags.get(REPRODUCES)) and origin not in seen and store.get_run(origin):
        seen.add(origin)
        desc = store.describe_run(origin)
        steps = [s for s in desc.steps if s.step in names] or steps
    return min((s.started for s in steps if s.started), default=None)


# ------------------------------------------------------------------------------------------------- commands
def _command(project: Project, run_id: str, s: StepDescription) -> list[str]:
    """How to start recorded execution ``s`` again: its ``command.json``, or for an execution recorded before
    blase kept one, ``blase step`` with the params it recorded."""
    spec = project.store.step_command(run_id, s.folder)
    if spec is None:
        spec = {"how": "step", "step": s.step, "params": s.params}
    if spec.get("how") == "script":
        script = spec.get("script") or ""
        if Path(script).is_absolute():
            raise ConfigError(f"step `{s.step}` of run {run_id} ran {script}, a script outside the project;"
                              " only steps whose code is in the project can be reproduced.")
        return [sys.executable, script, *spec.get("argv", [])]
    return [sys.executable, "-m", "blase_tui.core.replay", json.dumps(spec, default=str)]


# ----------------------------------------------------------------------------------------------------- code
def _lay_out_code(project: Project, desc: RunDescription, folder: Path, code: str) -> list[str]:
    """Put the code to run into ``folder``; returns notes about what could not be exactly the run's."""
    notes: list[str] = []
    store = project.store
    root = project.root.resolve()
    used = {part_file(part) for s in desc.steps for part in (*s.code, *s.code_loaded)}
    if code == "current":
        extra = tuple(p for p in ((root / u).resolve() for u in used) if p.is_relative_to(root) and p.is_file())
        for f in project_code_files(root, project.config.entry, project.config.scripts, extra):
            _copy(f, folder / f.relative_to(root))
        shutil.copyfile(project.root / "blase.toml", folder / "blase.toml")
        changed = _changed_code(project, desc, used)
        notes.append("code: the project's code as it is now (--code current), not the code the run recorded"
                     + (f"; changed since the run: {', '.join(changed)}" if changed
                        else "; no file of it changed since the run"))
        return notes
    run = desc.run
    if run.git_commit and _git_archive(project.root, run.git_commit, folder):
        if run.git_patch_hash and store.cas.has(run.git_patch_hash):
            patch = store.cas.read_bytes(run.git_patch_hash).decode()
            if patch.strip() and not _git_apply(project.root, folder, patch):
                notes.append("code: the run's uncommitted changes to files other than its Python code could not"
                             " be applied to its commit")
    elif not (folder / "blase.toml").exists():
        shutil.copyfile(project.root / "blase.toml", folder / "blase.toml")
        notes.append("code: the run's Python files as it kept them, with today's blase.toml (no git commit to"
                     " take the rest from)")
    kept = [a for a in desc.artifacts if a.name.startswith("code/")]
    if not kept:
        raise ConfigError(f"run {desc.run.id} kept no copy of its code (it ended before blase could keep it);"
                          " it cannot be reproduced.")
    for a in kept:
        if not store.cas.has(a.hash):
            raise ConfigError(f"run {desc.run.id}'s code file {a.name[5:]} is gone from the content store;"
                              " it cannot be reproduced.")
        target = inside(folder, a.name[len("code/"):], what=f"code file of run {desc.run.id}")
        if target.exists():
            target.unlink()
        _copy(store.cas.path_of(a.hash), target)
    return notes


def _changed_code(project: Project, desc: RunDescription, used: set[str]) -> list[str]:
    """The code files the run kept (and those its steps used) that differ now, are new or are gone, with the
    definitions of its steps' code that changed in them (``main.py (sample)``)."""
    from blase_tui.store.hashing import hash_bytes, hash_file

    root = project.root.resolve()
    kept = {a.name[len("code/"):]: a.hash for a in desc.artifacts if a.name.startswith("code/")}
    for s in desc.steps:  # whole modules a step used that the run did not keep (a run from before blase did)
        for part, digest in s.code.items():
            if "::" not in part:
                kept.setdefault(part, digest)
    now = {f.relative_to(root).as_posix(): f for f in project_code_files(root, project.config.entry,
                                                                            project.config.scripts)}
    out = []
    for name in sorted(set(kept) | {n for n in now if n in used}):
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            continue
        if not path.is_file():
            out.append(f"{name} (gone)")
        elif name not in kept:
            out.append(f"{name} (new)")
        elif hash_file(path) != kept[name]:
            index = definitions(path)
            defs = sorted({d for s in desc.steps for part, digest in s.code.items()
                           if part.startswith(name + "::") and (d := part.split("::", 1)[1]) in index
                           and hash_bytes(index[d].encode()) != digest})
            out.append(f"{name} ({', '.join(defs)})" if defs else name)
    return out


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o644 | (source.stat().st_mode & 0o111))


def _git_top(root: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 and out.stdout.strip() else None


def _git_archive(root: Path, commit: str, folder: Path) -> bool:
    """The project's files at ``commit`` into ``folder``; False when git or the commit is not there."""
    top = _git_top(root)
    if top is None:
        return False
    sub = root.resolve().relative_to(top).as_posix()
    tree = f"{commit}:{sub}" if sub != "." else commit
    with tempfile.TemporaryFile() as tar:
        proc = subprocess.run(["git", "-C", str(top), "archive", "--format=tar", tree], stdout=tar,
                              stderr=subprocess.DEVNULL, timeout=600)
        if proc.returncode != 0:
            return False
        tar.seek(0)
        with tarfile.open(fileobj=tar) as archive:
            archive.extractall(folder, filter="data")  # git's own archive; the filter refuses links out anyway
    return True


def _git_apply(root: Path, folder: Path, patch: str) -> bool:
    """Apply the run's ``git diff HEAD`` (paths from the repository's top) inside ``folder``."""
    top = _git_top(root)
    if top is None:
        return False
    depth = len(root.resolve().relative_to(top).parts)
    lines = [line for line in patch.splitlines(keepends=True) if not line.startswith("# untracked: ")]
    if not "".join(lines).strip():
        return True
    # the folder is inside the project's repository: without a ceiling, git would apply the paths relative to
    # the repository's top and skip them all as outside the folder
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    proc = subprocess.run(["git", "apply", f"-p{1 + depth}", "-"], input="".join(lines), cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode == 0


# --------------------------------------------------------------------------------------------------- inputs
def _lay_out_inputs(project: Project, steps: list[StepDescription], folder: Path) -> list[str]:
    """Make each input the steps read available at its path in ``folder``; returns notes on inputs that are not
    the run's."""
    from blase_tui.store.filehash import dataset_hash
    from blase_tui.store.remote import is_url

    store = project.store
    notes: list[str] = []
    made: set[str] = set()
    for s in steps:
        for d in s.datasets:
            path = d.path
            if d.role != "input" or not path or Path(path).is_absolute() or path in made \
                    or is_exclusion_set(path) or is_url(path):  # (the reproduction's store holds the sets saved
                continue                                          # before the run; a URL is read where it is)
            made.add(path)
            try:
                target = inside(folder, path, what="input path")
                source = inside(project.root, path, what="input path")
            except UnsafePath as exc:
                notes.append(f"{exc} It was not laid out")
                continue
            if target.exists():  # part of the code (blase.toml, a config file the run kept)
                continue
            kept = store.cas.dataset_files(d.hash) if d.hash else None
            if kept is not None:
                for name, digest, _size, _x in kept["files"]:
                    store.cas.link_into(digest, target if kept["kind"] == "file" else inside(target, name))
                continue
            if not source.exists():
                notes.append(f"input {path} is gone from the project and was not kept; the step that reads it"
                             " will fail")
                continue
            now = dataset_hash(store, source)
            if now != d.hash:
                notes.append(f"input {path} changed since the run ({_short(d.hash)} then, {_short(now)} now)")
            _link_tree(source, target)
        made.update(d.path for d in s.datasets if d.role == "output" and d.path)
    return notes


def _lay_out_runs(project: Project, steps: list[StepDescription], shadow: RunStore, run_id: str) -> set[str]:
    """The runs the steps were given by id (seed 004: ``--merged-cutouts-id M``) or read files of
    (``runs/<id>/...``), copied into the reproduction's store with their artifacts (linked, not copied), so
    ``runs.get(M).artifact_path(...)`` finds them there as it did; returns their ids (they are not adopted
    back: they are the project's already)."""
    from blase_tui.store import runrefs
    from blase_tui.store.reindex import import_run

    store = project.store
    wanted: dict[str, None] = {}
    for s in steps:
        for value in s.params.values():
            wanted.update(dict.fromkeys(runrefs.ids_in(value)))
        for d in s.datasets:
            if d.role == "input" and d.path and d.path.startswith("runs/"):
                wanted.update(dict.fromkeys(runrefs.ids_in(d.path)))
    copied: set[str] = set()
    for rid in wanted:
        if rid == run_id or store.get_run(rid) is None or shadow.get_run(rid) is not None:
            continue
        desc = store.describe_run(rid)
        for folder, artifacts in [("", desc.artifacts)] + [(s.folder, s.artifacts) for s in desc.steps]:
            for a in artifacts:
                if not store.cas.has(a.hash):
                    continue
                try:
                    target = inside(shadow.run_dir(rid) / folder / "artifacts", a.name, what="artifact name")
                except UnsafePath:
                    continue  # a name that leads out of the run's folder (a crafted run.json): left out
                object_ = shadow.cas.path_of(a.hash)
                for link in (object_, target):
                    if not link.exists():
                        link.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            os.link(store.cas.path_of(a.hash), link)
                        except OSError:
                            shutil.copyfile(store.cas.path_of(a.hash), link)
        import_run(shadow, desc)
        copied.add(rid)
    return copied


def _link_tree(source: Path, target: Path) -> None:
    """``source`` (a file or folder) at ``target`` by hard links (the data is not copied), copies where links
    cannot be made."""
    files = [(source, target)] if source.is_file() else [
        (p, target / p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
    for src, dst in files:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _short(digest: str | None) -> str:
    from blase_tui.core.fmt import fmt_hash

    return fmt_hash(digest)


# ---------------------------------------------------------------------------------------- adopt and compare
def _adopt(project: Project, folder: Path, run_id: str, referenced: set[str] | None = None,
           ) -> tuple[list[str], list[StepDescription]]:
    """Move the reproduction's runs into the project (closing one left open, tagged ``reproduces``; not the
    ``referenced`` runs it was given); returns their ids and their step executions, in order."""
    from blase_tui.store.reindex import adopt_run

    if not (folder / "runs" / "blase.db").exists():
        return [], []
    shadow = RunStore(folder)
    try:
        ids = [rid for rid in shadow.run_ids() if rid not in (referenced or set())]
        made: list[StepDescription] = []
        for rid in ids:
            row = shadow.get_run(rid)
            if row is not None and row.status == "running":
                shadow.close_run(rid)
            shadow.set_tags(rid, {REPRODUCES: run_id})
            made += shadow.describe_run(rid).steps
            adopt_run(project.store, shadow, rid)
    finally:
        shadow.close()
    made.sort(key=lambda s: s.started or 0)
    return ids, made


def _compare(project: Project, steps: list[StepDescription], made: list[StepDescription],
             folder: Path | None = None) -> list[Difference]:
    results: list[Difference] = []
    pool = list(made)
    for s in steps:
        again = next((m for m in pool if m.step == s.step), None)
        if again is not None:
            pool.remove(again)
        results += _compare_step(project, s, again, folder)
    return results


_TEXT = {".json", ".jsonl", ".txt", ".csv", ".tsv", ".md", ".yaml", ".yml", ".toml", ".log", ".py", ".sh", ".html",
         ".xml", ".ini", ".cfg"}
_TEXT_LIMIT = 8 << 20  # larger files are compared by hash only


def _content(project: Project, kind: str, path: str, digest: str, elsewhere: Path | None) -> bytes | None:
    """The bytes of a file output or artifact with hash ``digest``: from the content store, else the project's
    file (or the reproduction's, under ``elsewhere``) when it still hashes so; None when none is at hand."""
    from blase_tui.store.filehash import dataset_hash

    cas = project.store.cas
    candidates: list[Path] = []
    if kind == "artifact" and cas.has(digest):
        candidates.append(cas.path_of(digest))
    elif kind == "dataset":
        kept = cas.dataset_files(digest)
        if kept is not None and kept["kind"] == "file" and kept["files"]:
            candidates.append(cas.path_of(kept["files"][0][1]))
        for base in (project.root, elsewhere):
            if base is not None and path:
                try:
                    file = inside(base, path, what="output path")
                except UnsafePath:
                    continue
                if file.is_file() and dataset_hash(None, file) == digest:
                    candidates.append(file)
    for file in candidates:
        try:
            if file.stat().st_size <= _TEXT_LIMIT:
                return file.read_bytes()
        except OSError:
            continue
    return None


def first_differences(name: str, old: bytes, new: bytes, lines: int = 12) -> list[str]:
    """The first lines that differ between two versions of a text or JSON output, each old line beside its new
    one, and how many more differ (JSON laid out one key per line, in the file's order, so a one-line file still
    shows which value changed); [] for binary content."""
    import difflib

    def text(data: bytes) -> list[str] | None:
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if name.endswith(".json"):
            try:
                decoded = json.dumps(json.loads(decoded), indent=1, default=str)
            except ValueError:
                pass
        return decoded.splitlines()

    def cut(line: str) -> str:
        return line if len(line) <= 160 else line[:157] + "..."

    a, b = text(old), text(new)
    if a is None or b is None:
        return []
    out: list[str] = []
    left = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        pairs = [(f"- {x}" if x is not None else None, f"+ {y}" if y is not None else None)
                 for x, y in itertools.zip_longest(a[i1:i2], b[j1:j2])]
        for k, (minus, plus) in enumerate(pairs):
            shown = [cut(x) for x in (minus, plus) if x is not None]
            if left or len(out) + len(shown) + (1 if k == 0 else 0) > lines:
                left += sum(x is not None for p in pairs[k:] for x in p)
                break
            if k == 0:
                out.append(f"@@ line {i1 + 1} @@")
            out += shown
    if left:
        out.append(f"... and {left} more differing line{'s' if left > 1 else ''}")
    return out


def _compare_step(project: Project, s: StepDescription, again: StepDescription | None,
                  folder: Path | None = None) -> list[Difference]:
    name = s.step
    out: list[Difference] = []

    def json_of(kind: str, key: str, digest: str) -> Any:
        """The parsed content of a JSON output or artifact with this hash, when it is at hand."""
        if not key.endswith(".json") or not digest:
            return None
        data = _content(project, kind, key, digest, folder)
        try:
            return json.loads(data) if data is not None else None
        except ValueError:
            return None

    def pair(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for key in sorted(set(old) | set(new)):
            if key not in new:
                out.append(Difference(name, kind, key, MISSING, old[key], None))
            elif key not in old:
                out.append(Difference(name, kind, key, EXTRA, None, new[key]))
            elif old[key] == new[key]:
                out.append(Difference(name, kind, key, IDENTICAL, old[key], new[key]))
            elif kind == "metric" and is_timing(key):
                out.append(Difference(name, kind, key, TIMING, old[key], new[key]))
            elif kind == "metric":
                out.append(Difference(name, kind, key, DIFFERENT, old[key], new[key]))
            else:
                a, b = json_of(kind, key, old[key]), json_of(kind, key, new[key])
                if a is not None and b is not None and _without_volatile(a) == _without_volatile(b):
                    out.append(Difference(name, kind, key, EQUIVALENT, old[key], new[key]))
                    continue
                detail: list[str] = []
                if Path(key).suffix.lower() in _TEXT:
                    before = _content(project, kind, key, old[key], folder)
                    after = _content(project, kind, key, new[key], folder)
                    if before is not None and after is not None:
                        detail = first_differences(key, before, after)
                out.append(Difference(name, kind, key, DIFFERENT, old[key], new[key], detail))

    def outputs(step: StepDescription | None) -> dict[str, Any]:
        return {d.path or d.name: d.hash for d in (step.datasets if step else ()) if d.role == "output"}

    def artifacts(step: StepDescription | None) -> dict[str, Any]:
        return {a.name: a.hash for a in (step.artifacts if step else ())}

    pair("dataset", outputs(s), outputs(again))
    pair("artifact", artifacts(s), artifacts(again))
    pair("metric", s.metrics, again.metrics if again else {})
    return out
