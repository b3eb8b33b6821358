"""ArtifactTree: the files of one run folder (``runs/<run_id>/``): ``run.json`` and ``env.json``, then one
branch per step in the order the steps ran, each with its ``artifacts/``, ``log.txt``, ``events.jsonl`` and
checkpoints. The folder is read in a thread worker; moving the cursor posts ``ArtifactTree.Selected`` so the
screen can show the file in an ``ArtifactPreview``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from blase_tui.core.fmt import STATUS_STYLE, fmt_bytes

PER_FOLDER_LIMIT = 500
"""Entries listed per folder; the rest become one "… N more" line (a step may save thousands of samples)."""
TOTAL_LIMIT = 5_000
MAX_DEPTH = 8
EXPAND_UP_TO = 150
"""A run with at most this many entries opens fully expanded; a bigger one opens at its steps."""


@dataclass
class Entry:
    """A file or folder found under the run folder."""

    path: Path
    is_dir: bool
    size: int = 0
    status: str | None = None  # a step folder's status from run.json
    children: list[Entry] = field(default_factory=list)
    more: int = 0  # entries left out of ``children``


def scan_run(run_dir: Path, *, per_folder: int = PER_FOLDER_LIMIT, total: int = TOTAL_LIMIT) -> Entry:
    """The run folder as a tree of entries: at the top files first, then step folders in the order of
    ``run.json``'s steps (with their status); inside a step ``artifacts/`` first; elsewhere folders, then
    files, by name. Reads at most ``per_folder`` entries of a folder and ``total`` in all."""
    steps: dict[str, str] = {}
    try:
        run = json.loads((run_dir / "run.json").read_bytes())
        for s in run.get("steps", []):
            steps.setdefault(s.get("folder") or s.get("step"), s.get("status") or "")
    except (OSError, ValueError, AttributeError):
        pass  # a run being written, or copied without its run.json: list the folders as they are
    order = {name: i for i, name in enumerate(steps)}
    budget = [total]

    def walk(path: Path, depth: int) -> Entry:
        entry = Entry(path, True)
        try:
            with os.scandir(path) as it:
                items = list(it)
        except OSError:
            return entry
        found: list[Entry] = []
        for item in items:
            try:
                is_dir = item.is_dir()
                size = 0 if is_dir else item.stat().st_size
            except OSError:
                continue
            found.append(Entry(Path(item.path), is_dir, size))

        def key(e: Entry) -> tuple:
            if depth == 0:  # run folder: run.json, env.json, then the steps as they ran
                return (e.is_dir, order.get(e.path.name, len(order)), e.path.name)
            if depth == 1:  # a step: its artifacts first
                return (e.path.name != "artifacts", not e.is_dir, e.path.name)
            return (not e.is_dir, e.path.name.lower())

        found.sort(key=key)
        keep = min(len(found), per_folder, max(0, budget[0]))
        budget[0] -= keep
        entry.more = len(found) - keep
        for child in found[:keep]:
            if depth == 0 and child.is_dir:
                child.status = steps.get(child.path.name)
            if child.is_dir and depth < MAX_DEPTH:
                grown = walk(child.path, depth + 1)
                child.children, child.more = grown.children, grown.more
            entry.children.append(child)
        return entry

    return walk(run_dir, 0)


def _signature(entry: Entry) -> tuple:
    """What a tree built from ``entry`` shows: every path with its size, status and what was left out."""
    return (str(entry.path), entry.size, entry.status, entry.more, tuple(_signature(c) for c in entry.children))


def _count(entry: Entry) -> int:
    return len(entry.children) + sum(_count(c) for c in entry.children)


class ArtifactTree(Tree[Path]):
    """The files of one run folder as a tree.

    >>> tree = ArtifactTree(project.root / "runs" / run_id)
    >>> def on_artifact_tree_selected(self, event: ArtifactTree.Selected) -> None:
    ...     self.query_one(ArtifactPreview).show(event.path)

    Highlighting a node (cursor moves) or selecting it (enter, click) posts ``Selected`` with its path, a
    file or a folder. ``set_run`` shows another run; ``reload`` (key ``r``) reads the folder again, keeping
    the expanded branches and the cursor where they were (a live run gains artifacts as it goes).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Reload", id="artifact_tree.reload", tooltip="Read the run folder again"),
    ]

    class Selected(Message):
        """The cursor is on ``path`` (a file or folder of the run)."""

        def __init__(self, path: Path, tree: ArtifactTree | None = None) -> None:
            super().__init__()
            self.path = path
            self.tree = tree

        @property
        def control(self) -> ArtifactTree | None:
            return self.tree

    class Loaded(Message):
        """The run folder has been read and the tree rebuilt."""

        def __init__(self, tree: ArtifactTree) -> None:
            super().__init__()
            self.tree = tree

        @property
        def control(self) -> ArtifactTree:
            return self.tree

    class _Scanned(Message):
        def __init__(self, generation: int, root: Entry) -> None:
            super().__init__()
            self.generation = generation
            self.root = root

    def __init__(self, run_dir: Path | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(self._root_label(run_dir), data=run_dir, name=name, id=id, classes=classes,
                         disabled=disabled)
        self._run_dir = Path(run_dir) if run_dir is not None else None
        self._generation = 0
        self._loaded_once = False
        self.guide_depth = 2
        self._suffixes: dict[Any, int] = {}  # node id -> cells of its label's size or status at the end
        self._shown: tuple | None = None  # what the last scan found, to skip a rebuild that changes nothing

    def on_mount(self) -> None:
        if self._run_dir is not None:
            self.reload()

    # ---------------------------------------------------------------- public API
    @property
    def run_dir(self) -> Path | None:
        """The run folder shown."""
        return self._run_dir

    def set_run(self, run_dir: Path | None) -> None:
        """Show the files of another run folder (None: an empty tree)."""
        self._run_dir = Path(run_dir) if run_dir is not None else None
        self._loaded_once = False
        self._shown = None
        self.reset(self._root_label(self._run_dir), self._run_dir)
        if self._run_dir is not None:
            self.reload()

    def reload(self) -> None:
        """Read the run folder again in a thread worker; the tree is rebuilt when it is done."""
        if self._run_dir is None:
            return
        self._generation += 1
        self._scan(self._run_dir, self._generation)

    def action_reload(self) -> None:
        self.reload()

    # ---------------------------------------------------------------- loading
    @staticmethod
    def _root_label(run_dir: Path | None) -> Text:
        if run_dir is None:
            return Text("no run", style="dim")
        return Text.assemble(("run ", "dim"), (Path(run_dir).name, "bold"))

    @work(thread=True, exclusive=True, group="artifact-tree", exit_on_error=False)
    def _scan(self, run_dir: Path, generation: int) -> None:
        root = scan_run(run_dir)
        if not get_current_worker().is_cancelled:
            self.post_message(self._Scanned(generation, root))

    @on(_Scanned)
    def _on_scanned(self, message: _Scanned) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        found = _signature(message.root)
        if self._loaded_once and found == self._shown:
            return  # a live run read again, and nothing changed: the tree stays as it is (cursor, scroll)
        self._shown = found
        expanded = {n.data for n in self._walk(self.root) if n.is_expanded and n.data is not None}
        cursor = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self.root.data = self._run_dir
        expand_all = not self._loaded_once and _count(message.root) <= EXPAND_UP_TO
        self._add_entries(self.root, message.root, expanded, expand_all, depth=0)
        if not message.root.children:
            self.root.add_leaf(Text("no files (yet)", style="dim italic"), data=None)
        self.root.expand()
        self._loaded_once = True
        if cursor is not None:
            for node in self._walk(self.root):
                if node.data == cursor:
                    self.move_cursor(node)
                    break
        self.post_message(self.Loaded(self))

    def _add_entries(self, node: TreeNode[Path], entry: Entry, expanded: set[Path], expand_all: bool,
                      depth: int) -> None:
        for child in entry.children:
            if child.is_dir:
                branch = node.add(self._label(child), data=child.path)
                self._suffixes[branch.id] = len(child.status) + 2 if child.status else 0
                self._add_entries(branch, child, expanded, expand_all, depth + 1)
                # first load: everything when the run is small, else its steps; later: what the user opened
                if child.path in expanded or (not self._loaded_once and (expand_all or depth == 0)):
                    branch.expand()
            else:
                leaf = node.add_leaf(self._label(child), data=child.path)
                self._suffixes[leaf.id] = len(fmt_bytes(child.size)) + 2
        if entry.more:
            node.add_leaf(Text(f"… {entry.more:,} more", style="dim italic"), data=None)

    def render_label(self, node: TreeNode[Path], base_style: Any, style: Any) -> Text:
        """The name comes first: a label too long for the pane drops its size or status (the ``  4.1 KiB`` at its
        end; the preview lists them) before its name gives way, so ``history.csv`` stays whole at 80 columns;
        a name longer than the pane on its own is cut in the middle, keeping its end (``confusion_m…ix.png``),
        and a size is never shown in part."""
        text = super().render_label(node, base_style, style)
        keep = self._suffixes.get(node.id, 0)
        depth, parent = 0, node.parent
        while parent is not None:
            depth, parent = depth + 1, parent.parent
        room = self.scrollable_content_region.width - depth * self.guide_depth
        if text.cell_len <= room or room < 4:
            return text
        name = text[: len(text) - keep] if keep else text
        if name.cell_len <= room:
            return name
        suffix = node.data.suffix if isinstance(node.data, Path) else ""
        tail = min(max(len(suffix) + 2, room // 3), room // 2)
        head = name[: room - 1 - tail]
        head.append("…")
        head.append_text(name[len(name) - tail:])
        return head

    @staticmethod
    def _label(entry: Entry) -> Text:
        name = entry.path.name
        if entry.is_dir:
            label = Text.assemble((name, "bold"))
            if entry.status:
                label.append(f"  {entry.status}", STATUS_STYLE.get(entry.status, "dim"))
            return label
        return Text.assemble(name, (f"  {fmt_bytes(entry.size)}", "dim"))

    @staticmethod
    def _walk(node: TreeNode[Path]) -> list[TreeNode[Path]]:
        out, stack = [], [node]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(reversed(n.children))
        return out

    # ---------------------------------------------------------------- cursor
    @on(Tree.NodeHighlighted)
    @on(Tree.NodeSelected)
    def _on_node(self, event: Tree.NodeHighlighted[Path] | Tree.NodeSelected[Path]) -> None:
        if event.node.data is not None and event.control is self:
            self.post_message(self.Selected(event.node.data, self))
