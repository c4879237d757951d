"""The catalog of known public detectors (``gateway/modelstore/catalog.toml``)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config.settings import format_validation_error
from gateway.errors import ConfigError


class CatalogEntry(BaseModel):
    """One public detector the store knows how to fetch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str = Field(pattern=r"^(https?|file)://")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(default=None, gt=0)
    model_type: Literal["yolox", "yolo", "ssd"]
    input_size: int = Field(gt=0)
    labels: str = "coco80"
    license: str
    source: Literal["onnx", "export"] = "onnx"
    notes: str = ""


def default_catalog_path() -> Path:
    """The catalog shipped with the package."""
    return Path(str(resources.files("gateway.modelstore").joinpath("catalog.toml")))


def load_catalog(path: Path | None = None) -> dict[str, CatalogEntry]:
    """Read and validate a catalog; the shipped one when ``path`` is ``None``."""
    path = path or default_catalog_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"model catalog not found: {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read model catalog {path}: {exc}") from exc
    entries: dict[str, CatalogEntry] = {}
    problems: list[str] = []
    for name, fields in data.items():
        try:
            entries[name] = CatalogEntry(name=name, **fields)
        except ValidationError as exc:
            problems += [f"{name}.{line}" for line in format_validation_error(exc)]
        except TypeError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ConfigError(f"{path}: invalid catalog entries", problems)
    return entries
