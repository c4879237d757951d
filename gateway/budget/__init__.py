"""The unit's byte budget: measured usage, the degradation level, the event gate."""
