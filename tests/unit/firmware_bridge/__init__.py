"""Unit tests of ``firmware_bridge``."""
