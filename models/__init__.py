"""Model catalog (``catalog.toml``), the demo detector and its training script."""
