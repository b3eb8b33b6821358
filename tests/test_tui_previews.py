"""Artifact previews (``blase_tui.render``) on real files written here, and the widgets that show them:
ArtifactPreview, ArtifactTree, MetricPlot, SeriesPlot, driven with Textual's Pilot."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rich.console import Console, RenderableType
from textual.app import App, ComposeResult

from blase_tui.render import array_stats, jsonfile, render_array_image, render_image_bytes, render_preview

CARD = {
    "framework": "torch",
    "model": {"class": "Sequential", "parameters": 136586, "device": "cpu", "cuda": None},
    "task": "classification",
    "input": {"column": "image", "shape": [32, 32], "dtype": "uint8", "target": "label"},
    "classes": [str(i) for i in range(10)],
    "metrics": {"epoch": 7.0, "loss": 0.0587, "accuracy": 0.9846, "val_loss": 0.128, "val_accuracy": 0.968421},
    "epochs": [1, 2, 3, 4, 5, 6, 7, 8],
    "best_epoch": 7,
    "history": [{"epoch": float(e), "loss": 2.0 / e, "accuracy": 0.5 + e / 20, "val_loss": 2.1 / e,
                 "val_accuracy": 0.5 + e / 21} for e in range(1, 9)],
    "training_run": "20261123-163458486-kfywqk", "training_step_run": 5,
    "data_manifest_hash": "xxh3:eeef9fb5537d57ec4acc3b408493fb734e2bff4a7965b7e1119eae98e211e8a1",
    "seed": 42, "frozen_layers": None, "resumed_from": None,
    "packages": {"torch": "2.5.0", "numpy": "2.1.0", "blase-tui": "0.1.0"}, "created": 1795451710.0,
}


def text_of(renderable: RenderableType, width: int = 80) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def preview_text(path: Path, width: int = 80, max_rows: int = 20) -> str:
    return text_of(render_preview(path, width=width, max_rows=max_rows), width)


def png_bytes(w: int, h: int, mode: str = "RGB") -> bytes:
    img = Image.new(mode, (w, h))
    for x in range(w):
        for y in range(h):
            img.putpixel((x, y), (x * 4 % 256, y * 8 % 256, 128) if mode == "RGB" else (x + y) % 256)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def block_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "▄" in line]


# ------------------------------------------------------------------ JSON and model cards
def test_json_is_pretty_with_short_lists_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps({"accuracy": 0.9666666666666667, "confusion_matrix": [[19, 0], [1, 24]],
                                "classes": ["0", "1"]}))
    text = preview_text(path)
    assert "evaluation.json" in text and "JSON" in text
    assert '"accuracy": 0.966667' in text  # floats shortened for reading
    assert "[19, 0]," in text and "[1, 24]" in text
    assert '"classes": ["0", "1"]' in text


def test_big_json_lists_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    path.write_text(json.dumps({"values": list(range(5000))}))
    text = preview_text(path, max_rows=10)
    assert "4,990 more items" in text
    assert "4999" not in text


def test_json_too_big_to_parse_shows_its_first_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonfile, "JSON_PARSE_UP_TO", 100)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"rows": [{"i": i} for i in range(1000)]}, indent=1))
    text = preview_text(path, max_rows=5)
    assert "first lines shown as text" in text
    assert len(text.splitlines()) < 12


def test_invalid_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{oops")
    assert "not valid JSON" in preview_text(path)


def test_model_card_is_a_readable_summary(tmp_path: Path) -> None:
    path = tmp_path / "digits_cnn.pt.card.json"
    path.write_text(json.dumps(CARD, indent=1))
    text = preview_text(path)
    assert "model card" in text
    assert "torch · Sequential · 136,586 parameters · cpu" in text
    assert "10 classes: 0 1 2 3 4 5 6 7 8 9" in text
    assert "image 32×32 uint8 → label" in text
    assert "val_accuracy 0.9684" in text
    assert "8 run · best epoch 7" in text
    assert "eeef9fb5537d" in text and "xxh3:" not in text  # hashes read the same everywhere: 12 hex digits
    assert "history (8 epochs)" in text
    assert '"framework"' not in text  # not raw JSON


def test_model_file_shows_the_card_beside_it(tmp_path: Path) -> None:
    model = tmp_path / "digits_cnn.pt"
    model.write_bytes(b"PK\x03\x04" + bytes(500))
    assert "no model card beside it" in preview_text(model)
    (tmp_path / "digits_cnn.pt.card.json").write_text(json.dumps(CARD))
    text = preview_text(model)
    assert "PyTorch model" in text and "136,586 parameters" in text


# ------------------------------------------------------------------ text
def test_text_head_and_line_count(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    text = preview_text(path, max_rows=5)
    assert "1,000 lines" in text
    assert "line 0" in text and "line 4" in text and "line 5\n" not in text
    assert "first 5 lines shown" in text


def test_log_shows_head_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("".join(f"12:00:{i % 60:02d} INFO epoch {i}\n" for i in range(200)) + "12:01:00 ERROR boom\n")
    text = preview_text(path, max_rows=6)
    assert "epoch 0" in text and "ERROR boom" in text and "epoch 100" not in text


def test_markdown_is_rendered(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# Results\n\nThe model is **good**.\n\n- one\n- two\n")
    text = preview_text(path)
    assert "Results" in text and "# Results" not in text
    assert "• one" in text and "**" not in text


def test_jsonl_head_and_count(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"type": "progress", "done": i}) + "\n" for i in range(300)))
    text = preview_text(path, max_rows=3)
    assert "300 lines" in text
    assert '{"type": "progress", "done": 2}' in text and '"done": 3}' not in text


def test_empty_and_unknown_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    assert "(empty)" in preview_text(tmp_path / "empty.txt")
    (tmp_path / "blob.bin").write_bytes(bytes(range(64)))
    text = preview_text(tmp_path / "blob.bin")
    assert "binary" in text and "00 01 02 03" in text and "64 B" in text
    (tmp_path / "notes").write_text("plain words\n")
    assert "plain words" in preview_text(tmp_path / "notes")


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    text = preview_text(tmp_path / "gone.parquet").strip()
    assert "no such file" in text and "gone.parquet" in text
    assert len(text.splitlines()) <= 2  # one sentence, wrapped at most once at width 80


def test_folder_lists_folders_first(tmp_path: Path) -> None:
    (tmp_path / "b_dir").mkdir()
    for i in range(30):
        (tmp_path / f"a{i:02d}.txt").write_text("x" * i)
    text = preview_text(tmp_path, max_rows=5)
    lines = text.splitlines()
    assert "31 entries" in lines[0]
    assert lines.index(next(line for line in lines if "b_dir/" in line)) < lines.index(
        next(line for line in lines if "a00.txt" in line))
    assert "26 more" in text


# ------------------------------------------------------------------ tables
def test_csv_head_with_column_names_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("candid,label,score\n" + "".join(f"{1000 + i},real,{i / 100}\n" for i in range(50)))
    text = preview_text(path, max_rows=4)
    assert "50 rows" in text and "3 columns" in text
    assert "candid" in text and "label" in text and "score" in text and "int64" in text
    assert "1003" in text and "1004" not in text


def test_wide_csv_names_the_hidden_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    names = [f"feature_{i}" for i in range(30)]
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    text = preview_text(path, width=80)
    assert "more columns" in text and "feature_29" not in text.split("more columns")[0]


def test_parquet_reads_metadata_and_only_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1_000_000
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "x": np.linspace(0, 1, n)}), path, row_group_size=250_000)

    # the preview must never read a whole row group or file: make those paths fail, and record what it asks
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the preview read more than the head")

    asked: list[dict] = []
    real_iter = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        asked.append(kwargs)
        return real_iter(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", refuse)
    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)

    text = preview_text(path, max_rows=7)
    assert "1,000,000 rows" in text and "4 row groups" in text and "2 columns" in text
    assert asked == [{"batch_size": 7, "row_groups": [0], "columns": ["id", "x"]}]
    rows = [line for line in text.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [r.split()[0] for r in rows] == [str(i) for i in range(7)]
    assert "first 7 of 1,000,000 rows shown" in text


# ------------------------------------------------------------------ numpy
def test_npy_shape_dtype_and_statistics(tmp_path: Path) -> None:
    arr = np.arange(100, dtype=np.float32).reshape(20, 5)
    arr[3, 2] = np.nan
    np.save(tmp_path / "features.npy", arr)
    text = preview_text(tmp_path / "features.npy")
    assert "(20, 5) float32" in text
    finite = arr[np.isfinite(arr)]
    header, values = (line.split() for line in text.splitlines()[1:3])
    assert header == ["min", "max", "mean", "std", "NaN"]
    assert values == ["0", "99", f"{finite.mean():.4g}", f"{finite.std():.4g}", "1"]


def test_array_stats_in_chunks_match_numpy() -> None:
    rng = np.random.default_rng(0)
    arr = (rng.normal(1000.0, 3.0, 100_003)).astype(np.float32)
    arr[::997] = np.nan
    stats = array_stats(arr, chunk_bytes=4096)  # ~100 chunks
    finite = arr[np.isfinite(arr)].astype(np.float64)
    assert stats["nan"] == int(np.isnan(arr).sum())
    assert stats["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert stats["std"] == pytest.approx(finite.std(), rel=1e-9)
    assert (stats["min"], stats["max"]) == (finite.min(), finite.max())


def test_array_stats_cover_a_bounded_prefix(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(1000, dtype=np.int64))
    arr = np.load(tmp_path / "a.npy", mmap_mode="r")
    stats = array_stats(arr, max_bytes=800)  # 100 int64 values
    assert (stats["values"], stats["of"], stats["max"]) == (100, 1000, 99)


def test_npy_labels_show_value_counts(tmp_path: Path) -> None:
    np.save(tmp_path / "label.npy", np.array(["cat"] * 5 + ["dog"] * 3))
    text = preview_text(tmp_path / "label.npy")
    assert "cat ×5" in text and "dog ×3" in text


def test_npy_image_stack_draws_the_first_record(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", np.random.default_rng(0).integers(0, 255, (10, 32, 32), dtype=np.uint8))
    text = preview_text(tmp_path / "image.npy", max_rows=8)
    assert "(10, 32, 32) uint8" in text and "record 0 as an image" in text
    assert len(block_lines(text)) == 8


def test_npy_of_python_objects_is_not_loaded(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "needs pickle" in preview_text(tmp_path / "objects.npy")


def test_npz_lists_its_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "bundle.npz", weights=np.zeros((3, 4)), bias=np.zeros(4, dtype=np.float32))
    text = preview_text(tmp_path / "bundle.npz")
    assert "2 arrays" in text and "weights" in text and "(3, 4)" in text and "float32" in text


# ------------------------------------------------------------------ images
def test_png_is_drawn_in_half_blocks_keeping_its_aspect(tmp_path: Path) -> None:
    path = tmp_path / "roc.png"
    path.write_bytes(png_bytes(64, 32))
    text = preview_text(path, width=40, max_rows=10)
    assert "64×32" in text
    lines = block_lines(text)
    # 64×32 pixels into 40 columns × 20 pixel rows: 40×20, two pixel rows per line
    assert len(lines) == 10
    assert all(len(line.rstrip()) == 40 for line in lines)


def test_corrupt_png_is_a_one_line_message(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(png_bytes(16, 16)[:60])
    text = preview_text(path).strip()
    assert text.startswith("broken.png: not a readable image")
    assert "▄" not in text and len(text.splitlines()) == 1


def test_image_helpers_for_the_labelling_screen() -> None:
    assert len(block_lines(text_of(render_image_bytes(png_bytes(21, 21, "L"), 20, 10)))) == 10
    assert "not a readable image" in text_of(render_image_bytes(b"not a png", 20, 10))
    stamp = np.random.default_rng(0).normal(0, 1, (63, 63))
    stamp[0, :] = np.nan  # masked pixels in a difference image
    assert len(block_lines(text_of(render_array_image(stamp, width=30, height=15)))) == 15
    assert "cannot draw" in text_of(render_array_image(np.zeros(5)))


# ------------------------------------------------------------------ widgets
async def wait_for(pilot, condition, tries: int = 200) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until ``condition()`` holds (thread workers finish on their own time)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition never held")


async def test_artifact_preview_shows_a_file_then_another(tmp_path: Path) -> None:
    from blase_tui.tui.widgets.artifact_preview import ArtifactPreview

    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("candid,label\n1,real\n2,bogus\n")
    card_path = tmp_path / "m.pt.card.json"
    card_path.write_text(json.dumps(CARD))
    shown: list[Path] = []

    class Host(App):
        def compose(self) -> ComposeResult:
            yield ArtifactPreview()

        def on_artifact_preview_shown(self, event: ArtifactPreview.Shown) -> None:
            shown.append(event.path)

    async with Host().run_test(size=(90, 30)) as pilot:
        preview = pilot.app.query_one(ArtifactPreview)
        assert preview.renderable is None  # placeholder
        preview.show(csv_path)
        await wait_for(pilot, lambda: preview.shown_path == csv_path)
        assert "candid" in text_of(preview.renderable) and "bogus" in text_of(preview.renderable)
        preview.show(card_path)
        await wait_for(pilot, lambda: preview.shown_path == card_path)
        assert "136,586 parameters" in text_of(preview.renderable)
        await wait_for(pilot, lambda: shown == [csv_path, card_path])
        preview.show(None)
        await pilot.pause()
        assert preview.renderable is None


async def test_artifact_preview_rerenders_at_the_new_width(tmp_path: Path) -> None:
    from blase_tui.tui.widgets.artifact_preview import ArtifactPreview

    path = tmp_path / "wide.png"
    path.write_bytes(png_bytes(200, 20))

    class Host(App):
        def compose(self) -> ComposeResult:
            yield ArtifactPreview(path)

    def image_width(preview: ArtifactPreview) -> int:
        return max((len(line.rstrip()) for line in block_lines(text_of(preview.renderable, 200))), default=0)

    async with Host().run_test(size=(60, 20)) as pilot:
        preview = pilot.app.query_one(ArtifactPreview)
        await wait_for(pilot, lambda: preview.shown_path == path)
        narrow = image_width(preview)
        assert 30 < narrow <= 58
        await pilot.resize_terminal(120, 20)
        await wait_for(pilot, lambda: image_width(preview) > narrow)


def make_run(root: Path) -> Path:
    run = root / "runs" / "20261123-163458486-kfywqk"
    for step in ("etl", "train", "evaluate"):
        (run / step).mkdir(parents=True)
        (run / step / "log.txt").write_text(f"{step} done\n")
    (run / "train" / "artifacts" / "model").mkdir(parents=True)
    (run / "train" / "artifacts" / "model" / "cnn.pt.card.json").write_text(json.dumps(CARD))
    (run / "evaluate" / "artifacts").mkdir(parents=True)
    (run / "evaluate" / "artifacts" / "evaluation.json").write_text('{"accuracy": 0.97}')
    # steps ran etl, train, evaluate: not the alphabetical order
    (run / "run.json").write_text(json.dumps({"steps": [{"folder": "etl", "status": "succeeded"},
                                                        {"folder": "train", "status": "succeeded"},
                                                        {"folder": "evaluate", "status": "failed"}]}))
    return run


async def test_artifact_tree_lists_steps_in_run_order_and_posts_selected(tmp_path: Path) -> None:
    from blase_tui.tui.widgets.artifact_tree import ArtifactTree

    run = make_run(tmp_path)
    selected: list[Path] = []

    class Host(App):
        def compose(self) -> ComposeResult:
            yield ArtifactTree(run)

        def on_artifact_tree_selected(self, event: ArtifactTree.Selected) -> None:
            selected.append(event.path)

    async with Host().run_test(size=(80, 30)) as pilot:
        tree = pilot.app.query_one(ArtifactTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 4)
        assert [str(n.label).split()[0] for n in tree.root.children] == ["run.json", "etl", "train", "evaluate"]
        assert "failed" in str(tree.root.children[3].label)
        card = run / "train" / "artifacts" / "model" / "cnn.pt.card.json"
        node = next(n for n in tree._walk(tree.root) if n.data == card)
        assert node.parent is not None and node.parent.is_expanded  # a small run opens fully expanded
        tree.focus()
        tree.move_cursor(node)
        await wait_for(pilot, lambda: card in selected)
        selected.clear()
        await pilot.press("down")  # evaluate's folder follows
        await wait_for(pilot, lambda: selected == [run / "train" / "log.txt"])


def test_hashes_read_the_same_everywhere() -> None:
    """Issue 16 item 10: a dataset's hash (``xxh3:...``) and an artifact's (bare hex) print alike."""
    from blase_tui.core.fmt import cell, fmt_hash

    digest = "41fdb51ba2a9746d86f5fe9e13e389a65e6419ca00e58ef8c7e43784787eea5c"
    assert fmt_hash(f"xxh3:{digest}") == fmt_hash(digest) == "41fdb51ba2a9"
    assert cell("data", f"xxh3:{digest}") == cell("data", digest) == "41fdb51ba2a9"
    assert fmt_hash(None) == "-"


async def test_a_narrow_artifact_tree_cuts_names_never_sizes(tmp_path: Path) -> None:
    """Issue 16 item 4: at 80x24 the tree is about 24 cells wide; no line ends in part of a size (``4`` for
    4.1 KiB). Issue 27: the name comes first, so a long one drops its size and is cut in the middle, keeping its
    end (``a_rather_lon…me.json``)."""
    import re

    from textual.containers import Horizontal
    from textual.widgets import Static

    from blase_tui.tui.widgets.artifact_tree import ArtifactTree

    run = make_run(tmp_path)
    deep = run / "train" / "artifacts" / "model" / "checkpoints" / "epoch_010"
    deep.mkdir(parents=True)
    (deep / "digits_cnn_weights.pt").write_bytes(b"x" * 4200)
    (run / "train" / "a_rather_long_file_name.json").write_bytes(b"y" * 1700)

    class Host(App):
        CSS = "ArtifactTree { width: 24; }"

        def compose(self) -> ComposeResult:
            with Horizontal():
                yield ArtifactTree(run)
                yield Static("preview")

    async with Host().run_test(size=(80, 24)) as pilot:
        tree = pilot.app.query_one(ArtifactTree)
        await wait_for(pilot, lambda: any(n.data == deep / "digits_cnn_weights.pt" for n in tree._walk(tree.root)))
        tree.root.expand_all()
        await pilot.pause(0.1)
        lines = [tree.render_line(y).text.rstrip() for y in range(tree.size.height)]
        sized = [line for line in lines if re.search(r"  \d", line)]
        assert sized, lines
        for line in sized:  # a size is whole: digits and a unit
            assert re.search(r"  \d+(\.\d)? (B|KiB|MiB|GiB)$", line), line
        assert any(re.search(r"a_rather_\S*…\S*me\.json$", line) for line in lines), "\n".join(lines)
        assert all(len(line) <= tree.size.width for line in lines)


async def test_artifact_tree_reload_finds_new_files(tmp_path: Path) -> None:
    from blase_tui.tui.widgets.artifact_tree import ArtifactTree

    run = make_run(tmp_path)

    class Host(App):
        def compose(self) -> ComposeResult:
            yield ArtifactTree(run)

    async with Host().run_test(size=(80, 30)) as pilot:
        tree = pilot.app.query_one(ArtifactTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 4)
        new = run / "evaluate" / "artifacts" / "roc.png"
        new.write_bytes(png_bytes(8, 8))
        tree.reload()
        await wait_for(pilot, lambda: any(n.data == new for n in tree._walk(tree.root)))


async def test_metric_plot_with_and_without_data() -> None:
    from blase_tui.tui.widgets.metric_plot import MetricPlot

    class Host(App):
        def compose(self) -> ComposeResult:
            yield MetricPlot("training", xlabel="epoch")

    async with Host().run_test(size=(80, 24)) as pilot:
        plot = pilot.app.query_one(MetricPlot)
        assert "no metric values yet" in text_of(plot.render())
        plot.set_series("loss", range(1, 9), [2.1, 0.8, 0.3, 0.2, 0.12, 0.1, 0.06, float("nan")])
        plot.set_series("val_accuracy", [1, 2, 3], [0.6, 0.8, 0.9], axis="right")
        await pilot.pause()
        text = text_of(plot.render())
        assert "training" in text and "loss" in text and "val_accuracy" in text and "epoch" in text
        assert "2.10" in text  # the loss axis reaches its first value
        assert plot.series["loss"].xs.size == 7  # the NaN point is left out
        plot.set_series("loss", [5], [0.5])  # a single point
        plot.remove_series("val_accuracy")
        await pilot.pause()
        assert "●" in text_of(plot.render())
        plot.clear()
        assert "no metric values yet" in text_of(plot.render())


async def test_metric_plot_in_a_tiny_pane_shows_sparklines() -> None:
    from blase_tui.tui.widgets.metric_plot import MetricPlot

    class Host(App):
        CSS = "MetricPlot { height: 3; }"

        def compose(self) -> ComposeResult:
            yield MetricPlot("training")

    async with Host().run_test(size=(60, 10)) as pilot:
        plot = pilot.app.query_one(MetricPlot)
        plot.set_series("loss", None, [3.0, 2.0, 1.0, 0.5])
        await pilot.pause()
        assert "loss" in text_of(plot.render()) and "█" in text_of(plot.render())


def test_decimate_keeps_spikes_and_ends() -> None:
    from blase_tui.tui.widgets.metric_plot import decimate

    xs = np.arange(100_000, dtype=float)
    ys = np.ones_like(xs)
    ys[54_321] = 50.0
    x, y = decimate(xs, ys, 100)
    assert x.size <= 202 and y.max() == 50.0 and x[0] == 0 and x[-1] == 99_999


async def test_series_plot_inverts_magnitudes() -> None:
    from blase_tui.tui.widgets.series_plot import SeriesPlot

    class Host(App):
        def compose(self) -> ComposeResult:
            yield SeriesPlot("ZTF21aaa", xlabel="MJD", ylabel="mag", invert_y=True)

    def left_axis(text: str) -> list[float]:
        values = []
        for line in text.splitlines():
            head = line.split("┤")[0].strip()
            if "┤" in line and head.replace(".", "").isdigit():
                values.append(float(head))
        return values

    async with Host().run_test(size=(80, 24)) as pilot:
        plot = pilot.app.query_one(SeriesPlot)
        plot.set_series("g", [59000.1, 59001.2, 59003.0], [18.2, 18.9, float("nan")], yerr=[0.1, 0.2, 0.1],
                        color="green")
        plot.set_series("r", [59000.5, 59002.0], [18.5, 19.1], color="red")
        await pilot.pause()
        text = text_of(plot.render())
        assert "g" in text and "r" in text and "MJD" in text
        axis = left_axis(text)
        assert axis == sorted(axis)  # brighter (smaller magnitude) at the top
        plot.invert_y = False
        await pilot.pause()
        axis = left_axis(text_of(plot.render()))
        assert axis == sorted(axis, reverse=True)


async def test_artifact_preview_text_and_a_selected_message_from_elsewhere(tmp_path: Path) -> None:
    """The Run screen wires ``ArtifactTree.Selected(path)`` to ``show``; ``text()`` reads what is shown."""
    from blase_tui.tui.widgets.artifact_preview import ArtifactPreview
    from blase_tui.tui.widgets.artifact_tree import ArtifactTree

    path = tmp_path / "a.txt"
    path.write_text("n=4")

    class Host(App):
        def compose(self) -> ComposeResult:
            yield ArtifactPreview(placeholder="pick a file")

        def on_artifact_tree_selected(self, event: ArtifactTree.Selected) -> None:
            self.query_one(ArtifactPreview).show(event.path)

    async with Host().run_test(size=(80, 20)) as pilot:
        preview = pilot.app.query_one(ArtifactPreview)
        assert "pick a file" in preview.text()
        pilot.app.post_message(ArtifactTree.Selected(path))
        await wait_for(pilot, lambda: "n=4" in preview.text())
