"""Unit tests of ``simulators``."""
