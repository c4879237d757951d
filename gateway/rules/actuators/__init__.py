"""Actuators: one module per output kind, selected by the registry."""
