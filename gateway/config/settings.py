"""The one settings model of the gateway, loaded from TOML with environment overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.config.budget import BudgetConfig
from gateway.config.common import Ident, StrictModel
from gateway.config.console import ConsoleConfig
from gateway.config.ingest import IngestConfig
from gateway.config.rules import UNION_TAGS, RuleConfig, check_references
from gateway.config.security import SecurityConfig
from gateway.config.sensors import SensorConfig
from gateway.config.sources import SOURCE_TYPES
from gateway.config.transport import EventsConfig, MqttConfig, OutboxConfig
from gateway.config.vision import CameraConfig, DetectorConfig
from gateway.errors import ConfigError


class GatewayIdentity(StrictModel):
    """Who this gateway is and where it keeps its state."""

    id: Ident = "rsu-0001"
    site: Ident = "default"
    data_dir: Path = Path("/var/lib/roadside-gateway")
    model_dir: Path | None = Field(default=None, description="Defaults to <data_dir>/models.")


class LoggingConfig(StrictModel):
    """Log level and format."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class GatewaySettings(BaseSettings):
    """Every setting of a roadside gateway (and of a central ingest worker).

    Values come from the TOML file; environment variables named
    ``GATEWAY_<SECTION>__<KEY>`` override them (``GATEWAY_MQTT__HOST=broker``).
    """

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        nested_model_default_partial_update=True,
    )

    gateway: GatewayIdentity = Field(default_factory=GatewayIdentity)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    sensors: list[SensorConfig] = Field(default_factory=list)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    rules: list[RuleConfig] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the file's values (passed as init arguments)."""
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_ids(self) -> GatewaySettings:
        for kind, ids in (
            ("cameras", [c.id for c in self.cameras]),
            ("sensors", [s.id for s in self.sensors]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _rule_references(self) -> GatewaySettings:
        problems = check_references(
            self.rules,
            {c.id: ({z.id for z in c.zones}, {ln.id for ln in c.lines}) for c in self.cameras},
            {s.id: (s.protocol, s.port) for s in self.sensors},
        )
        if problems:
            raise ValueError("\n".join(problems))  # one problem per line
        return self

    @property
    def model_dir(self) -> Path:
        """Where the model store lives."""
        return self.gateway.model_dir or self.gateway.data_dir / "models"


_SOURCE_TAGS = frozenset(SOURCE_TYPES)
# Discriminated-union fields and their tags (pydantic puts the tag into error locations).
_UNION_TAGS = {"source": _SOURCE_TAGS, **UNION_TAGS}


def format_loc(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``cameras[0].lines[1].points``.

    Discriminated-union tags (``source.file``) and validator wrappers are dropped.
    """
    out = ""
    field: str | None = None  # the latest named field (list indexes skipped)
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union[")):
            pass
        elif field is not None and part in _UNION_TAGS.get(field, ()):
            field = None
        else:
            out += f".{part}" if out else part
            field = part
    return out or "(top level)"


ENV_PREFIX = "GATEWAY_"
ENV_NESTED = "__"
ENV_MARK = " (environment variable, "


def env_source(loc: tuple[int | str, ...], environ: Mapping[str, str] | None = None) -> str | None:
    """The ``GATEWAY_*`` variable that set the field at ``loc``, if the environment did.

    pydantic-settings reads ``GATEWAY_MQTT__PORT`` for ``mqtt.port`` and a JSON value in
    ``GATEWAY_MQTT`` for the whole section (lists such as ``GATEWAY_CAMERAS`` only as a
    whole); names are case-insensitive.
    """
    env = {k.upper(): k for k in (os.environ if environ is None else environ)}
    keys: list[str] = []
    for part in loc:
        if not isinstance(part, str) or part.startswith(("function-", "tagged-union[")):
            break
        keys.append(part.upper())
    for depth in range(len(keys), 0, -1):
        name = ENV_PREFIX + ENV_NESTED.join(keys[:depth])
        if name in env:
            return env[name]
    return None


def format_validation_error(error: ValidationError, *, from_env: bool = False) -> list[str]:
    """One readable line per bad field: ``path: message``.

    With ``from_env``, a field the environment set is named by its variable first
    (``GATEWAY_MQTT__PORT (environment variable, mqtt.port): ...``): the file is not
    where the fix goes.
    """
    lines = []
    for item in error.errors(include_url=False):
        msg = item["msg"]
        msg = msg.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif item["type"] == "missing":
            msg = "required key is missing"
        loc = tuple(item["loc"])
        variable = env_source(loc) if from_env and loc else None
        if variable is not None:
            lines.append(f"{variable}{ENV_MARK}{format_loc(loc)}): {msg}")
        elif loc:
            lines.append(f"{format_loc(loc)}: {msg}")
        else:  # a model validator may report several problems, one per line
            lines += msg.splitlines()
    return lines


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax errors into :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def validate_settings(data: dict[str, Any], origin: str = "config") -> GatewaySettings:
    """Validate a settings dict (environment overrides applied on top)."""
    try:
        return GatewaySettings(**data)
    except ValidationError as exc:
        problems = format_validation_error(exc, from_env=True)
        from_env = sum(1 for p in problems if ENV_MARK in p)
        where = "the environment" if from_env == len(problems) else origin
        if 0 < from_env < len(problems):
            where += " and the environment"
        raise ConfigError(f"{where}: {len(problems)} invalid setting(s)", problems) from exc


def load_settings(path: Path | None) -> GatewaySettings:
    """Load settings from ``path`` (or defaults and environment only when ``None``)."""
    data = read_toml(path) if path is not None else {}
    return validate_settings(data, str(path) if path is not None else "config")
