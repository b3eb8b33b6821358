"""`blase deploy ...`: check, unpack and trust deployment archives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blase_tui.cli import common
from blase_tui.errors import EXIT_FAILED

app = typer.Typer(no_args_is_help=True,
                  help="Check, unpack and trust deployment archives (made by Deploy.archive_deployment).")


@app.command("verify")
def verify_command(
    archive_path: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="A .zip or .tar.gz deployment archive.")],
) -> None:
    """Check an archive against its SHA-256 manifests and its signature, and every entry as unpack does.

    The manifests: the one beside it (ARCHIVE.sha256) and the one inside (every file, by its full path). The
    entries: one top folder; no link, device or fifo; no `..`, absolute name or control character; no file the
    manifest does not list; nothing that inflates like a zip bomb. The signature (ARCHIVE.sig, made with the
    project's key by archive_deployment): whether it matches, and whether the key is this project's; an archive
    without one is said to be unsigned. Exit 0 when all hold, 1 naming what does not."""
    from blase_tui.core import signing
    from blase_tui.core.archive import verify
    from blase_tui.core.config import find_project_root

    report = verify(archive_path)
    signature = signing.check(archive_path, find_project_root())
    problems = [*report.all_problems, *([signature.detail] if signature.status == "bad" else [])]
    for problem in problems:
        common.console.print(f"bad  {problem}", markup=False)
    if problems:
        raise typer.Exit(EXIT_FAILED)
    common.console.print(f"ok   {archive_path}: {report.files} files match its manifest"
                         + ("" if report.sidecar else f" (no {archive_path.name}.sha256 beside it: the archive's own"
                                                      " hash was not checked)"), markup=False)
    common.console.print(f"{'ok ' if signature.status == 'ours' else '-- '}  {signature.detail}", markup=False)


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


@app.command("trust")
def trust_command(
    target: Annotated[Path, typer.Argument(metavar="ARCHIVE_OR_FOLDER",
                                           help="A deployment archive (.zip, .tar.gz) or deployment folder.")],
    user: Annotated[bool, typer.Option("--user", help="Trust it for your user everywhere, not only in this"
                                                      " project (the default outside a project).")] = False,
) -> None:
    """Trust the model of a deployment made elsewhere, so that `blase serve` loads it.

    Loading a pickle, a torch module of the project's classes or a Keras Lambda layer runs code from the file;
    blase does it only for models this project produced or you trust. What is recorded is the model file's
    SHA-256 (with its code/ files'): a changed file is not trusted. Recorded in the project's
    .blase/trusted.jsonl, or for your user outside a project (or with --user). Do this only for a source you
    trust; exit 2 for an archive that does not verify or a folder that is not a deployment."""
    from blase_tui.core import trust
    from blase_tui.core.config import find_project_root
    from blase_tui.modules.deploy import deployment_identity

    found = deployment_identity(target)
    root = None if user else find_project_root()
    where = trust.record(found.digest, what=f"{found.label} ({found.model}) from {target}", by="user", root=root)
    common.console.print(f"trusted {found.model} of {target} ({found.label}, SHA-256 {trust.short(found.digest)})"
                         f" {'in this project' if root is not None else 'for this user'} ({where}): `blase serve`"
                         " loads it even where that runs code from the file.", markup=False)
