"""Analytics over tracked detections: lines, zones, speed and alerts."""
