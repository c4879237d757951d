"""Benchmarks: commands that print figures (and JSON), each next to its raw baseline."""
