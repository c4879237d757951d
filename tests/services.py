"""The local servers of the suite now live in :mod:`gateway.localservers`.

Kept so that tests written against the old place still import; import from
``gateway.localservers`` in new code.
"""

from gateway.localservers import (
    Mosquitto,
    Server,
    VictoriaMetrics,
    find_binary,
    free_port,
    wait_port,
)

__all__ = ["Mosquitto", "Server", "VictoriaMetrics", "find_binary", "free_port", "wait_port"]
