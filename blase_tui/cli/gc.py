"""`blase gc`: reclaim the content store's objects nothing refers to (after `blase runs delete`)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("gc")
    def gc(
        dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Say what would go; remove nothing.")] = False,
        now: Annotated[bool, typer.Option("--now", help="Also remove unused objects written in the last hour (after"
                                          " a step failed on a full disk); refused while a step is running.")] = False,
    ) -> None:
        """Free the space of deleted runs: objects of the content store that no run, model or kept output refers
        to (those written in the last hour stay, unless --now: a step that is ending may still be recording them)."""
        from blase_tui.cli import common
        from blase_tui.core.fmt import fmt_bytes
        from blase_tui.errors import ConfigError
        from blase_tui.store.gc import GRACE, collect

        store = common.project().store
        store.recover_dead()
        running = store.running_step_runs()
        if now and running:
            r = running[0]
            raise ConfigError(f"gc --now would remove what step `{r.step}` of run {r.run_id} is recording: wait"
                              " for it to end, or run `blase gc` without --now.")
        out = collect(store, dry_run=dry_run, grace=0.0 if now else GRACE)
        verb = "would remove" if dry_run else "removed"
        common.console.print(f"{verb} {out.objects} object(s), {fmt_bytes(out.bytes)}; {out.datasets} kept output"
                             f" record(s); {len(out.leftovers)} leftover(s) of interrupted work")
        common.console.print(f"{out.kept} object(s) still in use" + (
            f"; {out.young} unused but written in the last {GRACE / 3600:.0f} h, kept for now" if out.young else ""))
