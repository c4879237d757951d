"""On-device vision: detection, tracking and analytics."""
