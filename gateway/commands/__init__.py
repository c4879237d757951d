"""CLI command groups, one module each; :mod:`gateway.cli` registers them explicitly."""
