"""Integration tests: real Mosquitto, VictoriaMetrics, VLC RTSP, ptys and socat, child processes."""
