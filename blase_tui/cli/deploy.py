"""`blase deploy MODEL PATH`: make a deployment; `blase deploy verify|unpack|trust`: check, unpack and trust
deployment archives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from blase_tui.cli import common
from blase_tui.errors import EXIT_FAILED


class _DeployGroup(TyperGroup):
    """`blase deploy MODEL PATH` is `blase deploy model MODEL PATH`: a first word that is none of the commands
    names a model."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> tuple[str | None, object, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["model", *args]
        return super().resolve_command(ctx, args)  # type: ignore[no-any-return]


app = typer.Typer(cls=_DeployGroup, no_args_is_help=True,
                  help="Deploy a model (`blase deploy MODEL PATH`), and check, unpack and trust deployment archives.")


@app.command("model")
def model_command(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A registered model (NAME, NAME:3, NAME@ALIAS) or a"
                                                               " model file (.skops .joblib .pkl .pt .pth .keras .h5 .onnx).")],
    path: Annotated[Path, typer.Argument(metavar="PATH", help="The deployment folder to write (replaced if it is"
                                                             " an earlier deployment).")],
    method: Annotated[str, typer.Option("--method", help="folder, docker (adds a Dockerfile) or venv (adds run.sh)."
                                        )] = "folder",
    archive: Annotated[str | None, typer.Option("--archive", help="Also write a signed archive beside it: zip or"
                                                                  " tar.gz.")] = None,
    framework: Annotated[str | None, typer.Option("--framework", help="sklearn, torch or tensorflow, for a file"
                                                                      " whose suffix does not say.")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Open a model file not in the registry even where that runs"
                                                        " code from it (a pickle or joblib file): only for a file"
                                                        " you trust.")] = False,
) -> None:
    """Deploy MODEL to the folder PATH: the model file, its card, signature.json, requirements.txt, api.py,
    README.md and an example request (docs/deploy.md); `blase serve PATH` serves it.

    A model file not in the registry is registered first, as the next version of its file name (its card read
    from the model: columns, classes, input); a pickle or joblib file runs code when opened, so that takes
    --trust. The deployment is recorded as a run of its own."""
    from blase_tui.errors import ConfigError
    from blase_tui.frameworks.formats import RunsCode
    from blase_tui.modules.deploy import Deploy, read_deployment
    from blase_tui.modules.track import Track

    if archive is not None and archive not in ("zip", "tar.gz"):
        raise ConfigError(f"--archive must be zip or tar.gz, not {archive!r}.")
    from blase_tui.models.frameworks import of_file
    from blase_tui.modules.deploy import METHODS
    from blase_tui.store import models as registry

    if method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, not {method!r}.")
    project = common.project()
    root = project.root
    # what can be refused before a run is opened for it: a name that is no model, a file that runs code
    if not Path(model).is_file():
        if "/" in model or of_file(Path(model)) is not None:
            raise ConfigError(f"model {model}: no such file, and not a model name; give a registered model (`blase"
                              " models list`), as name, name:3 or name@alias, or a model file.")
        registry.get(project.store, model)  # one line naming the models there are
    common.refuse_untrusted_model_file(model, framework, trust, "deploy")
    deployer = Deploy()
    try:
        with Track(project=root).start_run(name=f"deploy {model}"):
            folder = deployer.deploy_model(model, path, method=method, framework=framework, trust=trust)
            made = deployer.archive_deployment(folder, format=archive) if archive else None
    except RunsCode as exc:  # what the framework's own guard refused, past the check above
        raise ConfigError(f"{str(exc).rstrip('.')}; deploy it only if you trust where it came from: add"
                          " --trust.") from None
    manifest = read_deployment(folder)
    label = manifest["model"]["name"] + (f" v{manifest['model']['version']}" if manifest["model"].get("version")
                                         else "")
    common.console.print(f"deployed {label} to {folder} ({method}): {manifest['chosen_because']}", markup=False)
    if made is not None:
        common.console.print(f"archived it as {made}", markup=False)
    common.console.print(f"next: blase serve {folder}", markup=False)


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

    report = verify(archive_path)
    signature = signing.check(archive_path, common.project_root())
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
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The folder to unpack into; the archive's top"
                                                                  " folder must not be in it yet.")],
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
    from blase_tui.modules.deploy import deployment_identity

    found = deployment_identity(target)
    root = None if user else common.project_root()
    where = trust.record(found.digest, what=f"{found.label} ({found.model}) from {target}", by="user", root=root)
    common.console.print(f"trusted {found.model} of {target} ({found.label}, SHA-256 {trust.short(found.digest)})"
                         f" {'in this project' if root is not None else 'for this user'} ({where}): `blase serve`"
                         " loads it even where that runs code from the file.", markup=False)
