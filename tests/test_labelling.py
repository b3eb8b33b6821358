"""Active-learning labelling: config checks, strategies, the streaming queue, the label store, the session, the
plain CLI (with SIGKILL mid-round), round 2 scored by round 1's model, the v3 -> v4 store upgrade, the docs."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, _env, make_project

from blase_tui.core.project import Project
from blase_tui.errors import BlaseError, ConfigError
from blase_tui.labelling.config import parse
from blase_tui.labelling.queue import build_queue
from blase_tui.labelling.session import LabellingSession
from blase_tui.labelling.strategies import k_center, rank
from blase_tui.store import labels as label_store

TOML = '''
[project]
name = "al"
memory_budget = "256MiB"

[labelling]
pool = "data/pool"
key = "candid"
secondary = "objectId"
fields = ["objectId", "magpsf", "drb"]
image = "stamp"
series = {x = "mjd", y = ["mag"]}
features = ["magpsf", "drb", "sgscore"]
url = "https://fink-portal.org/{objectId}"
n = 10

[labelling.keys]
r = "real"
b = "bogus"
v = "varstar"
n = "unsure"

[labelling.targets]
real = 1
bogus = 0
varstar = 0
'''

MAIN = '''
from sklearn.ensemble import HistGradientBoostingClassifier

from blase_tui import Load, Train, main, step
from blase_tui.labelling import record_training_ids, training_set


@step
def train(ctx, max_iter: int = 30):
    """Retrain on every label so far."""
    data = training_set(ctx.project)
    Load().save_to_filesystem(data.batch(), "data/al/train")
    trainer = Train(seed=42)
    trainer.set_model(HistGradientBoostingClassifier(max_iter=max_iter, min_samples_leaf=2), framework="sklearn")
    trainer.train(epochs=1, data_dir="data/al")
    trainer.save_model("models/vra.pkl", name="vra")
    record_training_ids(ctx, data.keys, data.rounds)


if __name__ == "__main__":
    main()
'''


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buf, format="PNG")
    return buf.getvalue()


def write_pool(root: Path, n: int = 60, files: int = 2, row_group: int = 13, seed: int = 0) -> dict[str, bool]:
    """Alert-like Parquet files; returns key -> truth (real when magpsf + drb is high)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder = root / "data" / "pool"
    folder.mkdir(parents=True, exist_ok=True)
    stamp, truth, per = _png(), {}, n // files
    for f in range(files):
        candid = np.arange(f * per, (f + 1) * per, dtype=np.int64) + 10_000
        mag, drb = rng.normal(19, 1, per), rng.random(per)
        table = pa.table({
            "candid": candid, "objectId": [f"ZTF{c}" for c in candid], "magpsf": mag, "drb": drb,
            "sgscore": rng.random(per), "stamp": [stamp] * per,
            "mjd": [list(np.arange(4.0) + i) for i in range(per)], "mag": [list(rng.normal(19, 1, 4)) for _ in range(per)],
        })
        pq.write_table(table, folder / f"2025010{f}_alerts.parquet", row_group_size=row_group)
        truth.update({str(c): bool(m - 19 + 2 * d > 1) for c, m, d in zip(candid, mag, drb, strict=True)})
    return truth


@pytest.fixture
def al(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "al", MAIN, TOML)
    write_pool(root)
    return root


def _label_run(session: LabellingSession, script: list[str]) -> tuple[dict[str, str], int]:
    """Play keys on a session the way a person would; returns the labels expected to be current and how many
    keys it took."""
    done: list[tuple[str, str | None]] = []  # (key, label or None for a skip), as the round undoes them
    used = 0
    for used, key in enumerate(script, start=1):  # noqa: B007 - the count is returned
        if session.done:
            used -= 1
            break
        record = session.current()
        assert record is not None
        if key == "u":
            undone = session.undo()
            assert undone is not None and undone.key == done[-1][0]
            done.pop()
        elif key == "s":
            session.skip()
            done.append((record.key, None))
        else:
            saved = session.label(key)
            assert saved.key == record.key and saved.label == session.keys[key]
            done.append((record.key, saved.label))
    return {k: lab for k, lab in done if lab is not None}, used


SCRIPT = ["r", "b", "u", "r", "s", "n", "v", "r", "u", "u", "b", "r", "r", "b", "r", "u", "b", "r", "b", "r", "r", "b"]


# ----------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, "has no [labelling] table"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "colour": 1}, "unknown key `colour`"),
        ({"key": "candid", "keys": {"r": "real"}}, "needs exactly one of `pool`"),
        ({"pool": "p", "keys": {"r": "real"}}, "needs `key`"),
        ({"pool": "p", "key": "candid"}, "needs a [labelling.keys] table"),
        ({"pool": "p", "key": "candid", "keys": {"s": "real"}}, "`s` is reserved for skip; give 'real' another key"),
        ({"pool": "p", "key": "candid", "keys": {"q": "real"}}, "`q` is reserved for save and quit"),
        ({"pool": "p", "key": "candid", "keys": {"rr": "real"}}, "`rr` is not one character"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "targets": {"bogus": 0}}, "no key gives the label 'bogus'"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "strategy": "smart"}, "`strategy` must be one of"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "n": 0}, "`n` must be a whole number of at least 1"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "features": 3}, "`features` must be"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "reader": "x"}, "`reader` must be \"module:function\""),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "series": {"x": "mjd"}}, "`series` must be"),
        ({"pool": "p", "key": "candid", "keys": {"r": "real"}, "url": "https://x/{id!r}"}, "plain {field} names"),
    ],
)
def test_bad_labelling_config_is_one_sentence(tmp_path: Path, raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(raw, tmp_path)
    message = str(err.value)
    assert expected in message and "\n" not in message and message.endswith(".")


def test_config_defaults_and_class_names(tmp_path: Path) -> None:
    cfg = parse({"pool": "p", "key": "candid", "keys": {"r": "real", "b": "bogus", "v": "varstar", "n": "unsure"},
                 "targets": {"real": 1, "bogus": 0, "varstar": 0}}, tmp_path)
    assert cfg.strategy == "least_confidence" and cfg.n == 10 and cfg.train_step == "train"
    assert cfg.target_of("unsure") is None and cfg.class_names([0, 1]) == ["bogus/varstar", "real"]
    assert parse({"pool": "p", "key": "k", "keys": {"r": "real"}}, tmp_path).targets == {"real": "real"}


def test_cli_errors_exit_2(al: Path, blase) -> None:
    proc = blase("label", "queue", "--strategy", "smart", cwd=al)
    assert proc.returncode == 2 and "--strategy smart: use one of" in proc.stderr and "Traceback" not in proc.stderr
    toml = (al / "blase.toml").read_text().replace('r = "real"', 'u = "real"')
    (al / "blase.toml").write_text(toml)
    proc = blase("label", "--plain", cwd=al)
    assert proc.returncode == 2 and "`u` is reserved for undo" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    screen = blase("label", cwd=al, timeout=30)  # checked before the screen opens
    assert screen.returncode == 2 and "`u` is reserved for undo" in screen.stderr
    assert not (al / "runs" / "blase.db").exists() or not label_store.rounds(Project.at(al).store)


# ------------------------------------------------------------------------------------------- strategies
P3 = np.array([[0.50, 0.49, 0.01],   # least sure of the top class: no; margin: smallest gap
               [0.40, 0.30, 0.30],
               [0.35, 0.33, 0.32],   # flattest: least confidence and entropy pick it first
               [0.98, 0.01, 0.01]])


def test_each_strategy_orders_known_probabilities() -> None:
    assert rank("least_confidence", proba=P3).tolist() == [2, 1, 0, 3]
    assert rank("margin", proba=P3).tolist() == [0, 2, 1, 3]
    assert rank("entropy", proba=P3).tolist() == [2, 1, 0, 3]
    assert rank("ordered", proba=P3).tolist() == [0, 1, 2, 3]
    draws = np.random.default_rng(7).random(4)
    assert rank("random", proba=P3, seed=7).tolist() == np.argsort(-draws, kind="stable").tolist()
    assert rank("random", proba=P3, seed=7).tolist() == rank("random", proba=P3, seed=7).tolist()
    binary = np.array([[0.9, 0.1], [0.52, 0.48], [0.7, 0.3]])
    assert rank("margin", proba=binary).tolist() == [1, 2, 0]
    assert rank("least_confidence", proba=binary, n=2).tolist() == [1, 2]


def test_diversity_spreads_over_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    features = np.vstack([c + rng.normal(0, 0.1, (5, 2)) for c in centres])
    proba = np.column_stack([np.linspace(0.6, 0.99, 15), 1 - np.linspace(0.6, 0.99, 15)])
    order = rank("diversity", proba=proba, features=features, n=3)
    assert order[0] == 0  # the most uncertain record first
    assert sorted(i // 5 for i in order) == [0, 1, 2]  # then one from each of the other clusters
    picks, dists = k_center(features, 3)
    assert np.isinf(dists[0]) and dists[1] >= dists[2] > 1


SCORER = '''
import numpy as np

def load(path):
    def predict(x):
        p = 1 / (1 + np.exp(-(x[:, 0] - 19 + 2 * x[:, 1] - 1)))
        return np.column_stack([1 - p, p])
    return predict
'''


def _fake_model(root: Path) -> None:
    from blase_tui.store import models

    store = Project.at(root).store
    card = store.cas.put_bytes(json.dumps({"framework": "sklearn", "classes": [0, 1]}).encode())
    models.register(store, "fake", run_id=None, step_run_id=None, framework="sklearn",
                    file_hash=store.cas.put_bytes(b"weights"), card_hash=card, file_name="fake.pkl", metrics={})


@pytest.mark.parametrize("strategy", ["least_confidence", "margin", "entropy", "random", "diversity", "ordered"])
def test_streaming_queue_matches_the_in_memory_order(al: Path, strategy: str) -> None:
    """Batches of 7 records across two files and uneven row groups give the order `rank` gives on the whole
    pool, minus labelled keys."""
    import pyarrow.dataset as ds

    (al / "scorer.py").write_text(SCORER)
    (al / "blase.toml").write_text(TOML.replace('n = 10\n', 'n = 10\nbatch = 7\nmodel = "fake"\nscorer = "scorer:load"\n'
                                                'candidates = 15\nseed = 3\n'))
    _fake_model(al)
    project = Project.at(al)
    table = ds.dataset(al / "data" / "pool", format="parquet").to_table()
    keys = [str(k) for k in table.column("candid").to_pylist()]
    labelled = set(keys[5:9])
    for k in labelled:
        label_store.add_label(project.store, k, "real", 1)
    keep = np.array([k not in labelled for k in keys])
    x = np.column_stack([table.column(c).to_numpy() for c in ("magpsf", "drb", "sgscore")]).astype(np.float32)
    namespace: dict = {}
    exec(SCORER, namespace)
    proba = namespace["load"](None)(x)
    # random draws one number per pool record in pool order, labelled or not; the others see only the rest
    if strategy == "random":
        draws = np.random.default_rng(3).random(len(keys))
        expected = [keys[i] for i in np.lexsort((np.arange(len(keys)), -draws)) if keep[i]][:8]
    else:
        kept = np.flatnonzero(keep)
        order = rank(strategy, proba=proba[kept], features=x[kept], n=8, seed=3, candidates=15)
        expected = [keys[kept[i]] for i in order]
    queue = build_queue(project, strategy=strategy, n=8)
    assert [item.key for item in queue.items] == expected
    assert queue.scanned == len(keys) and queue.excluded == len(labelled)
    assert all(item.key not in labelled for item in queue.items)
    if strategy not in ("random", "ordered"):
        assert queue.model is not None and queue.model.ref == "fake:1"
        assert set(queue.items[0].proba) == {"bogus/varstar", "real"} and "p(" in queue.items[0].why


# ---------------------------------------------------------------------------------------- session/store
def test_ten_record_round_with_undo_and_skip(al: Path) -> None:
    with LabellingSession(al, n=10, labeller="ada") as session:
        assert session.round.number == 1 and session.round.strategy == "random" and session.round.model is None
        first = session.current()
        assert first is not None and first.image is not None and first.image.startswith(b"\x89PNG")
        assert first.url == f"https://fink-portal.org/{first.secondary}" and first.fields["objectId"] == first.secondary
        assert list(first.series) == ["mjd", "mag"] and len(first.series["mjd"]) == 4
        expected, used = _label_run(session, SCRIPT)
        assert session.done and session.progress() == (10, 10)
    store = Project.at(al).store
    current = {lab.key: lab.label for lab in label_store.current_labels(store)}
    assert current == expected and len(current) == 11  # 10 with a target and one "unsure"
    assert all(lab.round == 1 and lab.labeller == "ada" and lab.strategy == "random"
               for lab in label_store.current_labels(store))
    rows = store.db.query("SELECT action, COUNT(*) AS n FROM labels GROUP BY action")
    counts = {r["action"]: r["n"] for r in rows}
    assert counts["undo"] == SCRIPT[:used].count("u") == 4 and counts["skip"] == 1
    pairs = store.db.query("SELECT COUNT(*) AS n FROM labels a JOIN labels u ON a.superseded_by = u.id"
                           " WHERE u.action = 'undo' AND u.supersedes = a.id")
    assert pairs[0]["n"] == counts["undo"]  # every undo supersedes exactly the row it took back
    assert label_store.get_round(store, 1).status == "done"
    out = io.StringIO()
    assert label_store.export_csv(store, out, key_name="candid", secondary_name="objectId") == 11
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(exported[0]) == ["candid", "objectId", "label", "timestamp"]
    assert {r["candid"]: r["label"] for r in exported} == expected
    assert all(r["objectId"] == f"ZTF{r['candid']}" and re.match(r"\d{4}-\d\d-\d\dT", r["timestamp"]) for r in exported)
    stats = label_store.stats(store)
    assert stats["total"] == 11 and stats["labellers"] == {"ada": 11} and stats["rounds"][0]["done"] == 10


def test_unfinished_round_resumes_with_the_same_records(al: Path, blase) -> None:
    with LabellingSession(al, strategy="ordered", n=4) as session:
        order = [r.key for r in session._rows]
        session.label("r")
        session.skip()
        shown = session.current().key
    with pytest.raises(ConfigError, match="label round 1 is unfinished"):
        LabellingSession(al, strategy="margin")
    with LabellingSession(al, n=4) as again:
        assert again.resumed and [r.key for r in again._rows] == order
        assert again.current().key == shown == order[2] and again.progress() == (1, 4)
    assert "ended round 1 with 1/4 labels" in blase("label", "end-round", cwd=al, check=True).stdout
    with LabellingSession(al, strategy="ordered", n=4) as third:
        assert not third.resumed and third.round.number == 2
        assert order[0] not in [r.key for r in third._rows] and order[1] in [r.key for r in third._rows]


def test_a_first_round_asked_for_margin_resumes_as_the_random_round_it_became(al: Path) -> None:
    with LabellingSession(al, strategy="margin", n=3) as first:
        assert first.round.strategy == "random" and "no trained model yet" in first.round.note
        first.label("r")
    with LabellingSession(al, strategy="margin", n=3) as again:
        assert again.resumed and again.progress() == (1, 3)


def test_a_reader_pool_and_feature_function(al: Path) -> None:
    """`reader` and `features` as functions of the project's code: the queue and the session work the same."""
    (al / "alertpool.py").write_text(textwrap.dedent('''
        import numpy as np
        from blase_tui import Extract

        def batches(root):
            return Extract(batch_size=9).load_parquet(root / "data" / "pool", key_column="candid")

        def features(batch):
            return np.column_stack([batch.column("magpsf"), batch.column("drb") * 2])
    '''))
    toml = TOML.replace('pool = "data/pool"', 'reader = "alertpool:batches"').replace(
        'features = ["magpsf", "drb", "sgscore"]', 'features = "alertpool:features"')
    (al / "blase.toml").write_text(toml.replace("n = 10\n", "n = 3\nstrategy = \"diversity\"\n"))
    with LabellingSession(al) as session:
        assert session.round.strategy == "diversity" and len(session._rows) == 6
        record = session.current()
        assert record.image.startswith(b"\x89PNG") and record.fields["objectId"] == f"ZTF{record.key}"
        assert record.url.endswith(record.secondary) and "first pick" in record.why
        for _ in range(3):
            session.label("b")
        assert session.done
    assert len(label_store.current_labels(Project.at(al).store)) == 3


def test_no_round_starts_when_everything_is_labelled(al: Path) -> None:
    store = Project.at(al).store
    for key in write_pool(al):
        label_store.add_label(store, key, "bogus", 0)
    with pytest.raises(BlaseError, match="no record is left to label: all 60 records"):
        LabellingSession(al)
    assert label_store.rounds(store) == []


def _plain(root: Path, keys: list[str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blase_tui", "label", "--plain", "--labeller", "bo", *extra],
                          cwd=root, env=_env(), input="".join(k + "\n" for k in keys), capture_output=True, text=True,
                          timeout=60)


def test_plain_cli_round_and_exported_csv(al: Path, blase) -> None:
    proc = _plain(al, SCRIPT + ["x", "o"])
    assert proc.returncode == 0, proc.stderr
    expected: list[tuple[str, str | None]] = []
    for line in proc.stdout.splitlines():
        words = line.split()
        if words[:1] == ["saved"]:
            expected.append((words[1], words[2]))
        elif words[:1] == ["skipped"]:
            expected.append((words[1], None))
        elif words[:1] == ["undid"]:
            assert expected.pop()[0] == words[1]
    labels = {k: lab for k, lab in expected if lab}
    assert "round 1 done: 10/10 labelled" in proc.stdout
    out = al / "labels.csv"
    blase("label", "export", "--out", str(out), cwd=al, check=True)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["candid", "objectId", "label", "timestamp"]
    assert {r[0]: r[2] for r in rows[1:]} == labels and len(rows) == 12
    stdout_csv = blase("label", "export", cwd=al, check=True).stdout
    assert [r[:3] for r in csv.reader(io.StringIO(stdout_csv))] == [r[:3] for r in rows]
    stats = json.loads(blase("label", "stats", "--json", cwd=al, check=True).stdout)
    assert stats["labellers"] == {"bo": 11}
    text = blase("label", "rounds", cwd=al, check=True).stdout
    assert re.search(r"^1\s+done\s+random", text, re.M)
    history = json.loads(blase("label", "history", rows[1][0], "--json", cwd=al, check=True).stdout)
    assert history[-1]["label"] == rows[1][2] and history[-1]["superseded_by"] is None


def test_sigkill_mid_round_loses_no_saved_label(al: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "blase_tui", "label", "--plain", "--n", "10"], cwd=al, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    saved: dict[str, str] = {}
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for key in ["r", "b", "v", "s", "r", "b"]:
            proc.stdin.write(key + "\n")
            proc.stdin.flush()
            while True:
                line = proc.stdout.readline()
                assert line, proc.stderr.read() if proc.stderr else ""
                if line.startswith(("saved ", "skipped ")):
                    break
            if line.startswith("saved "):
                _, k, lab = line.split()
                saved[k] = lab
        proc.stdin.write("r\n")  # in flight when the process dies: it may or may not be saved
        proc.stdin.flush()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    db = sqlite3.connect(al / "runs" / "blase.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    store = Project.at(al).store
    current = {lab.key: lab.label for lab in label_store.current_labels(store)}
    assert len(saved) == 5 and all(current[k] == lab for k, lab in saved.items())
    assert len(current) - len(saved) in (0, 1)
    with LabellingSession(al) as session:  # the round resumes where it stopped
        assert session.resumed and session.round.number == 1
        assert session.current().key not in saved and session.progress()[0] == len(current)


# ------------------------------------------------------------------------------------------------ rounds
def test_round_two_uses_round_one_model_and_never_offers_round_one_records(al: Path, blase) -> None:
    truth = {k: v for k, v in write_pool(al).items()}
    with LabellingSession(al, n=12) as session:
        while not session.done:
            session.label("r" if truth[session.current().key] else "b")
    store = Project.at(al).store
    round_one = {lab.key for lab in label_store.current_labels(store, round_=1)}
    assert len(round_one) == 12
    blase("step", "train", cwd=al, check=True)
    runs = json.loads(blase("runs", "list", "--json", cwd=al, check=True).stdout)
    train_run = runs[0]["id"]
    shown = json.loads(blase("runs", "show", train_run, "--json", cwd=al, check=True).stdout)
    assert shown["tags"] == {"round": "1"}
    ids = (al / "runs" / train_run / "train" / "artifacts" / "training_ids.csv").read_text().splitlines()
    assert ids[0] == "candid,round" and {line.split(",")[0] for line in ids[1:]} == round_one
    assert {line.split(",")[1] for line in ids[1:]} == {"1"}
    assert "up to date" in blase("step", "train", cwd=al, check=True).stderr  # same labels: reused

    queued = json.loads(blase("label", "queue", "--strategy", "margin", "--n", "8", "--json", cwd=al, check=True).stdout)
    assert queued["model"] == "vra:1" and queued["model_run"] == train_run and queued["excluded"] == 12
    with LabellingSession(al, strategy="least_confidence", n=6) as session:
        assert session.round.number == 2 and session.round.model == "vra:1" and session.round.model_run == train_run
        offered = [r.key for r in session._rows]
        assert not set(offered) & round_one and len(offered) == 12
        assert "p(real)=" in session.current().why or "p(bogus/varstar)=" in session.current().why
        while not session.done:
            record = session.current()
            assert record.key not in round_one
            session.label("r" if truth[record.key] else "b")
    round_two = label_store.current_labels(store, round_=2)
    assert all(lab.model_run == train_run and lab.strategy == "least_confidence" for lab in round_two)
    assert [r.number for r in label_store.rounds(store)] == [1, 2]

    # new labels make the training step run again (the labels are one of its inputs), on both rounds
    again = blase("step", "train", cwd=al, check=True)
    assert "up to date" not in again.stderr
    run = json.loads(blase("runs", "list", "--json", cwd=al, check=True).stdout)[0]["id"]
    shown = json.loads(blase("runs", "show", run, "--json", cwd=al, check=True).stdout)
    assert shown["tags"] == {"round": "2"}
    assert any(d["name"] == "labels" and d["records"] == 18 for d in shown["steps"][0]["datasets"])
    ids = (al / "runs" / run / "train" / "artifacts" / "training_ids.csv").read_text().splitlines()[1:]
    assert sorted({line.split(",")[1] for line in ids}) == ["1", "2"] and len(ids) == 18


def test_label_batches_join_the_pool_in_prepare(al: Path) -> None:
    project = Project.at(al)
    for key, label in (("10000", "real"), ("10001", "bogus"), ("10002", "unsure")):
        label_store.add_label(project.store, key, label, {"real": 1, "bogus": 0}.get(label))
    script = textwrap.dedent('''
        from blase_tui import Extract, Prepare
        from blase_tui.labelling import label_batches
        prepare = Prepare()
        prepare.register_source("features", Extract().load_parquet("data/pool", key_column="candid",
                                                                   columns=["candid", "magpsf", "drb"]))
        prepare.register_source("targets", label_batches())
        prepare.set_split(train=1.0, val=0.0, test=0.0)
        report = prepare.convert(output_format="parquet", output_dir="data/joined")
        print(report["counts"]["train"], report["missing_keys"]["targets"]["count"])
    ''')
    proc = subprocess.run([sys.executable, "-c", script], cwd=al, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "58"]  # the unsure label has no target: not trained on


# ------------------------------------------------------------------------------------------------ store
def test_version_3_database_upgrades_in_place(tmp_path: Path) -> None:
    from blase_tui.store import db as db_mod

    path = tmp_path / "runs" / "blase.db"
    path.parent.mkdir(parents=True)
    v3 = db_mod.SCHEMA.split("CREATE TABLE IF NOT EXISTS model_aliases")[0]
    conn = sqlite3.connect(path)
    conn.executescript(v3)
    conn.execute("DROP TABLE run_changes")  # schema 6 added it
    conn.execute("DROP TABLE metric_keys")  # schema 7 added it, filled from the metrics already there
    conn.execute("INSERT INTO runs (id, status, started) VALUES ('r1', 'succeeded', 1.0)")
    for step_run_id, step in ((1, "train"), (2, "evaluate")):
        conn.execute("INSERT INTO step_runs (id, run_id, step, folder, status, started)"
                     " VALUES (?, 'r1', ?, 'f', 'succeeded', 1.0)",
                     (step_run_id, step))
        conn.execute("INSERT INTO metrics (run_id, step_run_id, key, value) VALUES ('r1', ?, 'accuracy', 0.9)",
                     (step_run_id,))
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    database = db_mod.Database(path)
    assert database.query("PRAGMA user_version")[0][0] == db_mod.SCHEMA_VERSION == 9
    assert database.query("SELECT id FROM runs")[0]["id"] == "r1"
    tables = {r["name"] for r in database.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"labels", "label_rounds", "label_queue", "model_aliases", "run_changes", "metric_keys", "step_code"} <= tables
    assert {(r["step"], r["key"]) for r in database.query("SELECT * FROM metric_keys")} == {
        ("train", "accuracy"), ("evaluate", "accuracy")}
    database.close()
    make_project(tmp_path, "", '[project]\nname = "old"\n')
    store = Project.at(tmp_path).store
    assert label_store.add_label(store, "k1", "real", 1).active


# ------------------------------------------------------------------------------------------------- docs
def test_labelling_docs_examples_run(tmp_path: Path) -> None:
    """docs/labelling.md: its blase.toml and main.py blocks make the project; every Python and bash block runs,
    in order."""
    import shlex

    text = (REPO / "docs" / "labelling.md").read_text()
    blocks = re.findall(r"```(toml|python|bash)\n(.*?)```", text, flags=re.S)
    toml = next(code for lang, code in blocks if lang == "toml")
    main = next(code for lang, code in blocks if code.startswith("# main.py"))
    root = make_project(tmp_path / "docs", main, '[project]\nname = "docs"\nmemory_budget = "256MiB"\n\n' + toml)
    write_pool(root)
    ran = 0
    for lang, code in blocks:
        if lang == "toml" or code.startswith("# main.py"):
            continue
        commands = [[sys.executable, "-c", code]] if lang == "python" else [
            [sys.executable, "-m", "blase_tui", *shlex.split(line)[1:]] for line in code.splitlines()
            if line.startswith("blase ")]
        for command in commands:
            proc = subprocess.run(command, cwd=root, env=_env(), capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"docs/labelling.md example failed:\n{code}\n{proc.stdout}\n{proc.stderr}"
            ran += 1
    assert ran >= 8


def test_import_the_seeds_labels_csv(al: Path, blase) -> None:
    """`blase label import`: the seed's labels.csv comes in with its timestamps, re-importing changes nothing,
    and a label outside the vocabulary stops the whole import with one sentence."""
    seed_csv = al / "labels.csv"
    seed_csv.write_text("candid,objectId,label,timestamp\n"
                        "10001,ZTF10001,real,2025-06-01T12:00:00+00:00\n"
                        "10002,ZTF10002,bogus,2025-06-01T12:05:00+00:00\n"
                        "10003,ZTF10003,varstar,\n")
    out = blase("label", "import", str(seed_csv), cwd=al, check=True)
    assert out.stdout.strip() == f"imported 3 labels from {seed_csv}"
    rows = list(csv.DictReader(io.StringIO(blase("label", "export", cwd=al, check=True).stdout)))
    assert [(r["candid"], r["objectId"], r["label"]) for r in rows] == [
        ("10001", "ZTF10001", "real"), ("10002", "ZTF10002", "bogus"), ("10003", "ZTF10003", "varstar")]
    assert rows[0]["timestamp"] == "2025-06-01T12:00:00+00:00"
    again = blase("label", "import", str(seed_csv), cwd=al, check=True)
    assert again.stdout.strip() == f"imported 0 labels from {seed_csv} (3 already there)"

    bad = al / "bad.csv"
    bad.write_text("candid,label\n10004,real\n10005,maybe\n")
    proc = blase("label", "import", str(bad), cwd=al)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"blase: {bad}:3: label 'maybe' is not in [labelling.keys] (bogus, real, unsure, varstar) nor a target (0, 1);"
        " add a key for it, or fix the file. Nothing was imported."]
    db = Project.at(al).store
    labels = {lab.key: lab for lab in label_store.current_labels(db)}
    assert sorted(labels) == ["10001", "10002", "10003"] and labels["10001"].round is None
    assert labels["10001"].target == 1 and labels["10002"].target == 0
    missing = blase("label", "import", str(al / "nope.csv"), cwd=al)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    twice = al / "twice.csv"
    twice.write_text("candid,label\n10007,real\n10008,bogus\n10007,bogus\n")
    proc = blase("label", "import", str(twice), cwd=al)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"blase: {twice}:4: 10007 is labelled 'bogus' here and 'real' on line 2; keep one of them. Nothing was"
        " imported.")
    assert "10007" not in {lab.key for lab in label_store.current_labels(db)}


def test_the_seeds_labels_csv_with_1_0_and_empty_comes_back_as_it_was(al: Path, blase) -> None:
    """seed 002's labels.csv says 1 (real), 0 (bogus) and nothing (unsure): import it, label a round, export
    with --values and the file's rows come back as they were; a value that is the target of two labels, or of
    none, stops the import in one sentence."""
    toml = (al / "blase.toml").read_text()
    seed_csv = al / "labels.csv"
    seed_csv.write_text("candid,objectId,label,timestamp\n"
                        "10001,ZTF10001,1,2025-06-01T12:00:00+00:00\n"
                        "10002,ZTF10002,0,2025-06-01T12:05:00+00:00\n"
                        "10003,ZTF10003,,2025-06-01T12:09:00+00:00\n")
    ambiguous = blase("label", "import", str(seed_csv), cwd=al)  # bogus and varstar both train as 0
    assert ambiguous.returncode == 2 and ambiguous.stderr.strip() == (
        f"blase: {seed_csv}:3: '0' is the target of bogus and varstar; write the label's name instead. Nothing was"
        " imported.")
    (al / "blase.toml").write_text(toml.replace("varstar = 0", "varstar = 2"))
    assert blase("label", "import", str(seed_csv), cwd=al, check=True).stdout.startswith("imported 3 labels")
    labels = {lab.key: lab.label for lab in label_store.current_labels(Project.at(al).store)}
    assert labels == {"10001": "real", "10002": "bogus", "10003": "unsure"}
    with LabellingSession(al, strategy="ordered", n=1) as session:
        labelled = session.current().key
        session.label("b")
    rows = list(csv.DictReader(io.StringIO(blase("label", "export", "--values", "--round", cwd=al, check=True).stdout)))
    assert list(rows[0]) == ["candid", "objectId", "label", "timestamp", "round"]
    assert "\n".join(",".join(r[c] for c in ("candid", "objectId", "label", "timestamp")) for r in rows[:3]) == \
        "\n".join(seed_csv.read_text().splitlines()[1:])
    assert [r["round"] for r in rows] == ["", "", "", "1"] and (rows[3]["candid"], rows[3]["label"]) == (labelled, "0")
    # bogus and varstar sharing 0 again: --values writes the names beside the targets, and that file comes back
    (al / "blase.toml").write_text(toml)
    shared = al / "shared.csv"
    assert blase("label", "export", "--values", "--out", str(shared), cwd=al).returncode == 0
    rows = list(csv.DictReader(shared.open()))
    assert list(rows[0]) == ["candid", "objectId", "label", "label_name", "timestamp"]
    assert [(r["label"], r["label_name"]) for r in rows] == [("1", "real"), ("0", "bogus"), ("", "unsure"), ("0", "bogus")]
    back = blase("label", "import", str(shared), cwd=al)
    assert back.returncode == 0 and "(4 already there)" in back.stdout, back.stderr
    (al / "blase.toml").write_text(toml.replace("varstar = 0", "varstar = 2"))
    nowhere = al / "nowhere.csv"
    nowhere.write_text("candid,label\n10009,7\n")
    proc = blase("label", "import", str(nowhere), cwd=al)
    assert proc.returncode == 2 and "label '7' is not in [labelling.keys] (bogus, real, unsure, varstar) nor a" \
        " target (0, 1, 2)" in proc.stderr


def test_a_model_that_scores_everything_alike_gives_a_random_round_and_says_so(al: Path) -> None:
    """With few labels the model is constant: the round is not the pool's first records (one object's alerts in
    a row) but a seeded random draw, the same for the same seed, and the round says why."""
    import pyarrow.dataset as ds

    (al / "flat_scorer.py").write_text("import numpy as np\n\ndef load(path):\n"  # its own module name: the
                                       "    return lambda x: np.tile([0.4, 0.6], (len(x), 1))\n")  # tests share sys.modules
    (al / "blase.toml").write_text(TOML.replace('n = 10\n', 'n = 10\nbatch = 7\nmodel = "fake"\n'
                                                'scorer = "flat_scorer:load"\nseed = 3\n'))
    _fake_model(al)
    project = Project.at(al)
    keys = [str(k) for k in ds.dataset(al / "data" / "pool", format="parquet").to_table().column("candid").to_pylist()]
    queue = build_queue(project, strategy="least_confidence", n=8)
    got = [item.key for item in queue.items]
    assert len(got) == 8 and got != keys[:8] and sorted(got) != sorted(keys[:8])
    assert got == [keys[i] for i in rank("least_confidence", proba=np.tile([0.4, 0.6], (len(keys), 1)), n=8, seed=3)]
    assert got == [item.key for item in build_queue(project, strategy="least_confidence", n=8).items]
    assert queue.note is not None and "gives every record the same score (0.400)" in queue.note
    assert "blase step train" in queue.note
    # issue 27 item 4: each record and the round say it is a random order, not an uncertainty ranking
    assert all(item.why.startswith("the model scores every record alike, so: random pick (seed 3)")
               for item in queue.items), queue.items[0].why
    assert "top class" not in queue.items[0].why
    with LabellingSession(al, strategy="least_confidence", n=4, labeller="t") as session:
        assert session.round.order == "least_confidence → random order"
        assert session.current().why.startswith("the model scores every record alike")
