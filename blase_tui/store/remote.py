"""Datasets behind a URL (``s3://``, ``gs://``, ``https://``, ``az://``): their files through fsspec, and what
identifies their content without reading it — the server's ETag or version id per object, else its size and
modification time — so a step that read one is reused while the objects are the ones it read, and reruns when
one changes. The protocol's package (s3fs, gcsfs, adlfs, aiohttp) is an optional extra; without it, reading such a
URL is one line naming what to install."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from blase_tui.errors import BlaseError, ConfigError

SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfs://", "http://", "https://")
PACKAGE = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "http": "aiohttp",
           "https": "aiohttp"}
PREFIX = "remote:"  # the hash of a remote dataset: of its objects' names and identities, not their bytes


def is_url(path: Any) -> bool:
    return isinstance(path, str) and path.lower().startswith(SCHEMES)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path in it. Settings come from fsspec's usual places: the
    environment (``FSSPEC_S3_ENDPOINT_URL``, ``AWS_PROFILE``…) and its config files."""
    scheme = url.split("://", 1)[0].lower()
    try:
        import fsspec

        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        package = PACKAGE.get(scheme, str(exc.name or "its fsspec package"))
        raise ConfigError(f"reading {scheme}:// needs {package}: pip install 'blase-tui[remote]' (or pip install"
                          f" {package}).") from None
    except ValueError as exc:
        raise ConfigError(f"{url}: {exc}") from None


def unreachable(url: str, exc: BaseException) -> ConfigError:
    """One line for a URL the server will not answer for: no credentials, a refused connection, no such bucket."""
    name = type(exc).__name__
    text = (str(exc).splitlines() or [name])[0][:200]
    hint = ("set credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)" if "Credentials" in name
            else "check the URL, the network and the credentials")
    return ConfigError(f"{url}: cannot reach it ({name}: {text}); {hint}.")


def listing(fs: Any, path: str, url: str, patterns: Sequence[str], what: str, allow_empty: bool) -> list[str]:
    """The objects at ``path`` (one object, or every one under a prefix matching ``patterns``), sorted."""
    try:
        if fs.isfile(path):
            return [path]
        found = sorted(p for p in fs.find(path) if any(fnmatch.fnmatch(p.rsplit("/", 1)[-1].lower(), pat.lower())
                                                       for pat in patterns)
                       and not p.rsplit("/", 1)[-1].startswith("."))
    except Exception as exc:  # noqa: BLE001 - botocore, aiohttp, google-auth each raise their own
        raise unreachable(url, exc) from None
    if not found and not allow_empty:
        raise BlaseError(f"no {what} objects ({', '.join(patterns)}) at {url}; check the URL, or pass allow_empty=True.")
    return found


def identity(info: dict[str, Any]) -> str:
    """What names an object's content: its version id, else its ETag, else size and modification time."""
    for key in ("VersionId", "version_id", "ETag", "etag", "md5Hash", "generation"):
        if info.get(key):
            return f"{key}={str(info[key]).strip(chr(34))}"
    return f"size={info.get('size')} mtime={info.get('LastModified') or info.get('mtime') or info.get('updated')}"


def fingerprint(url: str) -> tuple[str, int]:
    """``(hash, bytes)`` of the dataset at ``url``: a hash of every object's path (relative to the URL) and
    identity, so the same objects give the same hash wherever they are listed from."""
    from blase_tui.store.hashing import hash_json

    fs, path = filesystem(url)
    try:
        fs.invalidate_cache()  # what the server holds now, not a listing this process cached earlier
        objects = [path] if fs.isfile(path) else sorted(fs.find(path))
        infos = {p: fs.info(p) for p in objects}
    except Exception as exc:  # noqa: BLE001 - as in listing
        raise unreachable(url, exc) from None
    root = path.rstrip("/")
    described = {(p[len(root):].lstrip("/") or p.rsplit("/", 1)[-1]): identity(info) for p, info in infos.items()}
    return PREFIX + hash_json(described), sum(int(info.get("size") or 0) for info in infos.values())


def unchanged(url: str, digest: str | None) -> bool:
    """Whether the dataset at ``url`` still holds the objects it held when it was hashed ``digest``; a URL that
    cannot be read now (offline, gone) counts as changed."""
    try:
        return bool(digest) and fingerprint(url)[0] == digest
    except BlaseError:
        return False
