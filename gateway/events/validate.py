"""Validation of events against the published JSON Schema (draft 2020-12)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from gateway.errors import GatewayError


class InvalidEventError(GatewayError):
    """An object that is not a valid event; ``problems`` lists each violation."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


@cache
def load_schema(version: int = 1) -> dict[str, Any]:
    """Return the JSON Schema of event format ``version`` (from the package data)."""
    text = resources.files("gateway.events.schema").joinpath(f"v{version}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(version: int = 1) -> Draft202012Validator:
    schema = load_schema(version)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def event_problems(obj: object) -> list[str]:
    """Every schema violation of ``obj`` as ``path: message`` lines (empty when valid)."""
    problems = []
    for error in sorted(_validator().iter_errors(obj), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in error.absolute_path) or "(event)"
        problems.append(f"{path}: {error.message}")
    return problems


def validate_event(obj: object) -> dict[str, Any]:
    """Return ``obj`` when it is a valid event; raise :class:`InvalidEventError` otherwise."""
    problems = event_problems(obj)
    if problems:
        raise InvalidEventError(f"invalid event: {problems[0]}", problems)
    assert isinstance(obj, dict)
    return obj
