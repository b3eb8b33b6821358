"""Remote data (issue 28): `s3://` URLs read through fsspec from a real S3 API server on a loopback port (moto's
server mode), streamed in batches like local files with the same bad-record handling, and recorded by the
objects' ETags so a step that read them is reused until one changes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port, make_project

pytest.importorskip("s3fs", reason="the remote extra (s3fs) is not installed")
pytest.importorskip("moto", reason="moto's S3 server is a test dependency")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    """A moto S3 server on a free loopback port, a bucket, and the environment that points s3fs at it (for
    this process and the `blase` child processes)."""
    import fsspec
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})  # fsspec read the env at import
    import urllib.request

    # moto keeps its buckets in this process across servers: start from none
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)
    fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir("alerts")
    try:
        yield fs
    finally:
        server.stop()


def put_parquet(fs, path: str, first: int, n: int, group: int = 100) -> None:
    rng = np.random.default_rng(first)
    table = pa.table({"candid": np.arange(first, first + n), "mag": rng.normal(19, 1, n)})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=group)
    fs.pipe(path, buf.getvalue())


def test_parquet_and_csv_stream_from_s3_in_batches_with_bad_records(s3, tmp_path: Path) -> None:
    from blase_tui.modules.extract import Extract

    for i in range(3):
        put_parquet(s3, f"alerts/data/part-{i}.parquet", i * 1000, 350)
    batches = list(Extract(batch_size=64).load_parquet("s3://alerts/data/"))
    assert sum(len(b) for b in batches) == 1050 and len(batches) > 10  # streamed, not read whole
    keys = [k for b in batches for k in b.keys]
    assert keys[0] == "part-0.parquet:0" and keys[-1] == "part-2.parquet:349"
    filtered = list(Extract().load_parquet("s3://alerts/data/part-1.parquet", filters=[("candid", ">=", 1300)]))
    assert sum(len(b) for b in filtered) == 50

    s3.pipe("alerts/table.csv", b"id,x\n1,2.5\n2,oops,extra\n3,4.0\n")
    extract = Extract()
    rows = list(extract.load_csv("s3://alerts/table.csv", key_column="id"))
    assert [k for b in rows for k in b.keys] == ["1", "3"]
    assert len(extract.bad_records) == 1 and extract.bad_records[0].source == "s3://alerts/table.csv"
    lines = b"".join(json.dumps({"id": i, "v": i * 2}).encode() + b"\n" for i in range(5)) + b"{broken\n"
    s3.pipe("alerts/events.jsonl", lines)
    extract = Extract()
    assert sum(len(b) for b in extract.load("s3://alerts/events.jsonl")) == 5 and len(extract.bad_records) == 1


STEP = '''
from blase_tui import Extract, step


@step
def count(ctx):
    total = sum(len(b) for b in Extract().load_parquet("s3://alerts/data/"))
    ctx.log_metric("rows", total)
    with open("count.txt", "w") as fh:
        fh.write(str(total))
    ctx.log_dataset("count.txt", role="output")
'''


def test_a_step_that_read_s3_is_reused_until_an_object_changes(s3, tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "proj", main_src=STEP)
    for i in range(2):
        put_parquet(s3, f"alerts/data/part-{i}.parquet", i * 1000, 200)
    first = blase("step", "count", cwd=root)
    assert first.returncode == 0, first.stderr
    shown = json.loads(blase("runs", "show", "latest", "--json", cwd=root, check=True).stdout)
    inputs = [d for d in shown["steps"][0]["datasets"] if d["role"] == "input"]
    assert [d["path"] for d in inputs] == ["s3://alerts/data"] and inputs[0]["hash"].startswith("remote:")
    assert shown["steps"][0]["metrics"]["rows"] == 400
    again = blase("step", "count", cwd=root)
    assert again.returncode == 0 and "is up to date: nothing ran" in again.stderr, again.stderr
    put_parquet(s3, "alerts/data/part-1.parquet", 5000, 250)  # a new version of one object: a new ETag
    status = json.loads(blase("status", "--json", cwd=root, check=True).stdout)["steps"][0]
    assert status["reasons"] == ["its input s3://alerts/data changed"], status
    third = blase("step", "count", cwd=root)
    assert third.returncode == 0 and "up to date" not in third.stderr
    assert json.loads(blase("runs", "show", "latest", "--json", cwd=root, check=True).stdout
                      )["steps"][0]["metrics"]["rows"] == 450


def test_a_url_whose_package_is_missing_or_that_is_empty_is_one_line(s3, tmp_path: Path, blase) -> None:
    from blase_tui.errors import BlaseError
    from blase_tui.modules.extract import Extract

    root = make_project(tmp_path / "proj", main_src=STEP.replace("s3://alerts/data/", "s3://alerts/nothing/"))
    proc = blase("step", "count", cwd=root)
    assert proc.returncode == 1 and "s3://alerts/nothing does not exist; check the URL" in proc.stderr, proc.stderr
    import importlib.util

    if importlib.util.find_spec("gcsfs") is None:
        with pytest.raises(BlaseError, match=r"reading gs:// needs gcsfs: pip install 'blase-tui\[remote\]'"):
            list(Extract().load_parquet("gs://bucket/data/"))


def test_a_bucket_without_credentials_is_one_line(tmp_path: Path, blase, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere (a new laptop): one line naming the URL and what to set, exit 2, no traceback."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "FSSPEC_S3_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    proc = blase("inspect", "s3://no-such-bucket-for-blase/a.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == ("blase: s3://no-such-bucket-for-blase/a.csv: cannot reach it (NoCredentialsError:"
                                   " Unable to locate credentials); set credentials (AWS_PROFILE, or"
                                   " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")
