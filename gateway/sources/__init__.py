"""Camera sources: files, network cameras, USB, GStreamer and the simulator."""
