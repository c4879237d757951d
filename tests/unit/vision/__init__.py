"""Unit tests of ``gateway.vision``."""
