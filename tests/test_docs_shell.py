"""The shell blocks of README.md and docs/quickstart.md run as written, in order, in a fresh folder, and print
what the pages show.

Each page is one bash session, like a reader at one terminal: the page's ``sh``/``bash``/``console`` blocks run
top to bottom in a new temporary folder (``cd`` carries over from block to block), with ``blase`` and
``python`` from this environment on PATH and a user registry of its own (``BLASE_HOME``). Every command must
exit 0, unless a ``<!-- docs-test: exit N -->`` comment right before its block says otherwise. A plain
fenced block (no language) after a command block, with only prose between, shows that block's output (in a
``console`` block the lines without ``$`` do): the real output, stdout and stderr as a terminal interleaves
them, must match it line by line once volatile parts are masked (see ``mask``), and a ``...`` line stands for
any number of lines. A fenced block that is neither (a file listing, a transcript) is tagged ``text``.

What does not run, and why:

- a block right after ``<!-- docs-test: not run: REASON -->`` (a crontab line, a script naming someone's
  home, a block that needs files the reader supplies): nothing in it runs, and the output after it is not
  compared;
- setup commands (``SETUP``): this environment already has blase installed; the rest of a ``&&`` chain runs
  (``python3 -m venv .venv && ... && blase demo`` runs ``blase demo``);
- the test suite itself (``python -m pytest``): it is what runs this test; CI runs that command (.ci/run);
- interactive commands (``INTERACTIVE``): full-screen apps that wait for keys;
- servers (``BACKGROUND``): ``blase serve`` is started in the background, the next command waits until it
  answers ``/ping``, and it is stopped when the page ends; the page's port (5000) becomes a free one, so
  parallel runs do not collide.

Nothing on these pages is slow enough to leave out: both pages train the sample's small CNN on CPU a few
times, about 2 minutes in all on 2 cores, with PyTorch on one thread (``session_env`` says why).
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, _env, free_port

pytestmark = pytest.mark.timeout(600)

COMMAND_LANGS = {"sh", "bash", "console"}

SETUP = [  # installing blase: done already in the environment the tests run in
    re.compile(r"python3? -m venv\b"),
    re.compile(r"^(\.|source) \S*\.venv/bin/activate$"),
    re.compile(r"^pip3? install\b"),
    re.compile(r"^cd blase$"),  # into the clone, where the quick start installs from
]
SUITE = re.compile(r"^python3? -m pytest\b")  # the suite this test is part of (.ci/run runs the README's command)
INTERACTIVE = re.compile(r"^blase (tui|label|runs watch)\b")  # full-screen, waits for keys
BACKGROUND = {re.compile(r"^blase serve\b"): "/ping"}  # a server: started in the background, then polled
PAGE_PORT = "5000"

DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
FENCE = re.compile(r"^```\s*([\w-]*)\s*$")


@dataclass
class Command:
    text: str  # as run (setup parts of a chain dropped, the port replaced)
    line: int  # in the page
    exit: int = 0
    background: str | None = None  # the path to poll until the server answers


@dataclass
class Block:
    lang: str
    line: int
    lines: list[str]
    directive: str = ""
    output: Block | None = None
    commands: list[Command] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # commands left out, with the rule that did

    @property
    def not_run(self) -> bool:
        return self.directive.startswith("not run:")


def parse(page: str) -> list[Block]:
    """The fenced blocks of a page, each with the docs-test comment right before it; a plain block after a
    command block (prose between is allowed) becomes that block's ``output``."""
    blocks: list[Block] = []
    directive = ""
    lines = (REPO / page).read_text().splitlines()
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        m = DIRECTIVE.match(text)
        if m:
            directive = m.group(1)
        elif FENCE.match(text):
            lang = FENCE.match(text).group(1)
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            assert end is not None, f"{page}:{i + 1}: a fenced block that is never closed"
            block = Block(lang, i + 1, lines[i + 1:end], directive)
            if lang == "" and blocks and blocks[-1].lang in COMMAND_LANGS and blocks[-1].output is None:
                blocks[-1].output = block
            blocks.append(block)
            directive, i = "", end
        elif text and not text.startswith("<!--"):
            directive = ""  # a comment counts only right before its block
        i += 1
    for b in blocks:
        assert b.directive == "" or b.not_run or re.fullmatch(r"exit \d+", b.directive), \
            f"{page}:{b.line}: unknown docs-test comment {b.directive!r}"
        assert b.lang not in {"shell", "zsh", "shell-session", "sh-session"}, \
            f"{page}:{b.line}: tag shell blocks sh, bash or console, so that they run"
    return blocks


def strip_comment(line: str) -> str:
    """``cmd  # note`` → ``cmd``: a ``#`` after a blank, outside quotes, starts a comment."""
    quote = ""
    for k, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k].rstrip()
    return line.rstrip()


def split_chain(line: str) -> list[str]:
    """``a && b && c`` → its parts (outside quotes)."""
    parts, quote, start = [], "", 0
    k = 0
    while k < len(line):
        ch = line[k]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif line.startswith("&&", k):
            parts.append(line[start:k].strip())
            start = k + 2
            k += 1
        k += 1
    parts.append(line[start:].strip())
    return parts


def commands_of(block: Block, port: int) -> None:
    """Fill in what the block runs, by the rules in the module docstring."""
    if block.lang not in COMMAND_LANGS or block.not_run:
        return
    exit_code = int(block.directive.split()[1]) if block.directive.startswith("exit") else 0
    for offset, raw in enumerate(block.lines, start=block.line + 1):
        line = raw.strip()
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        line = strip_comment(line)
        if not line:
            continue
        assert not line.endswith("\\"), f"line {offset}: continued lines are not supported here"
        kept = []
        for part in split_chain(line):
            if any(rule.search(part) for rule in SETUP):
                block.skipped.append(f"{part}  (setup: blase is installed here already)")
            elif SUITE.search(part):
                block.skipped.append(f"{part}  (the test suite, which runs this test)")
            elif INTERACTIVE.search(part):
                block.skipped.append(f"{part}  (interactive)")
            else:
                kept.append(part)
        if not kept:
            continue
        text = " && ".join(kept)
        if "serve" in text or "localhost:" in text or "127.0.0.1:" in text:
            text = re.sub(rf"\b{PAGE_PORT}\b", str(port), text)
        background = next((path for rule, path in BACKGROUND.items() if rule.search(text)), None)
        assert background is None or len(kept) == 1, f"line {offset}: a server in a chain"
        block.commands.append(Command(text, offset, exit_code, background))


def expected_lines(output: Block, block: Block) -> list[str]:
    if block.lang == "console":  # the lines without a prompt
        return [x for x in block.lines if not x.strip().startswith("$ ")]
    return output.lines


# ---------------------------------------------------------------------------------------- output comparison
MASKS = [  # (pattern, replacement), in this order, on the page's lines and the real ones alike
    (r"\b\d{8}-\d{9}-[0-9a-z]{6}\b", "<run>"),  # run ids
    (r"\b\d{8}-\d{6,9}\b", "<run>"),  # their prefixes
    (r"(?<![\w.~])~?(?:/[\w.@+-]+)+/?", "<path>"),  # absolute paths: the temporary folder
    (r"\b\d{4}-\d\d-\d\d\b", "<date>"),
    (r"\b\d\d:\d\d:\d\d\b", "<time>"),
    (r"\b[0-9a-f]{12}\b", "<hash>"),  # content hashes as blase prints them
    (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,}\b", "<hash>"),
    (r"\b\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB)\b", "<size>"),  # sizes, peak memory
    (r"\b(?:\d+ h )?(?:\d+ min )?\d+(?:\.\d+)? (?:s|min)\b", "<duration>"),
    # decimals: metrics of CPU training differ in their last digits from machine to machine, timings always
    # (not versions such as 0.1.0)
    (r"(?<![\d.])[-+]?\b\d+\.\d+(?:e[-+]?\d+)?\b(?!\.\d)|[-+]?\b\d+e[-+]\d+\b", "<num>"),
    (r"(?<=environment: all )\d+", "<n>"),  # the number of installed packages
]
MASKS_COMPILED = [(re.compile(p), r) for p, r in MASKS]
SECONDS_VERDICT = re.compile(r"[✓✗] (better|worse)")  # which of two runs trained faster is chance


def mask(line: str) -> str:
    for pattern, replacement in MASKS_COMPILED:
        line = pattern.sub(replacement, line)
    if "seconds" in line:
        line = SECONDS_VERDICT.sub("<verdict>", line)
    return " ".join(line.split())


def trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Masked line by line; an expected ``...`` line stands for any number of actual lines."""
    exp, act = [mask(x) for x in trim(expected)], [mask(x) for x in trim(actual)]
    # ok[i][j]: exp[i:] matches act[j:]
    ok = [[False] * (len(act) + 1) for _ in range(len(exp) + 1)]
    ok[len(exp)][len(act)] = True
    for i in range(len(exp) - 1, -1, -1):
        for j in range(len(act), -1, -1):
            if exp[i] == "...":
                ok[i][j] = ok[i + 1][j] or (j < len(act) and ok[i][j + 1])
            else:
                ok[i][j] = j < len(act) and exp[i] == act[j] and ok[i + 1][j + 1]
    return ok[0][0]


def test_mask_and_match() -> None:
    page = ["blase: step `etl` succeeded in 4.5 s (run 20261123-142232996-d790b1, still open)", "...",
            "  folder /tmp/d2/qs2/my_project/runs/20261123-143242924-1kfngn", "(1 min 3 s)",
            "  train/seconds  0.1979  2.123  +1.92 ✗ worse"]
    real = ["blase: step `etl` succeeded in 12.0 s (run 20270101-000000000-zzzzzz, still open)", "a", "b",
            "  folder /home/x/my_project/runs/20270101-000000000-zzzzzz", "(2.5 s)",
            "  train/seconds   0.2  0.1  -0.1 ✓ better"]
    assert matches(page, real)
    assert not matches(page, [*real[:-1], "  train/loss  0.2  0.1  -0.1 ✓ better"])
    assert not matches(["wrote 1797 images"], ["wrote 1796 images"])
    assert not matches(["a", "..."], ["b"])
    assert mask("models/digits_cnn.pt  540.0 KiB  3cdc043dc06a") == "models/digits_cnn.pt <size> <hash>"
    assert mask("blase 0.1.0, loss=0.04313, lr=5e-4") == "blase 0.1.0, loss=<num>, lr=<num>"


# ------------------------------------------------------------------------------------------------ the session
PRELUDE = r"""
exec 9>>"$DOCS_STATUS"
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
__wait_http() {  # URL PID: until the server answers; 1 if it exits first or takes 2 minutes
  "$DOCS_PYTHON" - "$1" "$2" <<'EOF'
import os, sys, time, urllib.request
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        sys.exit(0)
    except Exception:
        try:
            os.kill(int(sys.argv[2]), 0)
        except OSError:
            sys.exit(1)
        time.sleep(0.1)
sys.exit(1)
EOF
}
"""


def session_script(blocks: list[Block], out: Path, port: int) -> str:
    parts = [PRELUDE]
    for n, block in enumerate(blocks):
        if block.lang not in COMMAND_LANGS:
            continue
        parts.append(f"\n# block {n} (line {block.line}){' ' + block.directive if block.not_run else ''}")
        parts += [f"# not run: {s}" for s in block.skipped]
        if block.commands:
            parts.append(f'exec >{shlex.quote(str(out / f"{n}.out"))} 2>&1')
        for k, cmd in enumerate(block.commands):
            if cmd.background:
                log = shlex.quote(str(out / f"{n}.{k}.background.log"))
                url = f"http://127.0.0.1:{port}{cmd.background}"
                parts.append(f"{cmd.text} >{log} 2>&1 &\n__wait_http {shlex.quote(url)} $!")
            else:
                parts.append(cmd.text)
            parts.append(f'__s=$?; echo "$__s" >&9; [ "$__s" = {cmd.exit} ] || exit 90')
    return "\n".join(parts) + "\n"


def session_env(work: Path, status: Path) -> dict[str, str]:
    env = _env()
    bindir = str(Path(sys.executable).parent)
    assert shutil.which("blase", path=bindir), f"no `blase` next to {sys.executable}: install this checkout"
    env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), PYTHONUNBUFFERED="1", NO_COLOR="1",
               DOCS_STATUS=str(status), DOCS_PYTHON=sys.executable, PWD=str(work),
               # one PyTorch thread: beside another busy process (an xdist worker) on 2 cores, its default of a
               # thread per core spins and trains the sample's CNN 4x slower (25 s instead of 7); the outputs
               # compared do not depend on it (metric values are masked)
               OMP_NUM_THREADS="1")
    env.pop("VIRTUAL_ENV_PROMPT", None)
    return env


def test_readme_runs_as_written(tmp_path: Path) -> None:
    check_page("README.md", tmp_path)


def check_page(page: str, tmp_path: Path) -> None:
    """Run ``page``'s shell blocks in one session and compare the outputs it shows (the quick start's test is in
    test_docs_shell_quickstart.py: a file of its own, so the suite's workers run the two pages side by side)."""
    port = free_port()
    blocks = parse(page)
    for b in blocks:
        commands_of(b, port)
    run = [b for b in blocks if b.commands]
    assert run, f"{page}: no shell block to run"
    work, out, status = tmp_path / "work", tmp_path / "out", tmp_path / "status"
    work.mkdir()
    out.mkdir()
    status.write_text("")
    script = tmp_path / "page.sh"
    script.write_text(session_script(blocks, out, port))
    proc = subprocess.Popen(["bash", str(script)], cwd=work, env=session_env(work, status),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        rest, _ = proc.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
    finally:
        try:  # a server the page started and the session did not stop
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def block_output(n: int) -> str:
        path = out / f"{n}.out"
        return path.read_text() if path.exists() else ""

    codes = [int(x) for x in status.read_text().split()]
    commands = [(n, c) for n, b in enumerate(blocks) for c in b.commands]
    for (n, cmd), code in zip(commands, codes, strict=False):
        if code != cmd.exit:
            logs = "".join(p.read_text() for p in sorted(out.glob(f"{n}.*.background.log")))
            pytest.fail(f"{page}:{cmd.line}: `{cmd.text}` exited {code}, the page expects {cmd.exit}; the block's "
                        f"output:\n{block_output(n)}{logs}")
    assert len(codes) == len(commands) and proc.returncode == 0, (
        f"{page}: the session stopped (exit {proc.returncode}) after {len(codes)} of {len(commands)} commands; "
        f"next: {commands[len(codes)][1].text if len(codes) < len(commands) else '-'}\n{rest}"
        + "".join(p.read_text() for p in sorted(out.glob("*.background.log"))))

    compared = 0
    for n, b in enumerate(blocks):
        if not b.commands or (b.output is None and b.lang != "console"):
            continue
        expected = expected_lines(b.output, b)
        actual = block_output(n).splitlines()
        compared += 1
        if not matches(expected, actual):
            diff = "\n".join(difflib.unified_diff([mask(x) for x in trim(expected)],
                                                  [mask(x) for x in trim(actual)], "page", "real", lineterm=""))
            pytest.fail(f"{page}:{b.line}: the output differs from the page's (masked; `...` stands for any "
                        f"lines):\n{diff}\n\nthe real output:\n{block_output(n)}")
    assert compared or page == "README.md", f"{page}: no output compared"
