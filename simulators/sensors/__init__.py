"""Simulated serial sensors: realistic streams on pseudo-terminals, with fault injection."""
