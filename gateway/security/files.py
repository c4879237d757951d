"""Writing key material: atomically, with an exact mode (and owner) from the first byte."""

from __future__ import annotations

from pathlib import Path

from gateway.atomicfile import write_atomically

PRIVATE = 0o600
PUBLIC = 0o644


def write_secure(
    path: Path, data: bytes, mode: int = PRIVATE, owner: tuple[int, int] | None = None
) -> None:
    """Replace ``path`` with ``data``; the file never exists with a wider mode than ``mode``.

    The temporary file is created 0600 in the same directory, given ``owner`` (uid, gid)
    and ``mode``, fsynced, then renamed over ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, mode=mode, owner=owner)
