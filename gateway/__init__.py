"""Roadside Gateway: an edge gateway for smart-city roadside units."""

__version__ = "0.1.0"
