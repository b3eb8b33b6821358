"""One bar per stage of a step (extract, transform, train epoch, ...), with rate and ETA, from its
``progress`` events. Only the newest event of each stage is kept."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from blase_tui.core.fmt import eta_seconds, fmt_seconds, rate_text


def render_progress(stages: dict[str, dict[str, Any]], *, width: int = 60, keep_done: int = 3,
                    max_rows: int | None = None) -> RenderableType:
    """A bar per stage in ``width`` cells, running stages first. Stages still running are all shown; of the
    finished ones only the last ``keep_done`` (a training of 40 epochs would otherwise fill the pane with
    finished bars). ``max_rows``: at most that many bars (running stages first, then the latest finished),
    for a pane that must fit a short terminal."""
    if not stages:
        return Text("no progress reported yet", style="dim")
    # running stages first: on a short terminal they are the ones that must stay visible
    items = sorted(stages.items(), key=lambda kv: bool(kv[1].get("finished")))
    done_items = [i for i, (_, e) in enumerate(items) if e.get("finished")]
    if max_rows is not None:
        keep_done = min(keep_done, max(0, max_rows - (len(items) - len(done_items))))
    hidden = set(done_items[:-keep_done] if keep_done else done_items) if len(done_items) > keep_done else set()
    if max_rows is not None:  # more running stages than rows: the first ones (the outer stages) stay
        hidden |= {i for i, (_, e) in enumerate(items) if not e.get("finished")} - set(range(max_rows))
    rows = []
    for i, (stage, e) in enumerate(items):
        if i in hidden:
            continue
        total, done = e.get("total"), e.get("done", 0)
        count = f"{done:,}/{total:,}" if total else f"{done:,}"
        if e.get("finished"):
            ended = e.get("ended_as")  # the step ended while this stage ran: how
            if ended and (not total or done < total):
                tail = Text(f"{ended} here", style="red" if ended == "failed" else "yellow")
            else:
                tail = Text("done", style="green") if not total or done >= total else Text("stopped", style="yellow")
        else:
            eta = stage_eta(stage, stages)
            tail = Text(rate_text(e.get("rate") or 0, e.get("unit", "items"))
                        + (f", eta {fmt_seconds(eta)}" if eta is not None else ""))
        rows.append((stage, e, count, tail))
    # the rate and ETA matter most, then the count, then the stage name (cut in the middle), then the bar
    count_w = max(len(r[2]) for r in rows)
    tail_w = min(max(len(r[3].plain) for r in rows), max(4, width - count_w - 8 - 6 - 4))
    # a tail too long for its column loses whole parts (the rate first, then words), never half a unit
    rows = [(stage, e, count, _fit_words(tail, tail_w)) for stage, e, count, tail in rows]
    stage_w = min(max(len(r[0]) for r in rows), max(8, (width - count_w - tail_w - 4) * 2 // 3))
    bar_w = max(6, width - stage_w - count_w - tail_w - 4)
    rows = [(_middle(stage, stage_w), e, count, tail) for stage, e, count, tail in rows]
    t = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=False)
    t.add_column(style="bold", no_wrap=True, width=stage_w, overflow="ellipsis")
    t.add_column(no_wrap=True, width=bar_w)
    t.add_column(no_wrap=True, justify="right", width=count_w)
    t.add_column(no_wrap=True, width=tail_w, overflow="ellipsis")
    for stage, e, count, tail in rows:
        total, done = e.get("total"), e.get("done", 0)
        if total:
            bar = ProgressBar(total=float(total), completed=min(float(total), done + (e.get("within") or 0)),
                              width=bar_w)
        else:  # unknown total: a pulsing bar until the stage finishes
            bar = ProgressBar(total=None if not e.get("finished") else 1.0, completed=1.0 if e.get("finished") else 0,
                              width=bar_w)
        t.add_row(stage, bar, count, tail)
    if hidden:
        return Group(t, Text(f"and {len(hidden)} earlier stage(s) done", style="dim"))
    return t


def stage_eta(stage: str, stages: dict[str, dict[str, Any]]) -> float | None:
    """Seconds left for ``stage`` at its average rate, and never less than what the stage under way inside it
    says: a bar over the epochs ("train") ends no sooner than its current epoch ("train epoch 3/8") plus the
    epochs after it at the average time an epoch took. (An epoch slower than the average would otherwise give
    the whole training less time left than the epoch alone.)"""
    e = stages[stage]
    eta = eta_seconds(e)
    inner = [s for s, i in stages.items() if s.startswith(stage + " ") and not i.get("finished") and i.get("total")]
    total, rate = e.get("total"), e.get("rate") or 0
    if not inner or not total or rate <= 0:
        return eta
    current = eta_seconds(stages[max(inner, key=lambda s: stages[s].get("t", 0))])
    if current is None:
        return eta
    after = max(0, total - e.get("done", 0) - 1)  # whole units after the one under way
    return max(eta or 0.0, current + after / rate)


def _fit_words(text: Text, width: int) -> Text:
    """``text`` in ``width`` cells without cutting a word: "4.17 s/batch, eta 1 min 3 s" gives "eta 1 min 3 s"
    (the rate goes first: the ETA says more), then words from the end; "…" says something was left out."""
    if text.cell_len <= width:
        return text
    plain = text.plain
    rate, sep, eta = plain.partition(", ")
    for candidate in ([eta] if sep else []) + [rate]:
        if len(candidate) <= width:
            return Text(candidate, style=text.style)
    words = plain.split(" ")
    while words and (len(" ".join(words)) + 1 > width or not any(c.isalpha() for c in words[-1])):
        words.pop()  # a figure without its unit says nothing: it goes with it
    kept = " ".join(words) + "…"
    return Text(kept if len(kept) <= width else "…", style=text.style)


def _middle(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` in the middle, so "train epoch 12/40" keeps its number: "trai…12/40"."""
    if len(text) <= width:
        return text
    right = max(1, (width - 1) // 2)
    return text[: width - 1 - right] + "…" + text[-right:]


class ProgressPane(Static):
    """Call ``feed(event)`` for each progress event, then ``flush()`` once per batch of events."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stages: dict[str, dict[str, Any]] = {}
        self.border_title = "progress"

    def on_mount(self) -> None:
        self.flush()

    def on_resize(self) -> None:
        # the bars are drawn for a width: a new size (or the panes stacking) draws them again, even when no
        # event comes any more (a step that has ended)
        self.flush()

    def feed(self, event: dict[str, Any]) -> None:
        self.stages[event["stage"]] = event

    def end(self, status: str) -> None:
        """The step ended (``status``). Stages still running stop; when it failed or was interrupted, the stage it
        was in (the newest one not complete; its closing event alone says "finished") says so where it stopped."""
        def incomplete(e: dict[str, Any]) -> bool:
            return not e.get("finished") or not e.get("total") or e.get("done", 0) < e["total"]

        newest = None
        if status not in ("succeeded", ""):
            candidates = [k for k, e in self.stages.items() if incomplete(e)]
            newest = max(candidates, key=lambda k: self.stages[k].get("t", 0), default=None)
        for stage, e in list(self.stages.items()):
            self.stages[stage] = {**e, "finished": True, **({"ended_as": status} if stage == newest else {})}
        self.flush()

    def flush(self) -> None:
        # the content width: the pane less its border and padding
        # stacked under the resources (a narrow terminal), the pane keeps to 3 bars so the log keeps its room
        narrow = any(a.has_class("narrow") for a in self.ancestors if hasattr(a, "has_class"))
        self.update(render_progress(self.stages, width=max(30, (self.size.width or 80) - 4),
                                    max_rows=3 if narrow else None))

    def percent(self, stage: str) -> float | None:
        e = self.stages.get(stage)
        if not e or not e.get("total"):
            return None
        return 100.0 * e.get("done", 0) / e["total"]
