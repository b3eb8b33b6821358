"""Issue 24, item 12: damaged and outsized inputs are named in one sentence, crafted artifact names are refused in
one line, and the exit code is the step's whatever happens around it (a second signal, a reader that went
away)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env, make_project, show_json

STEPS = '''
import atexit
import json
import os
import signal
import sys
import time
from pathlib import Path

from blase_tui import main, step
from blase_tui.errors import BlaseError


@step
def twice(ctx, second: str = "SIGTERM"):
    """Interrupt itself; a second signal comes as the process exits, after the end is recorded."""
    ctx.log_metric("before", 1.0)
    sig = getattr(signal, second)
    atexit.register(lambda: (os.kill(os.getpid(), sig), time.sleep(1)))
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)


@step
def tidy(ctx):
    """Interrupt itself; a second signal comes while its own clean-up runs, which must finish."""
    ctx.log_metric("before", 1.0)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)
        Path("tidied").write_text("yes")


@step
def chatty(ctx):
    """Print on standard output only."""
    for i in range(50):
        print(f"line {i}")
    ctx.log_metric("printed", 50.0)


@step
def logs(ctx):
    """Log lines (echoed on standard error), then print."""
    for i in range(50):
        ctx.log.info("logged %d", i)
    print("printed", file=sys.stderr)


@step
def names(ctx):
    """Try crafted artifact names; the last one is not caught."""
    Path("note.txt").write_text("x")
    said = {}
    crafted = {"newline": "a\\nfake line.txt", "rlo": "report\\u202etxt.exe", "nul": "a\\x00b.txt",
               "long": "x" * 6000 + ".txt"}
    for kind, name in crafted.items():
        try:
            ctx.log_artifact("note.txt", name=name)
        except BlaseError as exc:
            said[kind] = str(exc)
    Path("said.json").write_text(json.dumps(said))
    ctx.log_artifact("note.txt", name=crafted["newline"])


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return make_project(tmp_path / "hard", main_src=STEPS, toml='[project]\nname = "hard"\n')


def blase_step(proj: Path, *args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "blase_tui", "step", *args], cwd=proj, env=_env(),
                            stdin=subprocess.DEVNULL, text=True, **popen)


# ------------------------------------------------------------------------------------------ exit codes
@pytest.mark.parametrize("second", ["SIGTERM", "SIGHUP"])
def test_a_second_signal_as_the_process_exits_keeps_130(proj: Path, blase, second: str) -> None:
    proc = blase_step(proj, "twice", "--set", f"second={second}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"exit {proc.returncode} (death by signal is negative): {err}"
    assert "was interrupted (SIGTERM); marked it interrupted" in err
    run = show_json(blase, proj, "latest")
    assert run["status"] == "interrupted" and run["steps"][0]["metrics"] == {"before": 1.0}


def test_a_second_signal_does_not_cut_the_steps_clean_up_short(proj: Path, blase) -> None:
    proc = blase_step(proj, "tidy", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert (proj / "tidied").read_text() == "yes", "the step's `finally` ran to its end"
    assert show_json(blase, proj, "latest")["steps"][0]["status"] == "interrupted"


def gone(proj: Path, step: str) -> subprocess.Popen:
    """`blase step STEP 2>&1 | head -0`: both streams into a pipe whose reader has already gone."""
    proc = blase_step(proj, step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdout.close()
    proc.wait(timeout=120)
    return proc


def test_a_reader_that_went_away_is_not_the_steps_failure(proj: Path, blase) -> None:
    assert gone(proj, "chatty").returncode == 0
    run = show_json(blase, proj, "latest")
    assert run["status"] == "succeeded" and run["steps"][0]["metrics"] == {"printed": 50.0}
    assert "line 49" in (proj / "runs" / run["id"] / "chatty" / "log.txt").read_text()


def test_log_lines_nobody_reads_are_kept_whole(proj: Path, blase) -> None:
    assert gone(proj, "logs").returncode == 0
    folder = proj / "runs" / show_json(blase, proj, "latest")["id"] / "logs"
    log = (folder / "log.txt").read_text()
    assert "INFO logged 0" in log and "INFO logged 49" in log and "printed" in log
    assert "Logging error" not in log
    logged = [e for e in map(json.loads, (folder / "events.jsonl").read_text().splitlines())
              if e["type"] == "log" and e["message"].startswith("logged")]
    assert len(logged) == 50, "every log line is an event, echoed or not"


def test_crafted_artifact_names_are_one_clear_line(proj: Path) -> None:
    proc = blase_step(proj, "names", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blase: step `names` failed: artifact name ")
    assert "U+000A" in lines[0] and "relative path" in lines[0]
    said = json.loads((proj / "said.json").read_text())
    assert set(said) == {"newline", "rlo", "nul", "long"}
    for kind, message in said.items():
        assert "\n" not in message and "\u202e" not in message and "\x00" not in message, kind
        assert len(message) < 400 and "cannot be used" in message, kind
    assert "U+202E" in said["rlo"] and "U+0000" in said["nul"] and "longer than 255 bytes" in said["long"]


# ------------------------------------------------------------------------------------------ readers
def damaged_parquet(path: Path) -> None:
    """Four row groups of 1,000 rows, snappy-compressed; the data of group 1 overwritten in its middle."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": np.arange(4000, dtype=np.int64)}), path, row_group_size=1000,
                   compression="snappy", use_dictionary=False)
    column = pq.ParquetFile(path).metadata.row_group(1).column(0)
    raw = bytearray(path.read_bytes())
    middle = column.data_page_offset + column.total_compressed_size // 2
    raw[middle:middle + 12] = b"\xff" * 12
    path.write_bytes(bytes(raw))


def test_a_damaged_parquet_row_group_is_named(tmp_path: Path) -> None:
    from blase_tui import Extract
    from blase_tui.modules.extract import DataError

    path = tmp_path / "pool" / "a.parquet"
    path.parent.mkdir()
    damaged_parquet(path)
    extractor = Extract()
    batches = list(extractor.load_parquet(path.parent, batch_size=400))
    rows = [int(k.split(":")[1]) for b in batches for k in b.keys]
    assert rows == [*range(1000), *range(2000, 4000)], "the other row groups are read"
    [bad] = extractor.bad_records
    assert bad.source == str(path) and bad.record == "rows 1000-1999 (row group 1)"
    assert "Corrupt snappy compressed data" in bad.reason
    assert [r for b in batches for r in b.bad_records] == [bad]
    with pytest.raises(DataError) as caught:
        list(Extract(on_error="fail").load_parquet(path.parent))
    assert str(caught.value).startswith(f"{path}: record rows 1000-1999 (row group 1) cannot be read (Corrupt snappy")
    assert "\n" not in str(caught.value)


def test_an_image_larger_than_the_budget_is_refused_from_its_header(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image, ImageFile

    from blase_tui import Extract

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (3000, 3000)).save(folder / "big.png")  # 9 MB of pixels in a file of 9 KB
    Image.new("L", (8, 8), 7).save(folder / "small.png")
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile) -> object:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    extractor = Extract(memory_budget="4MiB")
    batches = list(extractor.load_images(folder))
    assert [k for b in batches for k in b.keys] == ["small.png"]
    [bad] = extractor.bad_records
    assert bad.record == "big.png"
    assert "3000x3000 pixels takes 9 MiB, more than the memory budget of 4 MiB" in bad.reason
    assert "raise memory_budget" in bad.reason
    assert (3000, 3000) not in decoded, "refused from its header, before decoding"
    assert len(list(Extract(memory_budget="64MiB").load_images(folder))) == 2


def test_a_sparse_npy_is_judged_by_its_header(tmp_path: Path) -> None:
    import numpy as np
    from numpy.lib import format as npy_format

    from blase_tui import Extract
    from blase_tui.modules.extract import DataError

    zeros = tmp_path / "zeros.npy"  # `truncate -s 2G`: all zeros, no header at all
    with open(zeros, "wb") as fh:
        fh.truncate(2 << 30)
    with pytest.raises(DataError) as caught:
        list(Extract().load_npy(zeros))
    message = str(caught.value)
    assert "Python objects" not in message and "pickle" not in message
    assert message.startswith(f"{zeros}: not a readable .npy file (it does not begin with the .npy header")

    sparse = tmp_path / "sparse.npy"  # a real header, then 2 GiB of zeros never written
    with open(sparse, "wb") as fh:
        npy_format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (2 << 27,)})
        fh.truncate(fh.tell() + (2 << 30))
    first = next(iter(Extract().load_npy(sparse)))
    assert first["array"].dtype == np.float64 and not first["array"][:1000].any()
    assert first.meta.total_records == 2 << 27

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"it holds Python objects \(dtype=object\)"):
        list(Extract().load_npy(objects))


def test_good_npy_files_read_as_before(tmp_path: Path) -> None:
    import numpy as np

    from blase_tui import Extract

    for i in range(3):
        np.save(tmp_path / f"{i}.npy", np.full((5, 2), i, dtype=np.int32))
    batches = list(Extract().load_npy(tmp_path))
    assert [int(b["array"][0, 0]) for b in batches] == [0, 1, 2]
