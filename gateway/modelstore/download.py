"""Download a file to a temporary path, checking its size and computing its SHA-256."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from gateway import progress
from gateway.errors import InputError, ModelStoreError

CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def copy_with_hash(src: BinaryIO, dst: BinaryIO, total: int | None, desc: str) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` with a progress bar (a terminal only); return (bytes, sha256)."""
    digest = hashlib.sha256()
    size = 0
    with progress.bar(desc, "B", total) as bar:
        bar.unit_scale, bar.unit_divisor = True, 1024
        for chunk in iter(lambda: src.read(CHUNK), b""):
            dst.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            bar.update(len(chunk))
    return size, digest.hexdigest()


def download(
    url: str, dest: Path, expected_size: int | None, timeout: float = 30.0
) -> tuple[int, str]:
    """Fetch ``url`` into ``dest``; return (bytes, sha256).

    Raises :class:`ModelStoreError` on HTTP or network errors and on a body shorter
    or longer than the announced ``Content-Length`` (a truncated transfer).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "roadside-gateway"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, dest.open("wb") as out:
            announced = resp.headers.get("Content-Length")
            total = int(announced) if announced and announced.isdigit() else expected_size
            size, digest = copy_with_hash(resp, out, total, dest.name)
    except urllib.error.HTTPError as exc:
        raise ModelStoreError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelStoreError(f"download failed: {url}: {reason}") from exc
    if announced and announced.isdigit() and size != int(announced):
        raise ModelStoreError(f"download truncated: {url}: got {size} of {announced} bytes")
    return size, digest


def copy_file(src: Path, dest: Path) -> tuple[int, str]:
    """Copy a local file (e.g. from a USB stick) into ``dest``; return (bytes, sha256)."""
    try:
        with src.open("rb") as fh, dest.open("wb") as out:
            return copy_with_hash(fh, out, src.stat().st_size, src.name)
    except FileNotFoundError as exc:
        raise InputError(f"model file not found: {src}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"not a file: {src}") from exc
    except OSError as exc:
        raise ModelStoreError(f"cannot copy {src}: {exc.strerror or exc}") from exc


def free_bytes(path: Path) -> int:
    """Free space on the file system holding ``path``."""
    return shutil.disk_usage(path).free
