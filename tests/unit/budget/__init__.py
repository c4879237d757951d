"""Unit tests of ``gateway.budget``."""
