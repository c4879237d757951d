"""System metrics and uptime for the ``health`` event."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil

from gateway.health import SystemHealth

_THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature_c() -> float | None:
    """Return the CPU temperature when readable (psutil sensors or the first thermal zone)."""
    with contextlib.suppress(AttributeError, OSError):
        readings = psutil.sensors_temperatures()
        for name in ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "cpu-thermal"):
            if readings.get(name):
                return round(float(readings[name][0].current), 1)
        for entries in readings.values():
            if entries:
                return round(float(entries[0].current), 1)
    with contextlib.suppress(OSError, ValueError):
        return round(int(_THERMAL.read_text().strip()) / 1000.0, 1)
    return None


class SystemMetrics:
    """CPU, load, temperature, memory and free disk of the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        psutil.cpu_percent(interval=None)  # prime: the next call measures since now

    def sample(self) -> SystemHealth:
        """Return one sample of the machine."""
        mem = psutil.virtual_memory()
        try:
            disk_free = psutil.disk_usage(str(self._existing_dir())).free
        except OSError:
            disk_free = 0
        return SystemHealth(
            cpu_percent=round(float(psutil.cpu_percent(interval=None)), 1),
            load_1m=round(os.getloadavg()[0], 2),
            cpu_temp_c=cpu_temperature_c(),
            mem_used_bytes=int(mem.total - mem.available),
            mem_total_bytes=int(mem.total),
            mem_percent=round(float(mem.percent), 1),
            disk_free_bytes=int(disk_free),
        )

    def _existing_dir(self) -> Path:
        path = self.data_dir
        while not path.exists() and path != path.parent:
            path = path.parent
        return path


class Uptime:
    """Seconds since construction (monotonic)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self) -> float:
        """Return the uptime in seconds."""
        return time.monotonic() - self._start
