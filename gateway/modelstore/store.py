"""The on-disk model store.

Layout, one directory per model::

    <root>/<name>/model.onnx     the model
    <root>/<name>/labels.txt     optional label file (one name per line)
    <root>/<name>/meta.json      checksum, size, layout, origin: the commit record
    <root>/.staging/             downloads and copies in progress

A new file is written under ``.staging``, checked (size, SHA-256, loadable by ONNX
Runtime) and only then moved over the old one with ``os.replace``; a corrupt or
truncated download never replaces a good model.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import InputError, ModelError, ModelStoreError
from gateway.modelstore.catalog import CatalogEntry
from gateway.modelstore.download import copy_file, download, sha256_file

MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.txt"
META_FILE = "meta.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A model in the store."""

    name: str
    path: Path
    sha256: str
    size: int
    model_type: str | None
    labels: list[str] | None
    source: str
    origin: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "model_type": self.model_type or "auto",
            "labels": len(self.labels) if self.labels else "default",
            "source": self.source,
            "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of re-checking one stored model."""

    name: str
    ok: bool
    detail: str


def check_onnx(path: Path, shown_as: str | None = None) -> None:
    """Raise :class:`ModelError` unless ONNX Runtime can load ``path``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(str(path), shown_as or path.name)
        raise ModelError(
            f"not a loadable ONNX model: {shown_as or path.name}: {first[:200]}"
        ) from exc


def install_hint(name: str, root: Path) -> str:
    """The command that puts model ``name`` into the store at ``root``."""
    from gateway.errors import ConfigError
    from gateway.modelstore.catalog import load_catalog

    try:
        entry = load_catalog().get(name)
    except ConfigError:
        entry = None
    if entry is not None and entry.source == "onnx":
        return f"gateway models pull {name} --model-dir {root}"
    if entry is not None:
        return (
            f"export it on a workstation ({entry.notes or 'see gateway models list'}), then "
            f"gateway models import FILE --name {name} --model-dir {root}"
        )
    return f"gateway models import /path/to/model.onnx --name {name} --model-dir {root}"


def validate_name(name: str) -> str:
    """Model names are short and safe as directory names."""
    if not NAME_RE.match(name):
        raise InputError(
            f"invalid model name {name!r}: use letters, digits, '_', '.', '-' (max 64)"
        )
    return name


class ModelStore:
    """Models kept under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _ensure_writable(self) -> Path:
        staging = self.root / ".staging"
        try:
            staging.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=staging, delete=True)  # noqa: SIM115
            probe.close()
        except OSError as exc:
            raise ModelStoreError(
                f"model store {self.root} is not writable: {exc.strerror or exc}"
            ) from exc
        return staging

    @contextlib.contextmanager
    def _staging_dir(self) -> Iterator[Path]:
        staging = self._ensure_writable()
        work = Path(tempfile.mkdtemp(prefix="in-", dir=staging))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def names(self) -> list[str]:
        """Names of the stored models (directories with a meta record)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / META_FILE).is_file())

    def _meta(self, name: str) -> dict[str, Any]:
        path = self.root / name / META_FILE
        try:
            meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            error = ModelError(f"model not found in store {self.root}: {name}")
            error.fix = install_hint(name, self.root)
            raise error from exc
        except (OSError, ValueError) as exc:
            raise ModelStoreError(f"unreadable record for model {name}: {exc}") from exc
        return meta

    def get(self, name: str) -> StoredModel:
        """The stored model ``name``; :class:`ModelError` when it is not there."""
        meta = self._meta(name)
        directory = self.root / name
        labels = None
        if meta.get("labels") == LABELS_FILE:
            text = (directory / LABELS_FILE).read_text(encoding="utf-8")
            labels = [line.strip() for line in text.splitlines() if line.strip()]
        return StoredModel(
            name=name,
            path=directory / MODEL_FILE,
            sha256=str(meta["sha256"]),
            size=int(meta["size"]),
            model_type=meta.get("model_type"),
            labels=labels,
            source=str(meta.get("source", "")),
            origin=str(meta.get("origin", "")),
        )

    def models(self) -> list[StoredModel]:
        """Every stored model."""
        return [self.get(name) for name in self.names()]

    def _commit(
        self,
        name: str,
        work: Path,
        meta: dict[str, Any],
        labels_file: Path | None,
        shown_as: str,
    ) -> StoredModel:
        """Move a checked file from staging into place, then write its record."""
        check_onnx(work / MODEL_FILE, shown_as)
        target = self.root / name
        target.mkdir(parents=True, exist_ok=True)
        if labels_file is not None:
            shutil.copyfile(labels_file, work / LABELS_FILE)
            os.replace(work / LABELS_FILE, target / LABELS_FILE)
            meta["labels"] = LABELS_FILE
        meta.update(name=name, installed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        (work / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.replace(work / MODEL_FILE, target / MODEL_FILE)
        os.replace(work / META_FILE, target / META_FILE)
        return self.get(name)

    def pull(
        self,
        entry: CatalogEntry,
        url: str | None = None,
        sha256: str | None = None,
        trust_unpinned: bool = False,
        name: str | None = None,
    ) -> StoredModel:
        """Download a catalog model, check its size and checksum, and store it."""
        name = validate_name(name or entry.name)
        if entry.source == "export":
            raise InputError(f"{entry.name} is published as PyTorch weights: {entry.notes}")
        expected = (sha256 or entry.sha256 or "").lower() or None
        if expected is None and not trust_unpinned:
            raise InputError(
                f"{entry.name} has no pinned checksum: pass --sha256 HEX "
                "(or --trust-unpinned to record whatever is downloaded)"
            )
        source_url = url or entry.url
        with self._staging_dir() as work:
            size, digest = download(source_url, work / MODEL_FILE, entry.size)
            if entry.size is not None and url is None and size != entry.size:
                raise ModelStoreError(
                    f"download of {entry.name} has {size} bytes, the catalog says {entry.size}"
                )
            if expected is not None and digest != expected:
                raise ModelStoreError(
                    f"checksum mismatch for {entry.name}: expected {expected}, got {digest}; "
                    "the download was discarded"
                )
            meta: dict[str, Any] = {
                "sha256": digest,
                "size": size,
                "model_type": entry.model_type,
                "input_size": entry.input_size,
                "labels": entry.labels,
                "license": entry.license,
                "source": "catalog",
                "origin": source_url,
            }
            return self._commit(name, work, meta, None, source_url)

    def import_file(
        self,
        src: Path,
        name: str,
        model_type: str | None = None,
        labels_file: Path | None = None,
    ) -> StoredModel:
        """Copy a local model file (e.g. from a USB stick) into the store."""
        validate_name(name)
        if labels_file is not None and not labels_file.is_file():
            raise InputError(f"labels file not found: {labels_file}")
        with self._staging_dir() as work:
            size, digest = copy_file(src, work / MODEL_FILE)
            if size == 0:
                raise ModelError(f"not a loadable ONNX model: {src.name}: the file is empty")
            meta: dict[str, Any] = {
                "sha256": digest,
                "size": size,
                "model_type": None if model_type in (None, "auto") else model_type,
                "labels": None,
                "source": "import",
                "origin": str(src),
            }
            return self._commit(name, work, meta, labels_file, str(src))

    def remove(self, name: str) -> None:
        """Delete a stored model."""
        self._meta(name)
        shutil.rmtree(self.root / name)

    def verify(self) -> list[VerifyResult]:
        """Re-check every stored model's size and checksum against its record."""
        results = []
        for name in self.names():
            try:
                model = self.get(name)
            except (ModelError, ModelStoreError, KeyError, ValueError) as exc:
                results.append(VerifyResult(name, False, f"bad record: {exc}"))
                continue
            if not model.path.is_file():
                results.append(VerifyResult(name, False, "model file missing"))
                continue
            digest = sha256_file(model.path)
            if digest != model.sha256:
                results.append(
                    VerifyResult(
                        name,
                        False,
                        f"checksum mismatch: recorded {model.sha256[:12]}…, now {digest[:12]}…",
                    )
                )
            else:
                results.append(VerifyResult(name, True, f"sha256 {digest[:12]}… ok"))
        return results
