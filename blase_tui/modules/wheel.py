"""blase's own wheel, written into a deployment so that it installs where blase is not (and no package index
has it): ``wheels/blase_tui-<version>-py3-none-any.whl``, built from the installed package's files, with the
dependencies serving needs only (no terminal UI, plots or image libraries). The same files give the same
bytes, so an archive of the deployment stays deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

# what `blase serve` imports from outside the standard library (its CLI, the HTTP app, the prediction log)
SERVE_RUNTIME = ("typer", "rich", "numpy", "pandas", "pyarrow", "psutil", "platformdirs", "filelock", "xxhash",
                 "fastapi", "uvicorn", "orjson", "cryptography")
_EPOCH = (1980, 1, 1, 0, 0, 0)
_LEFT_OUT = {"__pycache__"}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def requirements() -> dict[str, str]:
    """The packages the wheel requires, pinned to this environment's versions (those installed)."""
    return {pkg: v for pkg in SERVE_RUNTIME if (v := _version(pkg)) is not None}


def write(folder: Path) -> Path:
    """blase's wheel in ``folder``; returns its path."""
    import blase_tui

    version = blase_tui.__version__
    package = Path(blase_tui.__file__).resolve().parent
    name = f"blase_tui-{version}-py3-none-any.whl"
    info = f"blase_tui-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package.parent)
        if path.is_file() and not _LEFT_OUT.intersection(rel.parts) and path.suffix not in (".pyc", ".pyo"):
            files.append((rel.as_posix(), path.read_bytes()))
    meta = "\n".join([
        "Metadata-Version: 2.1", "Name: blase-tui", f"Version: {version}", "Requires-Python: >=3.11",
        "Summary: blase, as a deployment needs it to serve a model (built by blase deploy)",
        *(f"Requires-Dist: {pkg}" for pkg in SERVE_RUNTIME), ""])
    files += [(f"{info}/METADATA", meta.encode()),
              (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: blase deploy\nRoot-Is-Purelib: true\n"
                                b"Tag: py3-none-any\n"),
              (f"{info}/entry_points.txt", b"[console_scripts]\nblase = blase_tui.cli.hot:run\n")]
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode()))
    target = folder / "wheels" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry, data in files:
            zi = zipfile.ZipInfo(entry, date_time=_EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return target
