"""Unit tests of ``gateway.security``."""
