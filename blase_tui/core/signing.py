"""Signatures of deployment archives with the project's key (ed25519), so that an archive says who made it.

A manifest proves only that an archive matches itself: anyone can rebuild one around another model. A
signature proves that the holder of a key made it. ``archive_deployment`` signs each archive with the
project's key (``.blase/keys/archive-ed25519.pem``, mode 0600, made on first use), written beside the archive
as ``ARCHIVE.sig``, so the archive's own bytes stay deterministic:

    {"algorithm": "ed25519", "public_key": "<hex>", "sha256": "<the archive's>", "signature": "<hex>"}

``check`` says which of four it is: not signed, a signature that does not match (the archive or the ``.sig``
was changed), signed by this project's key, or signed by a key this project does not know (which proves who
made it only to someone who knows that key). Signing needs ``cryptography`` (the ``serve`` extra); without it
archives are not signed, and ``check`` says a signature could not be checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase_tui.store.hashing import hash_file

KEY_FILE = Path(".blase") / "keys" / "archive-ed25519.pem"
PUBLIC_FILE = Path(".blase") / "keys" / "archive-ed25519.pub"  # readable by all: whose archives are "ours"
CONTEXT = b"blase deployment archive v1\n"  # signed with the hash, so the key signs nothing else by accident


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        return None
    return ed25519


def _public_hex(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _project_key(root: Path, *, create: bool) -> Any:
    from cryptography.hazmat.primitives import serialization

    path = root / KEY_FILE
    if not path.is_file():
        if not create:
            return None
        ed25519 = _crypto()
        key = ed25519.Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            os.link(tmp, path)  # whole or not at all; a second process signing at once keeps the first key
        except FileExistsError:
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
        finally:
            tmp.unlink()
        (root / PUBLIC_FILE).write_text(_public_hex(key.public_key()) + "\n")
        return key
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def sig_path(archive: Path) -> Path:
    return Path(f"{archive}.sig")


def sign(archive: Path, root: Path) -> Path | None:
    """Sign ``archive`` with the key of the project at ``root``; returns the ``.sig`` written, or None when
    ``cryptography`` is not installed or the key cannot be read (a shared project's key is its owner's)."""
    if _crypto() is None:
        return None
    try:
        key = _project_key(root, create=True)
    except (OSError, ValueError):
        return None
    digest = hash_file(archive)
    out = sig_path(archive)
    out.write_text(json.dumps({"algorithm": "ed25519", "public_key": _public_hex(key.public_key()),
                               "sha256": digest, "signature": key.sign(CONTEXT + digest.encode()).hex()},
                              sort_keys=True) + "\n")
    return out


@dataclass(frozen=True)
class Signature:
    """What ``ARCHIVE.sig`` says: ``status`` is ``none``, ``unchecked`` (no cryptography), ``bad``, ``ours`` or
    ``unknown``; ``detail`` the words for it."""

    status: str
    detail: str
    fingerprint: str | None = None


def check(archive: Path, root: Path | None) -> Signature:
    """Check the signature beside ``archive`` against the archive, and say whose key made it (``root``: the
    project whose key counts as ours)."""
    path = sig_path(archive)
    if not path.is_file():
        return Signature("none", f"not signed (no {path.name} beside it): nothing says who made it")
    ed25519 = _crypto()
    if ed25519 is None:
        return Signature("unchecked", f"{path.name} not checked: install cryptography (the serve extra) to check it")
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        public = bytes.fromhex(data["public_key"])
        signature = bytes.fromhex(data["signature"])
        if data.get("algorithm") != "ed25519":
            raise ValueError(f"algorithm {data.get('algorithm')!r}")
        key = ed25519.Ed25519PublicKey.from_public_bytes(public)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return Signature("bad", f"{path.name} cannot be read ({exc}); it signs nothing")
    from cryptography.exceptions import InvalidSignature

    digest = hash_file(archive)
    try:
        key.verify(signature, CONTEXT + digest.encode())
    except InvalidSignature:
        return Signature("bad", f"{path.name}: the signature does not match the archive (one of them was changed)")
    fingerprint = public.hex()[:16]
    try:
        ours = root is not None and (root / PUBLIC_FILE).read_text().strip() == public.hex()
    except OSError:
        ours = False
    if ours:
        return Signature("ours", f"signed by this project's key (ed25519 {fingerprint}…)", fingerprint)
    return Signature("unknown", f"signed by a key this project does not know (ed25519 {fingerprint}…): it proves who"
                                " made it only if you know that key", fingerprint)
