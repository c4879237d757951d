"""Checks of NGSI-LD entities against the project's schemas written from the data models."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

ENTITY_TYPES = ("TrafficFlowObserved", "AirQualityObserved")


@cache
def _validator(entity_type: str) -> Draft202012Validator:
    text = resources.files("gateway.ngsi.schema").joinpath(f"{entity_type}.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def entity_problems(entity: Any) -> list[str]:
    """Every violation as ``path: message`` (empty when valid)."""
    kind = entity.get("type") if isinstance(entity, dict) else None
    if kind not in ENTITY_TYPES:
        return [f"type: expected one of {', '.join(ENTITY_TYPES)}, got {kind!r}"]
    problems = []
    for error in sorted(_validator(kind).iter_errors(entity), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in error.absolute_path) or "(entity)"
        problems.append(f"{path}: {error.message}")
    return problems
