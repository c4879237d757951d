"""Unit tests of ``gateway.events``."""
