"""Replacing a file atomically: a temporary file in the same directory, fsync, rename.

Readers see the old contents or the new, never a part; a crash leaves the old file (and
no temporary file once the exception has unwound). Used for the config file
(``set_config``) and for key material (``gateway pki``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(
    path: Path, data: bytes | str, *, mode: int | None = None, owner: tuple[int, int] | None = None
) -> None:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8).

    ``mode`` (and ``owner``, a ``(uid, gid)``) are set on the temporary file before any
    byte is written, so the file never exists with a wider mode. Without ``mode`` an
    existing file keeps its mode; a new one is created 0600.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if mode is None and path.exists():
        mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
