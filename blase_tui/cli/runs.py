"""`blase runs ...`: list, show, artifact, find, lineage, restore, reproduce, diff, watch, edit, close, cancel, delete and
reindex the project's runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from blase_tui.cli import common
from blase_tui.cli.hot import check_status
from blase_tui.core.fmt import fmt_hash
from blase_tui.errors import EXIT_FAILED, BlaseError, ConfigError

if TYPE_CHECKING:
    from blase_tui.store.records import StepDescription

app = typer.Typer(no_args_is_help=True, help="Find, inspect and compare runs.")

def _store():  # type: ignore[no-untyped-def]
    store = common.project().store
    store.recover_dead()
    return store


def _steps_text(steps: list[dict[str, Any]]) -> str:
    marks = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]", "interrupted": "[yellow]![/]", "running": "[cyan]…[/]"}
    return " ".join(f"{s['step']}{marks.get(s['status'], '?')}" for s in steps) or "-"


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    step: Annotated[str | None, typer.Option(help="Only runs that executed this step.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first (0: all).")] = 20,
    model: Annotated[str | None, typer.Option(help="Only runs that registered a version of this model.")] = None,
    since: Annotated[str | None, typer.Option(help="Only runs started on or after this date (2026-12-01, or"
                                                    " 2026-12-01T14:00).")] = None,
    until: Annotated[str | None, typer.Option(help="Only runs started before this date.")] = None,
    hash_: Annotated[str | None, typer.Option("--hash", help="Only runs with a step signature, code, environment"
                                                             " or dataset hash starting with this.")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", "-w", metavar="NAME>NUMBER",
                                                    help="A metric (or numeric param) condition (repeatable).")] = None,
    all_projects: Annotated[bool, typer.Option("--all-projects", "-A", help="Runs of every known project (`blase"
                                                                          " projects list`), with a PROJECT column.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first (a run `runs reproduce` made says which run it reproduces)."""
    from blase_tui.store.query import list_runs, shown_name

    if hash_ is not None and not (hash_ and all(c in "0123456789abcdefABCDEF" for c in hash_)):
        raise ConfigError(f"--hash {hash_}: a hash prefix is hex digits (0-9, a-f), e.g. --hash 0c6265df.")
    filters = {"status": check_status(status), "step": step, "model": model, "since": _date(since, "--since"),
               "until": _date(until, "--until"), "hash_prefix": hash_, "where": list(where or [])}
    if all_projects:
        from blase_tui.store.query import parse_where

        for w in filters["where"]:
            parse_where(w)  # a malformed condition is one line (exit 2), not one per project
        _list_all_projects(filters, limit, json_)
        return
    runs = list_runs(_store(), limit=limit, metrics=None if json_ else 3, check=True, **filters)
    if json_:
        common.print_json(runs)
        return
    from blase_tui.store.reindex import unindexed

    missing = unindexed(_store())
    hint = (f"runs/ holds {len(missing)} run folder(s) the index does not list ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}): `blase runs reindex` adds them.") if missing else None
    if not runs:
        if any(v for v in filters.values()):
            common.console.print("No runs match those filters; `blase runs list` shows them all.")
        elif hint:
            common.console.print(f"No runs in the index; {hint}", markup=False)
        else:
            common.console.print("No runs yet. Run a step with `blase step NAME`.")
        return
    named = any(shown_name(r) for r in runs)  # a NAME column once some run has one (`blase runs edit --name`)
    columns = ("RUN", "STATUS", *(("NAME",) if named else ()), "STEPS", "STARTED", "DURATION", "METRICS")
    table = common.table(*columns, wrap=("METRICS",))
    for r in runs:
        metrics = "  ".join(f"{k}={common.fmt_value(v)}" for k, v in r["metrics"].items())
        name = (shown_name(r),) if named else ()
        table.add_row(r["id"], common.status_text(r["status"]), *name, _steps_text(r["steps"]),
                      common.fmt_time(r["started"]), common.fmt_duration(r["started"], r["ended"]), metrics)
    common.console.print(table)
    if hint and not any(v for v in filters.values()):
        common.err_console.print(f"blase: {hint}", markup=False)


def _date(text: str | None, option: str) -> float | None:
    """``2026-12-01`` or ``2026-12-01T14:00`` (local time) as a timestamp."""
    if text is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(f"{option} {text}: write a date as 2026-12-01 or 2026-12-01T14:00.") from None


def _list_all_projects(filters: dict[str, Any], limit: int, json_: bool) -> None:
    """Every known project's runs that match, newest first, each with its project."""
    from blase_tui.core.project import Project
    from blase_tui.core.registry import list_projects
    from blase_tui.store.query import list_runs

    runs: list[dict[str, Any]] = []
    for known in list_projects():
        if not known["exists"]:
            common.err_console.print(f"blase: project {known['name']} ({known['path']}) is gone; `blase projects"
                                     f" remove {known['path']}` forgets it.", markup=False)
            continue
        try:
            project = Project.at(Path(known["path"]))
            found = list_runs(project.store, limit=limit, metrics=None if json_ else 3, **filters)
        except BlaseError as exc:
            common.err_console.print(f"blase: project {known['name']}: {exc}", markup=False)
            continue
        runs += [{**r, "project": project.config.name, "project_path": str(project.root)} for r in found]
    runs.sort(key=lambda r: r["started"] or 0, reverse=True)
    runs = runs[:limit] if limit and limit > 0 else runs
    if json_:
        common.print_json(runs)
        return
    if not runs:
        common.console.print("No run of any known project matches; `blase projects list` shows the projects.")
        return
    table = common.table("PROJECT", "RUN", "STATUS", "STEPS", "STARTED", "DURATION", "METRICS", wrap=("METRICS",))
    for r in runs:
        metrics = "  ".join(f"{k}={common.fmt_value(v)}" for k, v in r["metrics"].items())
        table.add_row(r["project"], r["id"], common.status_text(r["status"]), _steps_text(r["steps"]),
                      common.fmt_time(r["started"]), common.fmt_duration(r["started"], r["ended"]), metrics)
    common.console.print(table)


@app.command("show")
def show_command(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix or tail of one, a run's name, or `latest`.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Everything about one run: steps, params, metrics, artifacts, datasets, environment, git."""
    from blase_tui.store.exclusions import dataset_label
    from blase_tui.store.runstore import REPRODUCES

    store = _store()
    desc = store.describe_run(store.resolve_run(run))
    if json_:
        common.print_json(desc.to_json())
        return
    c = common.console
    r = desc.run
    c.print(f"[bold]run {r.id}[/]  {common.status_text(r.status)}" + (f"  name: {r.name}" if r.name else ""))
    if desc.tags.get(REPRODUCES):
        c.print(f"  a reproduction of run {desc.tags[REPRODUCES]} (`blase runs reproduce`): left out of `runs"
                " find` and never reused", markup=False)
    c.print(f"  started {common.fmt_time(r.started)}, took {common.fmt_duration(r.started, r.ended)}"
            + ("  (open: later steps join it)" if r.status == "running" and r.explicit else ""))
    if r.note:
        c.print(f"  note: {r.note}")
    if r.git_commit:
        c.print(f"  git {r.git_commit[:12]}" + (" (uncommitted changes kept in git.patch)" if r.git_dirty else ""))
    c.print(f"  folder {store.run_dir(r.id)}")
    for title, values in (("tags", desc.tags), ("params", desc.params), ("metrics", desc.metrics)):
        if values:
            c.print(f"  {title}: " + ", ".join(f"{k}={common.fmt_value(v)}" for k, v in values.items()))
    for s in desc.steps:
        c.print(f"\n  [bold]step {s.step}[/]  {common.status_text(s.status)}"
                f"  {common.fmt_time(s.started)}  {common.fmt_duration(s.started, s.ended)}"
                + (f"  peak memory {common.fmt_bytes(s.peak_rss)}" if s.peak_rss else ""))
        if s.skipped_from:
            c.print(f"    reused the outputs of run {s.reused_from_run or '(gone)'} (nothing ran)")
        if s.error:
            c.print(f"    {s.error}", markup=False)
        if s.params:
            c.print("    params: " + ", ".join(f"{k}={common.fmt_value(v)}" for k, v in s.params.items()))
        if s.metrics:
            c.print("    metrics: " + ", ".join(f"{k}={common.fmt_value(v)}" for k, v in s.metrics.items()))
        for d in s.datasets:
            verb = "read" if d.role == "input" else "wrote"
            c.print(f"    {verb} {dataset_label(d)}  {common.fmt_bytes(d.bytes)}  {fmt_hash(d.hash)}")
        for a in s.artifacts:
            c.print(f"    artifact {a.name}  {common.fmt_bytes(a.size)}  {fmt_hash(a.hash)}")
        if s.code_hash:
            c.print(f"    code {fmt_hash(s.code_hash)}  params {fmt_hash(s.params_hash)}  env {fmt_hash(s.env_hash)}")
    for d in desc.datasets:
        verb = "read" if d.role == "input" else "wrote"
        c.print(f"  {verb} {dataset_label(d)}  {common.fmt_bytes(d.bytes)}  {fmt_hash(d.hash)}")
    code = [a for a in desc.artifacts if a.name.startswith("code/")]
    for a in desc.artifacts:
        if not a.name.startswith("code/"):
            c.print(f"  artifact {a.name}  {common.fmt_bytes(a.size)}  {fmt_hash(a.hash)}")
    if code:
        names = ", ".join(a.name[5:] for a in code[:4]) + (f" and {len(code) - 4} more" if len(code) > 4 else "")
        c.print(f"  code kept: {names}  ({common.fmt_bytes(sum(a.size or 0 for a in code))}, in artifacts/code/)",
                markup=False)


@app.command("artifact")
def artifact_command(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix or tail of one, a run's name, or `latest`.")],
    path: Annotated[str | None, typer.Argument(help="STEP/NAME of an artifact (train/model/cnn.pt) or a file of the run's folder (train/log.txt, run.json); none lists them.")] = None,
    width: Annotated[int | None, typer.Option(help="Columns to fit (default: the terminal's, 100 when piped).")] = None,
    rows: Annotated[int, typer.Option(help="Table rows or text lines to show.")] = 20,
) -> None:
    """Preview one of a run's artifacts as the TUI shows it: a table's head, an array's statistics, an image in
    half-blocks, a model card, a log's head and tail."""
    from blase_tui.render import IMAGE_SUFFIXES, render_preview

    store = _store()
    run_id = store.resolve_run(run)
    desc = store.describe_run(run_id)
    folder = store.run_dir(run_id)
    if path is None:
        table = common.table("ARTIFACT", "SIZE", "HASH")
        for s in desc.steps:
            for a in s.artifacts:
                table.add_row(f"{s.folder}/{a.name}", common.fmt_bytes(a.size), fmt_hash(a.hash))
        for a in desc.artifacts:  # the run's own (the project code kept with it): under its artifacts/
            table.add_row(f"artifacts/{a.name}", common.fmt_bytes(a.size), fmt_hash(a.hash))
        if not table.row_count:
            common.console.print(f"run {run_id} has no artifacts; `blase runs show {run_id}` says what it did.")
            return
        common.console.print(table)
        return
    target = _artifact_file(folder, desc.steps, path)
    if target is None:  # an artifact's name without its step, as `blase runs show` lists it under the step
        owners = [s.folder for s in desc.steps if any(a.name == path.strip("/") for a in s.artifacts)]
        if len(owners) > 1:
            raise ConfigError(f"{path} is an artifact of {', '.join(owners)}; name one, e.g."
                              f" `blase runs artifact {run} {owners[-1]}/{path.strip('/')}`.")
        if owners:
            target = _artifact_file(folder, desc.steps, f"{owners[0]}/{path.strip('/')}")
    if target is None:
        raise ConfigError(f"run {run_id} has no artifact or file {path}; `blase runs artifact {run_id}` lists them.")
    if target.suffix.lower() in IMAGE_SUFFIXES and common.console.color_system is None:
        # half-blocks without colour are a grey wall: say where the picture is instead
        common.console.print(f"{target.name}: an image; its preview needs a colour terminal (run this without a"
                             f" pipe), or open {target}", markup=False)
        return
    preview_width = width or (common.console.width if sys.stdout.isatty() else 100)
    common.console.print(render_preview(target, width=preview_width, max_rows=rows), width=preview_width)


def _artifact_file(folder: Path, steps: tuple[StepDescription, ...], path: str) -> Path | None:
    """The file ``path`` names in a run's ``folder``: STEP/NAME (a step's name or folder, then the artifact's
    name) or a path inside the folder; None when there is none or the path leads outside it."""
    head, _, rest = path.strip("/").partition("/")
    candidates = [folder / s.folder / "artifacts" / rest for s in steps if rest and head in (s.folder, s.step)]
    candidates.append(folder / path)
    root = folder.resolve()
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_relative_to(root) and resolved.exists():
            return resolved
    return None


@app.command("find")
def find_command(
    step: Annotated[str | None, typer.Option(help="The step the run executed.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE", help="A param value to match (repeatable; numbers match as numbers).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", metavar="KEY=VALUE", help="A tag to match (repeatable).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The run's name, or a glob such as 'cutouts*'.")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", "-w", metavar="NAME>NUMBER", help="A metric (or numeric param) condition: >, >=, <, <=, =, != (repeatable).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="When several runs match, take the newest.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Print every match, newest first, one per line.")] = False,
    path: Annotated[bool, typer.Option("--path", help="Print the run folder instead of the run id.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the matches as JSON (id, name, status, folder, params, metrics).")] = False,
    status: Annotated[str, typer.Option(help="Status of the step's execution (of the run without --step): succeeded, failed, interrupted, running or any.")] = "succeeded",
    reproductions: Annotated[bool, typer.Option("--reproductions", help="Also find runs `runs reproduce` made (left out otherwise).")] = False,
) -> None:
    """Print the id (or folder) of the one run that matches, for scripts: RUN=$(blase runs find --step cutouts --param window_size=64). When several match and neither --latest nor --all is given, exits 1 and shows which params tell them apart; so does no match. --json prints the matches (or []) and exits with the same code. An unknown step or param, or a --param value that starts like JSON but does not parse, is a usage error (exit 2)."""
    from blase_tui.cli import hot  # the implementation `blase runs find` runs without Typer

    raise typer.Exit(hot.find(common.project_dir(), step=step, param=param, tag=tag, name=name, where=where,
                              latest=latest, all_=all_, path=path, json_=json_, status=status,
                              reproductions=reproductions))


@app.command("lineage")
def lineage_command(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix or tail, or `latest`.")],
    down: Annotated[bool, typer.Option("--down", help="The runs this run fed, instead of those that fed it.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON: runs and links.")] = False,
) -> None:
    """The runs that fed a run (params that hold run ids, files read from a run's folder, data one run wrote and
    another read, reused steps), or with --down those it fed, as a tree."""
    from blase_tui.store.lineage import lineage
    from blase_tui.store.query import shown_name

    store = _store()
    graph = lineage(store, store.resolve_run(run), down=down)
    if json_:
        common.print_json(graph.as_dict())
        return
    arrow = "->" if down else "<-"

    def label(rid: str) -> str:
        info = graph.runs[rid]
        name = shown_name(info)
        return f"{rid}  {' '.join(info['steps']) or '-'}" + (f"  ({name})" if name else "")

    print(label(graph.run))
    shown: set[str] = set()

    def walk(rid: str, depth: int) -> None:
        nexts: dict[str, list[str]] = {}
        for link in graph.links:
            if (link.source if down else link.target) == rid:
                nexts.setdefault(link.target if down else link.source, []).append(link.via)
        for other, vias in nexts.items():
            again = other in shown
            print(f"{'   ' * depth}{arrow} {label(other)}  via {', '.join(vias)}" + ("  (shown above)" if again else ""))
            if not again:
                shown.add(other)
                walk(other, depth + 1)

    walk(graph.run, 1)
    if not graph.links:
        print(f"   (no run {'used its outputs' if down else 'fed it'}: no param holds a run id, no input was another run's"
              " output)")


@app.command("restore")
def restore_command(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix or tail, or `latest`.")],
    step: Annotated[str | None, typer.Option(help="Only this step's outputs.")] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Put them under this folder instead of where they were.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that changed since the run.")] = False,
) -> None:
    """Put a run's recorded outputs back from the content store: its artifacts, and its output datasets (kept by
    content up to \\[project] keep_outputs each), at the path the step wrote them. Says what it could not restore;
    exit 1 when anything was left out."""
    from blase_tui.store.restore import restore

    store = _store()
    report = restore(store, store.resolve_run(run), step=step, to=to.resolve() if to else None, force=force)
    c = common.console
    for what, items in (("restored", report.restored), ("unchanged", report.unchanged)):
        for item in items:
            c.print(f"{what:10} {item}", markup=False)
    for item in report.changed:
        c.print(f"{'changed':10} {item}: differs from the run's; left alone (--force overwrites it)", markup=False)
    for item in report.not_stored:
        c.print(f"{'not stored':10} {item}: cannot be restored", markup=False)
    for item in report.refused:
        c.print(f"{'refused':10} {item}", markup=False)
    if report.changed or report.not_stored or report.refused:
        raise typer.Exit(EXIT_FAILED)


@app.command("reproduce")
def reproduce_command(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix or tail, or `latest`.")],
    step: Annotated[str | None, typer.Option(help="Only this step (its inputs from earlier steps come from what"
                                             " blase kept).")] = None,
    code: Annotated[str, typer.Option(help="`recorded`: the code the run ran; `current`: the project's code now"
                                      " (what would my change do to this run's outputs).")] = "recorded",
    keep: Annotated[bool, typer.Option("--keep", help="Keep the reproduction's folder even when all is identical.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Execute a run's steps again from its recorded code, params and inputs, into a new run, and say per
    output (datasets, artifacts, metrics) whether it is identical. Differences in the environment and inputs
    are listed first. Exit 0: all identical; 1: something differs or a step failed."""
    from blase_tui.core.reproduce import EQUIVALENT, IDENTICAL, TIMING, reproduce

    project = common.project()
    project.store.recover_dead()
    report = reproduce(project, run, step=step, code=code, keep=keep)
    if json_:
        common.print_json({
            "run": report.run_id, "code": report.code, "new_runs": report.new_runs, "identical": report.identical,
            "notes": report.notes, "failed": report.failed,
            "folder": str(report.folder) if report.folder else None,
            "results": [vars(r) for r in report.results],
        })
    else:
        c = common.console
        for note in report.notes:
            c.print(f"note       {note}", markup=False)
        for r in report.results:
            where = f"{r.step}: {r.kind} {r.name}"
            if r.status == IDENTICAL:
                c.print(f"{'identical':10} {where}", markup=False)
            elif r.status == EQUIVALENT:
                c.print(f"{'same':10} {where} (apart from timings and run ids)", markup=False)
            elif r.status == TIMING:
                c.print(f"{'timing':10} {where}: {_value(r.recorded)} then, {_value(r.now)} now (not compared)",
                        markup=False)
            else:
                c.print(f"{r.status:10} {where}: {_value(r.recorded)} when recorded, {_value(r.now)} now",
                        markup=False)
                for line in r.detail:
                    c.print(f"{'':10}   {line}", markup=False)
        if report.failed:
            c.print(f"failed     {report.failed}", markup=False)
        runs = ", ".join(report.new_runs) or "none"
        verdict = "identical" if report.identical else "NOT identical"
        same = sum(r.status == EQUIVALENT for r in report.results)
        if report.identical and same:
            verdict += f" ({same} JSON output{'s' if same > 1 else ''} the same apart from timings and run ids)"
        c.print(f"run {report.run_id} reproduced as {runs}: {verdict}"
                + (f"; its files are in {report.folder}" if report.folder else ""), markup=False)
    if not report.identical:
        raise typer.Exit(EXIT_FAILED)


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str) and (len(value) > 24 and ":" not in value[:8] or value.startswith("xxh3:")):
        return fmt_hash(value)
    return str(value)


@app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="First run (id, prefix or `latest`).")],
    b: Annotated[str, typer.Argument(help="Second run.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What differs between two runs: params, metrics, code, data, environment and git."""
    from blase_tui.core.fmt import cell, delta_text
    from blase_tui.store.diff import diff_runs, summary

    store = _store()
    run_a, run_b = store.resolve_run(a), store.resolve_run(b)
    if run_a == run_b:
        raise ConfigError(f"`{a}` and `{b}` are the same run, {run_a}: nothing differs; give two runs"
                          " (`blase runs list` shows them).")
    result = diff_runs(store, run_a, run_b)
    if json_:
        common.print_json(result)
        return

    c = common.console
    c.print(f"[bold]A[/] {result['a']} ({result['status'][0]})   [bold]B[/] {result['b']} ({result['status'][1]})")
    for section, data in result["sections"].items():
        changed = data["changed"]
        c.print(f"\n[bold]{section}[/]: {summary(data)}")
        if not changed:
            continue
        metrics = section == "metrics"
        table = common.table("", "A", "B", *(("B VS A",) if metrics else ()), wrap=("A", "B"))
        for key, (va, vb) in changed.items():
            fa, fb = (cell(section, v) for v in (va, vb))
            row = ["  " + key, fa or "[dim]absent[/]", fb or "[dim]absent[/]"]
            if metrics:  # how B moved from A: better or worse (lower is better for losses, errors, times)
                found = delta_text(key, va, vb)
                row.append("" if found is None else found[0] if found[1] == "same" else
                           f"{found[0]} [{'green' if found[1] == 'better' else 'red'}]"
                           f"{'✓' if found[1] == 'better' else '✗'} {found[1]}[/]")
            table.add_row(*row)
        c.print(table)


@app.command("close")
def close_command(
    run: Annotated[str, typer.Argument(help="The open run (id, prefix or `latest`).")],
    status: Annotated[str | None, typer.Option(help="succeeded, failed or interrupted (default: from its steps).")] = None,
) -> None:
    """Close a run left open by --start-run."""
    store = _store()
    run_id = store.resolve_run(run)
    row = store.get_run(run_id)
    if row is None or row.status != "running":
        raise ConfigError(f"run {run_id} is already closed ({row.status if row else 'deleted'}).")
    if status is not None and status not in ("succeeded", "failed", "interrupted"):
        raise ConfigError(f"--status {status}: use succeeded, failed or interrupted.")
    running = store.running_steps(run_id)
    if running:
        raise ConfigError(f"step `{running[0]}` of run {run_id} is still running; wait for it or stop it first.")
    from blase_tui.core.execution import snapshot_code

    snapshot_code(common.project(), run_id)
    final = store.close_run(run_id, status)
    from blase_tui.core import plugins

    project = common.project()
    plugins.after_run_closed(project.root, run_id, project.config.plugins)
    common.console.print(f"closed run {run_id}: {final}")


@app.command("edit")
def edit_command(
    run: Annotated[str, typer.Argument(help="The run (id, prefix, tail, name or `latest`).")],
    name: Annotated[str | None, typer.Option(help="A new name (\"\" removes it).")] = None,
    note: Annotated[str | None, typer.Option(help="A note: what the run was for, what came of it (\"\" removes it).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", metavar="KEY=VALUE", help="Set a tag (repeatable).")] = None,
    untag: Annotated[list[str] | None, typer.Option("--untag", metavar="KEY", help="Remove a tag (repeatable).")] = None,
) -> None:
    """Name a run, note what it was for, tag it."""
    if name is None and note is None and not tag and not untag:
        raise ConfigError("nothing to change: give --name, --note, --tag KEY=VALUE or --untag KEY.")
    tags = {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag {item}: write it as KEY=VALUE (e.g. --tag dataset=v2).")
        tags[key.strip()] = value.strip()
    store = _store()
    run_id = store.resolve_run(run)
    missing = [key for key in untag or [] if key not in store.describe_run(run_id).tags]
    if missing:  # a misspelt tag would otherwise stay, with "done" printed
        raise ConfigError(f"--untag {missing[0]}: run {run_id} has no tag `{missing[0]}`; `blase runs show {run_id}`"
                          " lists its tags.")
    store.edit_run(run_id, name=name, note=note, tags=tags, untag=untag or ())
    desc = store.describe_run(run_id)
    row = desc.run
    parts = [f"name {row.name!r}" if row.name else "no name", f"note {row.note!r}" if row.note else "no note"]
    current = desc.tags
    parts.append("tags " + ", ".join(f"{k}={v}" for k, v in current.items()) if current else "no tags")
    common.console.print(f"run {run_id}: " + "; ".join(parts))


@app.command("delete")
def delete_command(
    runs: Annotated[list[str], typer.Argument(help="The runs (ids, prefixes or `latest`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (for scripts and cron).")] = False,
) -> None:
    """Delete finished runs: their folders and records. The content they held is reclaimed by `blase gc`
    (a model registered from a run stays loadable)."""
    store = _store()
    run_ids = list(dict.fromkeys(store.resolve_run(r) for r in runs))
    running = [r for r in run_ids if (row := store.get_run(r)) is not None and row.status == "running"]
    if running:
        raise ConfigError(f"run {running[0]} is running; stop it first (`blase runs cancel {running[0]}`).")
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"deleting {len(run_ids)} run(s) needs --yes when nobody can be asked.")
        names = ", ".join(run_ids[:5]) + (f" and {len(run_ids) - 5} more" if len(run_ids) > 5 else "")
        if not typer.confirm(f"Delete {names}? Their folders and records go; `blase gc` then frees the space."):
            raise typer.Exit(EXIT_FAILED)
    for run_id in run_ids:
        store.delete_run(run_id)
        common.console.print(f"deleted run {run_id}")
    common.console.print(("its" if len(run_ids) == 1 else "their") + " content stays in the store until `blase gc`"
                         " (`blase gc --dry-run` says how much).")


@app.command("cancel")
def cancel_command(
    run: Annotated[str | None, typer.Argument(help="The run (id, prefix, tail, name or `latest`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every running step of the project.")] = False,
    step: Annotated[str | None, typer.Option(help="Only this step.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for them to stop (0: do not wait).")] = 30.0,
) -> None:
    """Stop running steps, whoever started them (cron, another terminal, the TUI): SIGTERM, as Ctrl-C; each is
    marked interrupted."""
    from blase_tui.core.launch import cancel_running, wait_stopped

    if (run is None) == (not all_):
        raise ConfigError("name the run whose steps to stop (`blase runs cancel RUN`), or pass --all for every"
                          " running step of the project.")
    store = _store()
    run_id = store.resolve_run(run) if run else None
    stopping = cancel_running(store, run_id, step=step)
    if not stopping:
        common.console.print("nothing to stop: the running steps had already ended.")
        return
    for s in stopping:
        common.console.print(f"stopping step `{s.step}` of run {s.run_id} (pid {s.pid})")
    if wait <= 0:
        return
    status = wait_stopped(store, stopping, wait)
    late = [s for s in stopping if status[s.step_run_id] == "running"]
    for s in stopping:
        if s not in late:
            common.console.print(f"step `{s.step}` of run {s.run_id}: {status[s.step_run_id]}")
    if late:
        names = ", ".join(f"`{s.step}` (pid {s.pid})" for s in late)
        raise BlaseError(f"{names} still running after {wait:g} s (a step finishing its records ignores"
                             " a second signal); `blase runs show` says when it ends.")


@app.command("reindex")
def reindex_command() -> None:
    """Rebuild the index from the run folders (e.g. after copying a run folder in from another project, or when
    runs/blase.db is lost or damaged: it is then built anew and a damaged one kept aside). All or nothing."""
    from blase_tui.store.reindex import collapsed, reindex_project

    project = common.project()
    c = common.console
    report = reindex_project(project.root)
    if report.rebuilt in ("missing", "empty"):
        journal = " and runs/journal.jsonl" if (project.root / "runs" / "journal.jsonl").is_file() else ""
        c.print(f"runs/blase.db was {report.rebuilt}; built a new index from the run folders{journal}.")
    elif report.rebuilt is not None:
        kept = f"kept it as {report.aside.relative_to(project.root)} and " if report.aside else ""
        c.print(f"runs/blase.db was damaged ({report.rebuilt}); {kept}rebuilt the index from the run folders.",
                markup=False)
    c.print(f"{len(report.added)} run(s) added, {report.present} already indexed.")
    for rid in report.added:
        c.print(f"  added {rid}")
    for folder, reason in report.broken:
        c.print(f"  skipped runs/{folder}: {reason}", markup=False)
    if report.journal:
        names = {"labels": "labels, skips and undos", "label_rounds": "label rounds", "label_queue": "queued records",
                 "models": "model versions", "model_aliases": "model aliases", "exclusions": "excluded keys"}
        c.print("  rebuilt from runs/journal.jsonl: " + ", ".join(f"{n} {names[t]}" for t, n in report.journal.items()))
    for line in report.mismatched:
        c.print(f"  left out {line}", markup=False)
    _print_bad_lines(collapsed(report.bad_lines))
    if report.missing_folders:
        c.print(f"  {len(report.missing_folders)} indexed run(s) have no folder under runs/ any more.")


def _print_bad_lines(lines: list[str], per_file: int = 10) -> None:
    """``skipped FILE line N: why``, at most ``per_file`` entries of each file, then how many more."""
    shown: dict[str, int] = {}
    for line in lines:
        name = line.split(" line", 1)[0]
        shown[name] = shown.get(name, 0) + 1
        if shown[name] <= per_file:
            common.console.print(f"  skipped {line}", markup=False)
    for name, count in shown.items():
        if count > per_file:
            common.console.print(f"  skipped {count - per_file} more entries of {name}", markup=False)


@app.command("watch")
def watch_command(
    run: Annotated[str | None, typer.Argument(help="Run to follow (default: the newest running run, else the newest run).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between updates.")] = 0.25,
) -> None:
    """Follow a running step live: progress, memory, CPU, GPU, log lines and metrics."""
    from blase_tui.cli.watch import watch

    store = _store()
    if run is None:
        run_id = store.newest_running_run() or store.resolve_run("latest")
    else:
        run_id = store.resolve_run(run)
    code = watch(store, run_id, interval=interval, live=sys.stdout.isatty())
    raise typer.Exit(code)
