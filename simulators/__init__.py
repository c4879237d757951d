"""Simulators that stand in for physical devices: cameras, serial sensors, sensor boards, fleets."""
