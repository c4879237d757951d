"""Unit tests of ``gateway.ngsi``."""
