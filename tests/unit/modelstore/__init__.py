"""Unit tests of ``gateway.modelstore``."""
