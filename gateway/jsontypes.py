"""The type of JSON values: what events, command replies and config documents are made of."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
"""A value JSON can carry (read-only views: a ``dict[str, int]`` is one)."""
JsonObject: TypeAlias = dict[str, JsonValue]
"""A JSON object being built."""
