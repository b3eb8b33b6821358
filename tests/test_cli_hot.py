"""`blase step`, `blase runs find` and `blase --help` start without Typer or rich (cli/hot.py, issue 28): the same
options, output and exit codes as the Typer commands, help kept per terminal and install, and the step's own
start-up pieces (its function's source, its lock, its resources) as before."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import _env, make_project

from blase_tui.cli import hot

PROBE = """
import json, sys
sys.argv = ["blase", *json.loads(sys.argv[1])]
from blase_tui.cli.hot import run
code = 0
try:
    run()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in ("typer", "rich", "click", "psutil", "logging", "pynvml", "filelock") if m in sys.modules)
sys.__stderr__.write("LOADED=" + json.dumps([code, loaded]) + "\\n")
"""


def probe(args: list[str], cwd: Path) -> tuple[int, list[str], subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=120)
    code, loaded = json.loads(proc.stderr.split("LOADED=")[-1])
    return code, loaded, proc


def typer_app(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The same command line through the Typer app, as before cli/hot.py."""
    code = f"import sys; sys.argv = ['blase', *{args!r}]; from blase_tui.cli.app import run; run()"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=120)


def click_params(words: tuple[str, ...]) -> list:
    import typer

    from blase_tui.cli.app import app

    command = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]  # type: ignore[attr-defined]
    return [p for p in command.params if p.name != "help"]


@pytest.mark.parametrize("words", list(hot.COMMANDS))
def test_the_hot_parser_takes_exactly_the_typer_commands_options(words: tuple[str, ...]) -> None:
    """Every option of the Typer command is in cli/hot.py's table, as a flag or a value as Typer has it, repeatable
    where Typer's is, and nothing more: the two cannot drift apart."""
    spec = hot.COMMANDS[words]
    typer_flags, typer_values, typer_multiple, typer_arguments = {}, {}, set(), []
    for param in click_params(words):
        if param.param_type_name == "argument":
            typer_arguments.append(param.name)
            continue
        names = [*param.opts, *param.secondary_opts]
        for name in names:
            (typer_flags if param.is_flag else typer_values)[name] = param.name
        if param.multiple:
            typer_multiple.add(param.name)
    assert spec.flags == typer_flags
    assert spec.values == typer_values
    assert set(spec.multiple) == typer_multiple
    assert list(spec.arguments) == typer_arguments


@pytest.mark.parametrize("argv", [["--help"], ["hello", "--bogus"], ["hello", "--set"], ["hello", "-fq"],
                                  ["hello", "extra"], ["hello", "--workers", "0"], ["hello", "--workers", "x"],
                                  ["hello", "--force=1"]])
def test_what_the_hot_parser_is_not_sure_of_goes_to_typer(argv: list[str]) -> None:
    assert hot.parse(hot.COMMANDS[("step",)], argv) is None


def test_the_hot_parser_reads_what_click_reads() -> None:
    got = hot.parse(hot.COMMANDS[("step",)], ["-s", "a=1", "hello", "--set=b=2", "--start_run", "-q", "--workers", "3",
                                              "--name", "-x-"])
    assert got is not None
    assert (got["name"], got["set_"], got["start_run"], got["quiet"], got["workers"], got["run_name"]) == \
        ("hello", ["a=1", "b=2"], True, True, 3, "-x-")
    assert got["force"] is False and got["executor"] is None
    assert hot.parse(hot.COMMANDS[("step",)], ["--", "--odd-name"])["name"] == "--odd-name"
    found = hot.parse(hot.COMMANDS[("runs", "find")], ["--step", "a", "-p", "n=1", "--param", "lr=0.1", "--latest"])
    assert found is not None and found["param"] == ["n=1", "lr=0.1"] and found["status"] == "succeeded"


def test_step_and_find_run_without_typer_rich_or_psutil_and_answer_as_the_typer_app(project: Path, blase) -> None:
    code, loaded, proc = probe(["step", "b"], project)
    assert code == 0 and loaded == [], (loaded, proc.stderr)
    assert "step `b` succeeded" in proc.stderr
    blase("step", "b", "--force", cwd=project, check=True)
    for args in (["runs", "find", "--step", "b", "--latest"], ["runs", "find", "--step", "b", "--all"],
                 ["runs", "find", "--step", "b"], ["runs", "find", "--step", "c"], ["runs", "find", "--step", "nope"],
                 ["runs", "find", "--step", "b", "--status", "odd"], ["runs", "find"],
                 ["runs", "find", "--step", "b", "--latest", "--json"], ["-C", str(project), "runs", "find", "--step",
                                                                          "b", "--latest", "--path"]):
            code, loaded, proc = probe(args, project)
            old = typer_app(args, project)
            assert (code or 0, proc.stdout) == (old.returncode, old.stdout), args
            assert proc.stderr.split("LOADED=")[0] == old.stderr, args
            if "--json" not in args and ("--latest" in args or "--all" in args or "odd" in args or args == ["runs", "find"]):
                assert "rich" not in loaded and "typer" not in loaded, (args, loaded)
    # several matches: exit 1 and which params tell them apart (the table comes from rich, lazily)
    code, _, proc = probe(["runs", "find", "--step", "b"], project)
    assert code == 1 and "2 runs match" in proc.stderr


def test_a_misspelt_option_is_typers_one_line_usage_error(project: Path) -> None:
    code, loaded, proc = probe(["step", "b", "--forse"], project)
    assert code == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith("blase: No such option: --forse") and "--force" in first
    assert first.endswith("(`blase step --help` lists what it takes).")


def test_help_is_rendered_once_per_terminal_and_install_and_equals_typers(project: Path, tmp_path: Path) -> None:
    home = Path(_env()["BLASE_HOME"])
    code, loaded, first = probe(["--help"], project)
    assert (code or 0) == 0 and "Usage: blase" in first.stdout and "typer" in loaded
    kept = list((home / "cache").glob("help-*.txt"))
    assert len(kept) == 1
    code, loaded, again = probe(["--help"], project)
    assert (code or 0, again.stdout) == (0, first.stdout)
    assert "typer" not in loaded and "rich" not in loaded  # from the cache
    assert again.stdout == typer_app(["--help"], project).stdout
    # called otherwise (its usage line names the program), or at another width: rendered again, kept beside it
    module = subprocess.run([sys.executable, "-m", "blase_tui", "--help"], cwd=project, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert "Usage: python -m blase_tui" in module.stdout
    wide = subprocess.run([sys.executable, "-m", "blase_tui", "--help"], cwd=project,
                          env={**_env(), "COLUMNS": "150"}, capture_output=True, text=True, timeout=120)
    assert max(map(len, wide.stdout.splitlines())) > 100 >= max(map(len, first.stdout.splitlines()))
    assert len(list((home / "cache").glob("help-*.txt"))) == 3
    # a damaged cache file is rendered again, not printed
    kept[0].write_bytes(b"\xff\xfe garbage")
    code, loaded, third = probe(["--help"], project)
    assert (code or 0, third.stdout) == (0, first.stdout) and "typer" in loaded


def test_a_new_plugin_noun_shows_in_help_at_once(project: Path, tmp_path: Path) -> None:
    """Installing a distribution changes its site folder: the kept help is stale and rendered again."""
    site = tmp_path / "site"
    info = site / "blase_greet-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "blase_greet.py").write_text("import typer\napp = typer.Typer()\n@app.command()\ndef hi():\n    print('hi')\n")
    env = {**_env(), "PYTHONPATH": str(site)}
    before = subprocess.run([sys.executable, "-m", "blase_tui", "--help"], cwd=project, env=env, capture_output=True,
                            text=True, timeout=120).stdout
    assert "greet" not in before
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: blase-greet\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[blase.cli]\ngreet = blase_greet:app\n")
    os.utime(site, ns=(os.stat(site).st_mtime_ns + 10**9,) * 2)  # (a coarse clock may not move within a test)
    after = subprocess.run([sys.executable, "-m", "blase_tui", "--help"], cwd=project, env=env, capture_output=True,
                           text=True, timeout=120).stdout
    assert "greet" in after


SOURCES = '''
import functools


def deco(f):
    @functools.wraps(f)
    def inner(*a, **k):
        return f(*a, **k)
    return inner


@deco
@deco
def decorated(ctx, n=1):
    x = (1,
         2)
    return x
    # a comment at the body's depth belongs to the function


def one_liner(ctx): return 1


async def coroutine(ctx):
    return [
        1,
    ]
        # deeper comment, after a blank line

# at the module's depth: not the function's


def outer():
    def nested(ctx):
        """Doc."""
        return "a \\
b"
    return nested


def multiline_signature(
    ctx,
    n: int = 1,
) -> int:
    return n
'''


def test_a_step_functions_source_is_what_inspect_gives(tmp_path: Path) -> None:
    """The code hash of a step reads its source through the syntax tree (tokenize costs ~5 ms of every start):
    byte for byte what inspect.getsource gives, so no step looks changed after the upgrade."""
    from blase_tui.core.signature import function_source

    path = tmp_path / "user_steps.py"
    path.write_text(textwrap.dedent(SOURCES))
    sys.path.insert(0, str(tmp_path))
    try:
        import user_steps  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("user_steps", None)
    for func in (user_steps.decorated, user_steps.one_liner, user_steps.coroutine, user_steps.outer(),
                 user_steps.multiline_signature, user_steps.deco, lambda ctx: 1):
        assert function_source(func) == inspect.getsource(func), func
    assert "belongs to the function" in function_source(user_steps.decorated)
    assert "module's depth" not in function_source(user_steps.coroutine)


def test_the_step_lock_excludes_a_filelock_holder_and_the_reverse(tmp_path: Path) -> None:
    """The step lock is flock on the lock file, as filelock takes it: a copy of an older blase (filelock) and this
    one exclude each other."""
    from filelock import FileLock

    from blase_tui.core.lock import StepLock
    from blase_tui.errors import StepLocked

    other = FileLock(str(tmp_path / "train.lock"), timeout=0)
    with other, pytest.raises(StepLocked, match="step `train` is already running"):
        StepLock(tmp_path, "train").acquire()
    lock = StepLock(tmp_path, "train").acquire()
    try:
        from filelock import Timeout

        with pytest.raises(Timeout):
            FileLock(str(tmp_path / "train.lock"), timeout=0).acquire()
    finally:
        lock.release()
    FileLock(str(tmp_path / "train.lock"), timeout=0).acquire().lock.release()


def test_a_short_step_records_its_peak_memory_and_cpu_without_sampling(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "p", main_src=textwrap.dedent('''
        import time
        from blase_tui import step

        @step
        def quick(ctx):
            ctx.log_metric("x", 1.0)

        @step
        def longer(ctx):
            data = bytearray(64 * 2**20)  # 64 MiB, held while samples are taken
            end = time.time() + 1.5
            while time.time() < end:
                data[0] = 1
                time.sleep(0.02)
    '''))
    for name in ("quick", "longer"):
        blase("step", name, cwd=root, check=True)
    show = json.loads(blase("runs", "show", "latest", "--json", cwd=root, check=True).stdout)
    longer = show["steps"][0]
    assert longer["peak_rss"] > 64 * 2**20 and longer["cpu_seconds"] > 0
    folder = Path(blase("runs", "find", "--step", "longer", "--latest", "--path", cwd=root, check=True).stdout.strip())
    events = [json.loads(line) for line in (folder / longer["folder"] / "events.jsonl").read_text().splitlines()]
    assert sum(e.get("type") == "resources" for e in events) >= 2
    quick = json.loads(blase("runs", "show", blase("runs", "find", "--step", "quick", "--latest", cwd=root,
                                                   check=True).stdout.strip(), "--json", cwd=root,
                             check=True).stdout)["steps"][0]
    assert 5 * 2**20 < quick["peak_rss"] < 64 * 2**20 and quick["cpu_seconds"] > 0


def test_the_help_cache_keeps_only_the_newest_few(project: Path) -> None:
    home = Path(_env()["BLASE_HOME"])
    for width in range(60, 60 + hot.KEEP_HELP + 3):
        subprocess.run([sys.executable, "-m", "blase_tui", "--help"], cwd=project, env={**_env(), "COLUMNS": str(width)},
                       capture_output=True, text=True, timeout=120, check=True)
    assert len(list((home / "cache").glob("help-*.txt"))) == hot.KEEP_HELP
