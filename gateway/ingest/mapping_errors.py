"""Errors of the event -> points mapping (reasons ``invalid_event``, ``out_of_range``)."""

from __future__ import annotations


class MappingError(ValueError):
    """A ``data`` value of the wrong type or missing."""


class OutOfRangeError(MappingError):
    """A number of the right type that no database field can hold."""
