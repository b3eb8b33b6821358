"""What ``blase serve TARGET`` names: a deployment folder, an archive of one, or a registered model."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from blase_tui.core import archive
from blase_tui.core.config import find_project_root
from blase_tui.errors import ConfigError
from blase_tui.modules.deploy import DEPLOYMENT


def _cache(name: str) -> Path:
    root = find_project_root()
    if root is not None:
        folder = root / ".blase" / "serve" / name
        folder.parent.mkdir(parents=True, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix=f"blase-serve-{name}-"))


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
            raise ConfigError(f"{path.name} does not verify ({report.problems[0]}); refusing to serve it.")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        folder = _cache(f"archive-{digest}")
        if not folder.is_dir() or not any(folder.iterdir()):
            unpacked = archive.unpack(path, folder)
        else:
            unpacked = next((p for p in [folder, *folder.iterdir()] if (p / DEPLOYMENT).is_file()), folder)
        if not (unpacked / DEPLOYMENT).is_file():
            raise ConfigError(f"{path.name} holds no deployment ({DEPLOYMENT} is missing).")
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
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write_deployment(staging, chosen)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder, f"the registered model {chosen.name} v{chosen.version}"
