"""`blase label`: keyboard labelling for active-learning rounds; export, count and list labels and rounds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from blase_tui.cli import common

app = typer.Typer(help="Label records in active-learning rounds; export and count labels.", no_args_is_help=False)

StrategyOpt = Annotated[str | None, typer.Option(
    "--strategy", help="least_confidence, margin, entropy, random, diversity or ordered (default: strategy in blase.toml)."
)]
CountOpt = Annotated[int | None, typer.Option("--n", help="Labels the round asks for (default: n in blase.toml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _check(strategy: str | None, n: int | None) -> None:
    from blase_tui.errors import ConfigError
    from blase_tui.labelling.config import STRATEGIES

    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy}: use one of {', '.join(STRATEGIES)}.")
    if n is not None and n < 1:
        raise ConfigError(f"--n {n}: a round needs at least one record.")


@app.callback(invoke_without_command=True)
def label(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    n: CountOpt = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="No screen: show each record as text and read one key per line from stdin (for ssh, scripts)."
    )] = False,
    labeller: Annotated[str | None, typer.Option("--labeller", help="Who labels (default: your user name).")] = None,
) -> None:
    """Label the next round: the last training run's model scores the pool, the records it is least sure of come
    first, and every key press is saved before the next record shows. An unfinished round resumes."""
    if ctx.invoked_subcommand is not None:
        return
    from blase_tui.labelling import config as config_mod

    _check(strategy, n)
    project = common.project()
    config_mod.load(project)  # a bad [labelling] is one sentence here, not an error inside the screen
    if plain:
        raise typer.Exit(_plain(project, strategy, n, labeller))
    from blase_tui.tui.app import run_labelling

    raise typer.Exit(run_labelling(project.root, strategy=strategy, n=n))


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _show(record: Any, done: int, target: int, key_name: str, secondary: str | None) -> None:
    head = f"[{done}/{target}] {key_name} {record.key}"
    if secondary:
        head += f"  {secondary} {record.secondary}"
    _out(head)
    _out(f"  why: {record.why}")
    if record.fields:
        _out("  " + "  ".join(f"{k}={common.fmt_value(v)}" for k, v in record.fields.items()))
    if record.series:
        _out("  series: " + ", ".join(f"{k} ({len(v)} points)" for k, v in record.series.items()))
    if record.image is not None:
        _out(f"  image: {len(record.image)} bytes")


def _plain(project: Any, strategy: str | None, n: int | None, labeller: str | None) -> int:
    from blase_tui.labelling.session import LabellingSession

    session = LabellingSession(project, strategy=strategy, n=n, labeller=labeller)
    cfg = session.config
    keys = ", ".join(f"{k} {v}" for k, v in cfg.keys.items()) + ", s skip, u undo, o url, q quit, ? help"
    r = session.round
    started = "resumed" if session.resumed else "started"
    model = f"model {r.model} (run {r.model_run})" if r.model else "no model"
    _out(f"round {r.number} {started}: {r.strategy}, {model}, target {r.target}" + (f"; {r.note}" if r.note else ""))
    warning = session.model_warning()
    if warning:
        _out(f"note: {warning}")
    _out(f"keys: {keys}")
    try:
        while not session.done:
            record = session.current()
            if record is None:
                break
            done, target = session.progress()
            _show(record, done, target, cfg.key, cfg.secondary)
            line = sys.stdin.readline()
            if not line:  # end of input: everything shown as saved is saved
                break
            key = line.strip()
            if not key:
                continue
            if key in cfg.keys:
                saved = session.label(key)
                _out(f"saved {saved.key} {saved.label}")
            elif key == "s":
                skipped = session.skip()
                _out(f"skipped {skipped.key}")
            elif key == "u":
                undone = session.undo()
                _out(f"undid {undone.key} {undone.label or 'skip'}" if undone else "nothing to undo in this round")
            elif key == "o":
                _out(f"url {record.url}" if record.url else "no url: set `url` in [labelling]")
            elif key == "q":
                break
            elif key == "?":
                _out(f"keys: {keys}")
            else:
                _out(f"unknown key {key!r}; keys: {keys}")
        done, target = session.progress()
        r = session.round
        if r.status == "open":
            _out(f"round {r.number}: {done}/{target} labelled; run `blase label` again to go on.")
        else:
            _out(f"round {r.number} {r.status}: {done}/{target} labelled; train on the labels next"
                 f" (`blase step {cfg.train_step}`).")
    finally:
        session.close()
    return 0


@app.command("export")
def export_command(
    out: Annotated[str | None, typer.Option("--out", "-o", help="CSV file to write (default: stdout).")] = None,
    values: Annotated[bool, typer.Option("--values", help="Write each label's training target (\\[labelling.targets]:"
                                         " 1, 0; empty for a label without one, such as unsure) instead of its name,"
                                         " as seed 002's labels.csv has them; when two labels share a target, a"
                                         " label_name column beside it, so that the file imports back.")] = False,
    rounds: Annotated[bool, typer.Option("--round", help="Add a `round` column: the round each label was made in"
                                         " (empty for imported labels).")] = False,
) -> None:
    """Write the current labels as CSV with the seed's columns: key, secondary id, label, timestamp (UTC)."""
    from blase_tui.labelling import config as config_mod
    from blase_tui.store import labels as label_store

    project = common.project()
    cfg = config_mod.load(project)
    target = out if out is not None else sys.stdout
    # targets that two labels share (bogus and varstar both 0) cannot be read back alone: the names go beside them
    shared = values and any(_reads_back(cfg, label) is not True for label in set(cfg.keys.values()))
    n = label_store.export_csv(project.store, target, key_name=cfg.key, secondary_name=cfg.secondary,
                               label_text=cfg.value_of if values else None, with_round=rounds, with_names=shared)
    if out is not None:
        common.err_console.print(f"wrote {n} labels to {out}", markup=False)


def _reads_back(cfg: Any, label: str) -> bool:
    try:
        return cfg.label_for(cfg.value_of(label)) == label
    except ValueError:
        return False


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="CSV with a key column (e.g. candid), label, and optionally the "
                                              "secondary id and timestamp: what `blase label export` writes.")],
    labeller: Annotated[str | None, typer.Option("--labeller", help="Who made these labels (default: import).")] = None,
) -> None:
    """Add labels made elsewhere, such as the seed's labels.csv; all or nothing, and a second import of the
    same file changes nothing."""
    import csv

    from blase_tui.errors import ConfigError
    from blase_tui.labelling import config as config_mod
    from blase_tui.store import labels as label_store

    project = common.project()
    cfg = config_mod.load(project)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give the CSV to import (columns {cfg.key}, label[, timestamp]).")
    vocabulary = set(cfg.keys.values())
    rows = []
    seen: dict[str, tuple[int, str]] = {}  # key -> (line, label) of its first row
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        key_col = cfg.key if cfg.key in columns else "key"
        if key_col not in columns or "label" not in columns:
            raise ConfigError(f"{path} needs a `{cfg.key}` and a `label` column; it has {', '.join(columns) or 'none'}.")
        for line, row in enumerate(reader, start=2):
            text = (row.get("label") or "").strip()
            named = (row.get("label_name") or "").strip()  # `export --values` writes it when targets are shared
            try:
                label = named if named in vocabulary else cfg.label_for(named or text)
            except ValueError as exc:
                raise ConfigError(f"{path}:{line}: {exc}. Nothing was imported.") from None
            if label is None:
                values = sorted({cfg.value_of(v) for v in vocabulary} - {""})
                raise ConfigError(f"{path}:{line}: label {text!r} is not in [labelling.keys] "
                                  f"({', '.join(sorted(vocabulary))})" + (f" nor a target ({', '.join(values)})"
                                                                          if values else "")
                                  + "; add a key for it, or fix the file. Nothing was imported.")
            stamp = (row.get("timestamp") or "").strip()
            try:  # the text goes in as written (export gives it back); its instant is checked here
                if stamp:
                    label_store.parse_timestamp(stamp)
            except ValueError:
                raise ConfigError(f"{path}:{line}: timestamp {stamp!r} is not ISO 8601 (2025-06-01T12:00:00); "
                                  "fix it or leave it empty. Nothing was imported.") from None
            secondary = (row.get(cfg.secondary) or None) if cfg.secondary else None
            key = row[key_col].strip()
            if key in seen and seen[key][1] != label:  # which one was meant: the file cannot say
                raise ConfigError(f"{path}:{line}: {key} is labelled {label!r} here and {seen[key][1]!r} on line"
                                  f" {seen[key][0]}; keep one of them. Nothing was imported.")
            seen[key] = (line, label)
            rows.append((key, secondary, label, cfg.target_of(label), stamp or None))
    added, unchanged = label_store.import_labels(project.store, rows, labeller=labeller or "import")
    common.console.print(f"imported {added} label{'' if added == 1 else 's'} from {path}"
                         + (f" ({unchanged} already there)" if unchanged else ""), markup=False)


@app.command("stats")
def stats_command(json_: JsonOpt = False) -> None:
    """Current labels per label, per round and per labeller."""
    from blase_tui.store import labels as label_store

    data = label_store.stats(common.project().store)
    if json_:
        common.print_json(data)
        return
    c = common.console
    if not data["total"] and not data["rounds"]:
        c.print("No labels yet. Start a round with `blase label`.")
        return
    c.print(f"{data['total']} labels ({data['undone']} undone along the way)")
    table = common.table("LABEL", "COUNT")
    for name, count in data["labels"].items():
        table.add_row(name, str(count))
    c.print(table)
    if data["rounds"]:
        table = common.table("ROUND", "STATUS", "STRATEGY", "MODEL", "DONE", "LABELLED", "SKIPPED")
        for r in data["rounds"]:
            table.add_row(str(r["round"]), common.status_text(r["status"]), r["order"], r["model"] or "-",
                          f"{r['done']}/{r['target']}", str(r["labelled"]), str(r["skipped"]))
        c.print(table)
    else:
        c.print("no rounds yet (imported labels belong to none); `blase label` starts one")
    table = common.table("LABELLER", "LABELS")
    for name, count in data["labellers"].items():
        table.add_row(name, str(count))
    c.print(table)


@app.command("rounds")
def rounds_command(json_: JsonOpt = False) -> None:
    """Every label round: number, status, strategy, model, progress, start and end."""
    from blase_tui.store import labels as label_store

    store = common.project().store
    rows = [{**vars(r), "order": r.order, "done": label_store.progress(store, r.number)}
            for r in label_store.rounds(store)]
    if json_:
        common.print_json(rows)
        return
    if not rows:
        common.console.print("No label rounds yet. Start one with `blase label`.")
        return
    table = common.table("ROUND", "STATUS", "STRATEGY", "MODEL", "MODEL RUN", "DONE", "STARTED", "ENDED", "NOTE",
                         wrap=("NOTE",))
    for r in rows:
        table.add_row(str(r["number"]), common.status_text(r["status"]), r["order"], r["model"] or "-",
                      r["model_run"] or "-", f"{r['done']}/{r['target']}", common.fmt_time(r["started"]),
                      common.fmt_time(r["ended"]) if r["ended"] else "-", r["note"] or "")
    common.console.print(table)


@app.command("queue")
def queue_command(strategy: StrategyOpt = None, n: CountOpt = None, json_: JsonOpt = False) -> None:
    """Show the records a new round would offer, in order, without starting one."""
    from blase_tui.labelling.queue import QueueSummary, build_queue

    _check(strategy, n)
    queue = build_queue(common.project(), strategy=strategy, n=n)
    summary = QueueSummary.of(queue)
    if json_:
        common.print_json(vars(summary))
        return
    c = common.console
    model = f"model {summary.model} (run {summary.model_run})" if summary.model else "no model"
    c.print(f"{summary.strategy}, {model}: {len(queue.items)} records from {summary.scanned} scanned"
            f" ({summary.excluded} already labelled or trained on) in {summary.seconds:.2f} s", markup=False)
    if summary.note:
        c.print(summary.note, markup=False)
    table = common.table("#", "KEY", "SECONDARY", "SCORE", "WHY", wrap=("WHY",))
    for i, item in enumerate(queue.items, start=1):
        table.add_row(str(i), item.key, item.secondary or "-", f"{item.score:.4g}", item.why)
    c.print(table)


@app.command("end-round")
def end_round_command() -> None:
    """Close the unfinished round as it is (its labels stay); the next `blase label` starts a new one."""
    from blase_tui.store import labels as label_store

    store = common.project().store
    current = label_store.open_round(store)
    if current is None:
        common.console.print("No round is open.")
        return
    label_store.end_round(store, current.number)
    done = label_store.progress(store, current.number)
    common.console.print(f"ended round {current.number} with {done}/{current.target} labels.")


@app.command("history")
def history_command(key: Annotated[str, typer.Argument(help="A record key, such as a candid.")], json_: JsonOpt = False) -> None:
    """Every label, skip and undo of one record, oldest first."""
    from blase_tui.store import labels as label_store

    rows = label_store.history(common.project().store, key)
    if json_:
        common.print_json([vars(r) for r in rows])
        return
    if not rows:
        common.console.print(f"No labels for {key}.", markup=False)
        return
    table = common.table("ID", "TIME", "ACTION", "LABEL", "TARGET", "ROUND", "LABELLER", "ACTIVE")
    for r in rows:
        table.add_row(str(r.id), common.fmt_time(r.ts), r.action, r.label or "-", "-" if r.target is None else str(r.target),
                      str(r.round or "-"), r.labeller or "-", "yes" if r.active else f"no (by {r.superseded_by})")
    common.console.print(table)
