"""`blase verify [RUN]`: check the content store and the run folders' artifacts against their hashes (an fsck)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        run: Annotated[str | None, typer.Argument(help="Only this run (an id, a unique prefix or tail, or `latest`).")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Hash every object of the content store (or those of RUN) and every artifact in the run folders: say
        which no longer have the content they were stored under (an edit in place), which are gone, and how many
        objects nothing refers to (`blase gc` frees them); without RUN, check every page of the index too
        (`blase runs reindex` rebuilds a damaged one). Exit 0: all as recorded; 1: something is not."""
        from blase_tui.cli import common
        from blase_tui.core.fmt import fmt_bytes
        from blase_tui.errors import EXIT_FAILED
        from blase_tui.store.verify import verify as check

        store = common.project().store
        run_id = store.resolve_run(run) if run else None
        out = check(store, run_id)
        if json_:
            common.print_json({"objects": out.objects, "bytes": out.bytes, "damaged": out.damaged,
                               "missing": out.missing, "changed": out.changed, "orphans": out.orphans,
                               "index": out.index, "ok": out.ok})
        else:
            c = common.console
            for kind, lines in (("index", out.index), ("damaged", out.damaged), ("missing", out.missing),
                                ("changed", out.changed)):
                for line in lines:
                    c.print(f"{kind:8} {line}", markup=False)
            orphans = f"; {out.orphans} object(s) nothing refers to (`blase gc` frees them)" if out.orphans else ""
            verdict = "all as recorded" if out.ok else "NOT all as recorded"
            c.print(f"{out.objects} object(s), {fmt_bytes(out.bytes)} hashed{' for run ' + run_id if run_id else ''}:"
                    f" {verdict}{orphans}", markup=False)
        if not out.ok:
            raise typer.Exit(EXIT_FAILED)
