"""Unit tests of ``gateway.transport``."""
