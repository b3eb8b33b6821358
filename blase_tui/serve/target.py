"""What ``blase serve TARGET`` names: a deployment folder, an archive of one, or a registered model.

An archive is verified (every entry, as ``blase deploy unpack`` checks it) and unpacked once per archive
content, under ``.blase/serve/`` in a project, else under ``serve/`` in blase's user folder (``BLASE_HOME``, or
the platform's data folder: ``~/.local/share/blase`` on Linux), where the prediction log of a server outside a
project also goes (beside the deployment). A registered model is deployed on the fly in the same place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from blase_tui.core import archive
from blase_tui.core.config import find_project_root
from blase_tui.errors import ConfigError
from blase_tui.modules.deploy import DEPLOYMENT
from blase_tui.store.hashing import hash_file


def cache_root() -> Path:
    """Where archives are unpacked and registered models deployed for serving."""
    root = find_project_root()
    if root is not None:
        return root / ".blase" / "serve"
    from blase_tui.core.registry import home

    return home() / "serve"


def _cache(name: str) -> Path:
    folder = cache_root() / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def resolve(target: str) -> tuple[Path, str]:
    """The deployment folder to serve, and a line saying what TARGET was taken for."""
    path = Path(target)
    if path.is_dir():
        if not (path / DEPLOYMENT).is_file():
            raise ConfigError(f"{path} is a folder but not a deployment (no {DEPLOYMENT}); make one with"
                              " Deploy().deploy_model, or name a registered model.")
        return path.resolve(), f"the deployment folder {path}"
    if path.is_file():
        if not path.name.endswith((".zip", ".tar.gz", ".tgz")):
            raise ConfigError(f"{path} is a file but not a deployment archive (.zip or .tar.gz); serve a deployment"
                              " folder, an archive, or a registered model.")
        report = archive.verify(path)
        if not report.ok:
            raise ConfigError(f"{path.name} does not verify ({report.all_problems[0]}); refusing to serve it.")
        from blase_tui.core import signing

        signature = signing.check(path, find_project_root())
        if signature.status == "bad":
            raise ConfigError(f"{path.name} does not verify ({signature.detail}); refusing to serve it.")
        folder = _cache(f"archive-{hash_file(path)[:16]}")
        unpacked = folder / report.top if report.top else folder
        if not (unpacked / DEPLOYMENT).is_file():
            # unpacked afresh: a folder left half-made (or changed) by an earlier try is not served
            shutil.rmtree(folder, ignore_errors=True)
            unpacked = archive.unpack(path, folder)
        if not (unpacked / DEPLOYMENT).is_file():
            raise ConfigError(f"{path.name} holds no deployment ({DEPLOYMENT} is missing in {report.top}/).")
        return unpacked, f"the archive {path} (verified, unpacked to {unpacked})"
    return _registered(target)


def _registered(ref: str) -> tuple[Path, str]:
    from blase_tui.errors import BlaseError
    from blase_tui.modules.deploy import choose_model, write_deployment

    if "/" in ref or ref.endswith((".zip", ".tar.gz", ".tgz")):  # a path, not a model's name
        raise ConfigError(f"{ref} does not exist; give a deployment folder, an archive of one, or a registered model"
                          " (`blase models list`).")
    if find_project_root() is None:
        raise ConfigError(f"{ref} is not a deployment folder or archive, and this is not a project folder where it"
                          " could name a registered model; cd into the project or give a path.")
    try:
        chosen = choose_model(ref)
    except BlaseError as exc:
        raise ConfigError(f"{ref} is not a deployment folder or archive, nor a registered model: {exc}") from None
    folder = _cache(f"model-{chosen.name}-v{chosen.version}")
    if not (folder / DEPLOYMENT).is_file():
        staging = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write_deployment(staging, chosen)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder, f"the registered model {chosen.name} v{chosen.version}"
