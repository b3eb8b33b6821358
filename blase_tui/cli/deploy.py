"""`blase deploy ...`: check and unpack deployment archives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blase_tui.cli import common
from blase_tui.errors import EXIT_FAILED

app = typer.Typer(no_args_is_help=True, help="Check and unpack deployment archives (made by Deploy.archive_deployment).")


@app.command("verify")
def verify_command(
    archive_path: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="A .zip or .tar.gz deployment archive.")],
) -> None:
    """Check an archive against its SHA-256 manifests: the one beside it (ARCHIVE.sha256) and the one inside.
    Exit 0 when both hold, 1 naming what does not."""
    from blase_tui.core.archive import verify

    report = verify(archive_path)
    for problem in report.problems:
        common.console.print(f"bad  {problem}", markup=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
    common.console.print(f"ok   {archive_path}: {report.files} files match its manifest"
                         + ("" if report.sidecar else f" (no {archive_path.name}.sha256 beside it: the archive's own"
                                                      " hash was not checked)"), markup=False)


@app.command("unpack")
def unpack_command(
    archive_path: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="A .zip or .tar.gz deployment archive.")],
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A new or empty folder to unpack into.")],
) -> None:
    """Unpack a deployment archive into DIR, after checking every entry: one that would land outside DIR, an
    absolute path, a link or a device file is refused (exit 2) and nothing is written."""
    from blase_tui.core.archive import unpack

    folder = unpack(archive_path, directory)
    common.console.print(f"unpacked {archive_path} into {folder}", markup=False)
