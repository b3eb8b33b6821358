"""The commands started most often — `blase step NAME` (cron, `blase run`'s children, scripts), `blase runs find`
(scripts: ``RUN=$(blase runs find ...)``) and `blase --help` — run without importing Typer or rich, which cost
more than the whole of a small step (issue 28: at most 4x a bare ``python script.py``, 5x for ``--help``).

- ``blase step`` and ``blase runs find`` are parsed here by the table :data:`COMMANDS`, which a test keeps equal
  to the Typer commands' options (tests/test_cli_hot.py). A command line this parser is not sure of — ``--help``,
  an unknown or misspelt option, a missing value, combined short flags — goes to the Typer app unchanged, which
  then answers it (its usage errors included). The bodies below are the commands' only implementation: the
  Typer commands in cli/step.py and cli/runs.py call them.
- ``blase --help`` is rendered by Typer the first time and kept in blase's home folder (``cache/``), keyed by
  everything its text depends on: blase's version and CLI files, the installed distributions (the mtimes of
  ``sys.path``'s folders, where a plugin's entry points appear), the terminal's size and whether it is one, and
  the environment variables rich and Typer read. Any change renders it again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, BlaseError, ConfigError


@dataclass(frozen=True)
class Command:
    """The options of one command as its Typer twin declares them: ``flags`` take no value, ``values`` one
    (``multiple``: repeatable, a list), ``ints`` are whole numbers of at least 1."""

    arguments: tuple[str, ...] = ()
    flags: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    multiple: frozenset[str] = frozenset()
    ints: frozenset[str] = frozenset()
    defaults: dict[str, Any] = field(default_factory=dict)


COMMANDS: dict[tuple[str, ...], Command] = {
    ("step",): Command(
        arguments=("name",),
        flags={"--start-run": "start_run", "--start_run": "start_run", "--end-run": "end_run", "--end_run": "end_run",
               "--force": "force", "-f": "force", "--resume": "resume", "--resume-any": "resume_any",
               "--quiet": "quiet", "-q": "quiet"},
        values={"--set": "set_", "-s": "set_", "--name": "run_name", "--executor": "executor", "--workers": "workers"},
        multiple=frozenset({"set_"}),
        ints=frozenset({"workers"}),
        defaults={"name": ""},
    ),
    ("runs", "find"): Command(
        flags={"--latest": "latest", "--all": "all_", "--path": "path", "--json": "json_",
               "--reproductions": "reproductions"},
        values={"--step": "step", "--param": "param", "-p": "param", "--tag": "tag", "-t": "tag", "--name": "name",
                "--where": "where", "-w": "where", "--status": "status"},
        multiple=frozenset({"param", "tag", "where"}),
        defaults={"status": "succeeded"},
    ),
}


def parse(command: Command, argv: list[str]) -> dict[str, Any] | None:
    """``argv`` (the words after the command's name) as the command's keyword arguments, or None when this
    parser is not sure of it (the Typer app then answers)."""
    out: dict[str, Any] = {dest: False for dest in command.flags.values()}
    out.update({dest: [] if dest in command.multiple else None for dest in command.values.values()})
    out.update(command.defaults)
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        option, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option in command.flags and not eq:
            out[command.flags[option]] = True
            continue
        dest = command.values.get(option)
        if dest is None:
            return None  # --help, a misspelling, -fq, -sKEY=V: Typer's to answer
        if eq:
            value = inline
        elif i < len(argv):
            value, i = argv[i], i + 1
        else:
            return None  # a missing value: Typer's usage error
        if dest in command.ints:
            if not value.isdigit() or int(value) < 1:
                return None
            out[dest] = int(value)
        elif dest in command.multiple:
            out[dest].append(value)
        else:
            out[dest] = value
    if len(positional) > len(command.arguments):
        return None
    out.update(zip(command.arguments, positional, strict=False))
    return out


def project_first(argv: list[str]) -> list[str]:
    """``-C``/``--project`` where the user put it, after the command too (``blase runs list -C ~/digits``), moved
    before the command, where the option is defined (Typer refused it there as an unknown option)."""
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in ("-C", "--project") and i + 1 < len(argv):
            moved += [arg, argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--project="):
            moved.append(arg)
        else:
            rest.append(arg)
        i += 1
    return moved + rest


def line(text: str) -> None:
    """One line to stderr, as every blase error and notice is written."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


@contextmanager
def one_line_errors() -> Iterator[None]:
    """What no command handles itself ends as one line and the documented exit code, never a traceback."""
    try:
        yield
    except BlaseError as exc:
        line(f"blase: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except (BrokenPipeError, ConnectionResetError):
        sys.exit(0)
    except SystemExit:
        raise
    except OSError as exc:
        line(f"blase: {exc}")
        sys.exit(EXIT_USAGE if isinstance(exc, FileNotFoundError | PermissionError) else 1)


# ------------------------------------------------------------------------------------------ the commands
def step(project: Path | str | None, name: str = "", start_run: bool = False, end_run: bool = False,
         set_: list[str] | None = None, force: bool = False, run_name: str | None = None, resume: bool = False,
         resume_any: bool = False, executor: str | None = None, workers: int | None = None,
         quiet: bool = False) -> int:
    """`blase step NAME`: run one step of the project, tracked; its exit code."""
    from blase_tui.cli.common import open_project
    from blase_tui.core.engine import StepRequest, run_step
    from blase_tui.core.execution import say

    outcome = run_step(
        open_project(project),
        StepRequest(step=name, start_run=start_run, end_run=end_run, overrides=list(set_ or []), force=force,
                    run_name=run_name, resume=resume, resume_any=resume_any, quiet=quiet, executor=executor,
                    workers=workers),
    )
    if outcome.exit_code != 0 or not quiet or not outcome.ran:  # "up to date" is never silent, even in cron
        say(sys.stderr, f"blase: {outcome.message}")  # a reader that went away is not the step's failure
    return outcome.exit_code


STATUSES = ("running", "succeeded", "failed", "interrupted")


def check_status(status: str | None, allow_any: bool = False) -> str | None:
    """A ``--status`` value, checked (``any``, where allowed: None)."""
    if status is None or (allow_any and status == "any"):
        return None
    if status not in STATUSES:
        extra = ", any" if allow_any else ""
        raise ConfigError(f"--status {status}: use one of {', '.join(STATUSES)}{extra}.")
    return status


def find(project: Path | str | None, step: str | None = None, param: list[str] | None = None,
         tag: list[str] | None = None, name: str | None = None, where: list[str] | None = None, latest: bool = False,
         all_: bool = False, path: bool = False, json_: bool = False, status: str = "succeeded",
         reproductions: bool = False) -> int:
    """`blase runs find`: print the one matching run's id (or folder); its exit code."""
    from blase_tui.cli import common
    from blase_tui.store.query import differing_params, find_runs, parse_where

    if step is None and name is None:
        raise ConfigError("give --step STEP or --name NAME (or both), e.g. `blase runs find --step train --latest`.")
    store = common.open_project(project).store
    store.recover_dead()
    params = common.parse_pairs(param, "--param")
    tags = common.parse_pairs(tag, "--tag")
    conditions = [parse_where(w) for w in where or []]
    wanted = check_status(status, allow_any=True)
    limit = 1 if latest else None if (all_ or json_) else 50
    matches = find_runs(store, step=step, params=params, tags=tags, status=wanted, limit=limit, name=name,
                        where=conditions, check=True, reproductions=reproductions)
    if json_:  # the JSON is printed whatever matched; the exit code is the one the text form would end with
        from blase_tui import runs as runs_api

        common.print_json([runs_api.Run(store, rid, step).as_dict() for rid in matches])
    if not matches:
        what = " and ".join(filter(None, [
            f"step `{step}`" + (f" ({status})" if wanted else "") if step else "",
            f"name {name}" if name else "",
            ", ".join(f"{k}={v}" for k, v in params.items()), ", ".join(f"tag {k}={v}" for k, v in tags.items()),
            ", ".join(where or []),
        ]))
        hint = f"`blase runs list --step {step}` shows its runs" if step else "`blase runs list` shows the runs"
        line(f"blase: no run matches {what}; {hint}.")
        return EXIT_FAILED
    if all_ and not json_:
        sys.stdout.write("".join(f"{store.run_dir(rid) if path else rid}\n" for rid in matches))
        return 0
    if len(matches) > 1 and not all_:
        differ, per_run = differing_params(store, matches[:50], step)
        if differ:
            reason = f"they differ in {', '.join(differ)}"
        else:
            reason = "their params are the same (they differ only in when they ran)"
        line(f"blase: {len(matches)}{'+' if len(matches) == limit else ''} runs match; {reason}. Add --param"
             " KEY=VALUE to pick one, --latest for the newest, or --all for every one.")
        if not json_:  # the JSON on stdout holds every match's params
            table = common.table("RUN", *differ, wrap=tuple(differ))
            for rid in matches[:20]:
                table.add_row(rid, *[common.fmt_value(per_run[rid].get(k)) for k in differ])
            common.err_console.print(table)
        return EXIT_FAILED
    if not json_:
        sys.stdout.write(f"{store.run_dir(matches[0]) if path else matches[0]}\n")
    return 0


BODIES: dict[tuple[str, ...], Callable[..., int]] = {("step",): step, ("runs", "find"): find}


# ------------------------------------------------------------------------------------------ top-level help
_HELP_ENV = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
             "TERMINAL_WIDTH", "_TYPER_FORCE_DISABLE_TERMINAL", "JUPYTER_COLUMNS", "JUPYTER_LINES")


def help_key() -> str:
    """Everything the text of ``blase --help`` depends on, as one string."""
    from blase_tui import __version__

    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # `python -m blase_tui`: its usage line
    parts = [__version__, sys.executable, repr(sys.argv[:1]), getattr(main_spec, "name", ""), repr(sys.stdout.isatty())]
    for fd in (0, 1, 2):
        try:
            parts.append(repr(tuple(os.get_terminal_size(fd))))
        except (OSError, ValueError):
            parts.append("-")
    parts += [f"{k}={os.environ.get(k, '')}" for k in _HELP_ENV]
    cli = os.path.dirname(os.path.abspath(__file__))
    folders = [cli, *(p for p in sys.path if p)]
    for folder in folders:
        try:
            parts.append(f"{folder}:{os.stat(folder).st_mtime_ns}")
        except OSError:
            continue
    with os.scandir(cli) as entries:
        parts += sorted(f"{e.name}:{e.stat().st_mtime_ns}" for e in entries if e.name.endswith(".py"))
    return "\n".join(parts)


KEEP_HELP = 8  # rendered helps kept (terminal sizes, programs, installs)


def _help_file(key: str) -> Path:
    import zlib

    from blase_tui.core.registry import home

    return home() / "cache" / f"help-{zlib.crc32(key.encode()):08x}.txt"


class _Tee:
    """sys.stdout as rich sees it (a terminal, its size), keeping a copy of what is written."""

    def __init__(self, real: Any) -> None:
        self.real, self.copy = real, []  # type: ignore[var-annotated]

    def write(self, text: str) -> int:
        written = int(self.real.write(text))  # first: click probes with b"", expecting the real stream's TypeError
        self.copy.append(text)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def cached_help() -> bool:
    """Print ``blase --help`` from the cache; False when it is not there (or not for this terminal)."""
    key = help_key()
    try:
        kept_key, _, text = _help_file(key).read_text(encoding="utf-8").partition("\n\x00\n")
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if kept_key != key:
        return False
    sys.stdout.write(text)
    sys.stdout.flush()
    return True


def render_help(full: Callable[[], None]) -> None:
    """Run the Typer app's ``--help`` (``full``) and keep what it printed for :func:`cached_help`."""
    key = help_key()
    tee = _Tee(sys.stdout)
    sys.stdout = tee  # type: ignore[assignment]
    try:
        full()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    finally:
        sys.stdout = tee.real
    try:
        target = _help_file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(key + "\n\x00\n" + "".join(tee.copy), encoding="utf-8")
        os.replace(tmp, target)
        kept = sorted(target.parent.glob("help-*.txt"), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[:-KEEP_HELP]:  # other terminals and installs: the newest few stay
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a home folder that cannot be written: help is only slower


# ------------------------------------------------------------------------------------------ entry point
def run() -> None:
    """The ``blase`` console script: the commands above here, everything else through the Typer app."""
    from blase_tui.core import script_step

    script_step.disable()  # `blase` itself is never a project script's step (core/script_step.py)
    argv = project_first(sys.argv[1:])
    project: str | None = os.environ.get("BLASE_PROJECT") or None
    words = argv
    while words and (words[0] in ("-C", "--project") and len(words) > 1 or words[0].startswith("--project=")):
        project = words[1] if words[0] in ("-C", "--project") else words[0].partition("=")[2]
        words = words[2:] if words[0] in ("-C", "--project") else words[1:]
    if words in (["--help"], ["-h"]):
        if not cached_help():
            render_help(_typer_app)
        return
    for names, command in COMMANDS.items():
        if tuple(words[:len(names)]) == names:
            kwargs = parse(command, words[len(names):])
            if kwargs is not None:
                with one_line_errors():
                    code = BODIES[names](project, **kwargs)
                sys.exit(code)
    _typer_app()


def _typer_app() -> None:
    from blase_tui.cli.app import run as typer_run  # Typer, and the rich it brings, only here

    typer_run()
