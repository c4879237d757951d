"""Training and evaluation of the demo detector (needs the ``train`` extra: torch)."""
