"""Helpers shared by the tests: builders, clients, polling, child processes."""
