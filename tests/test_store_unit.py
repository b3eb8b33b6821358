"""Units of the store and config: run ids, prefixes, the content store, sizes, param coercion."""

from __future__ import annotations

from pathlib import Path

import pytest

from blase_tui.core.config import parse_bytes
from blase_tui.core.steps import StepInfo, coerce, resolve_params
from blase_tui.errors import ConfigError
from blase_tui.store.ids import new_run_id
from blase_tui.store.runstore import RunStore


def test_run_ids_sort_by_time_and_differ() -> None:
    ids = [new_run_id(1_800_000_000 + i * 0.001) for i in range(200)]
    assert ids == sorted(ids)
    same_ms = {new_run_id(1_800_000_000.5) for _ in range(500)}
    assert len(same_ms) == 500
    assert new_run_id(1_800_000_000.123).startswith("20270115-080000123-")


def test_store_refuses_duplicate_ids_and_resolves_prefixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path)
    draws = iter(["20260101-000000000-aaaaaa", "20260101-000000000-aaaaaa", "20260101-000000000-bbbbbb"])
    monkeypatch.setattr("blase_tui.store.runstore.new_run_id", lambda _now: next(draws))
    first = store.create_run()
    second = store.create_run()
    assert (first, second) == ("20260101-000000000-aaaaaa", "20260101-000000000-bbbbbb")
    assert store.resolve_run("20260101-000000000-b") == second
    assert store.resolve_run("latest") == second
    with pytest.raises(ConfigError, match="matches several runs"):
        store.resolve_run("20260101")
    with pytest.raises(ConfigError, match="no run matches"):
        store.resolve_run("1999")
    with pytest.raises(ConfigError, match="no run matches"):
        store.resolve_run("2026%")


def test_content_store_keeps_one_copy(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    da, size = store.cas.put_file(a)
    db, _ = store.cas.put_file(b)
    assert da == db and size == 1000
    store.cas.link_into(da, tmp_path / "run" / "one")
    store.cas.link_into(da, tmp_path / "run" / "two")
    assert (tmp_path / "run" / "one").stat().st_ino == store.cas.path_of(da).stat().st_ino
    assert len([p for p in store.cas.objects.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2GiB", 2 * 1024**3), ("512 MB", 512 * 1000**2), (1024, 1024), ("1.5g", 1_500_000_000), ("256MiB", 256 * 2**20)],
)
def test_parse_bytes(value: object, expected: int) -> None:
    assert parse_bytes(value) == expected


@pytest.mark.parametrize("value", ["lots", "-1GB", 0, True, "12 parsecs"])
def test_parse_bytes_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match="must be a size"):
        parse_bytes(value)


def test_param_resolution_order_and_coercion() -> None:
    info = StepInfo(name="t", func=lambda: None, takes_ctx=False, defaults={"epochs": 1, "lr": 0.1, "aug": False,
                                                                             "layers": [1]})
    params = resolve_params(info, {"epochs": 5}, ["lr=0.01", "aug=yes", "layers=[3, 4]"])
    assert params == {"epochs": 5, "lr": 0.01, "aug": True, "layers": [3, 4]}
    assert resolve_params(info, {"epochs": 5}, ["epochs=7"])["epochs"] == 7
    assert coerce("x", "3", None) == 3 and coerce("x", "abc", None) == "abc" and coerce("x", "true", None) is True
    with pytest.raises(ConfigError, match="takes true or false"):
        coerce("aug", "maybe", False)
    with pytest.raises(ConfigError, match="takes a JSON list"):
        coerce("layers", "{}", [1])


def test_metrics_logged_while_the_flusher_runs_are_all_kept_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blase_tui.core import tracker as tracker_mod

    monkeypatch.setattr(tracker_mod, "FLUSH_SECONDS", 0.001)  # flush from both threads as often as possible
    store = RunStore(tmp_path)
    run_id = store.create_run()
    tracker = tracker_mod.RunTracker(store, run_id)
    for i in range(20_000):
        tracker.log_metric("m", i, iteration=i)
    tracker.close()
    rows = store.db.query("SELECT iteration FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,))
    assert [r["iteration"] for r in rows] == list(range(20_000))
    assert store.describe_run(run_id).metrics == {"m": 19_999.0}


def test_a_function_param_reads_as_its_name_and_a_lambda_as_its_text() -> None:
    from blase_tui.modules.recording import _plain

    def keep(batch: object, limit: float) -> bool:
        return True

    limit = 0.26
    assert _plain(lambda b: keep(b, limit)) == "lambda b: keep(b, limit)"
    assert _plain(keep).endswith("<locals>.keep")
    assert _plain([lambda a, *, k=1: (a +
                                      k)]) == ["lambda a, *, k=1: (a + k)"]  # one line, whatever its layout
    assert _plain(eval("lambda q: q")).endswith("<lambda>")  # no source to read: the name, never an error
