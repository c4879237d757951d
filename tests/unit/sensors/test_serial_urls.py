"""pyserial URLs: a sensor behind a TCP serial server (socket://) that drops and returns."""

from __future__ import annotations

import socket
import threading
import time

from gateway.config.sensors import SensorConfig
from gateway.sensors import nmea
from gateway.sensors.types import Reading
from gateway.serialports.reader import SensorReader
from tests.support.polling import wait_until

GGA = nmea.sentence("GPGGA,101010,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")


class SerialServer:
    """A TCP serial-device server (like ser2net) sending GGA sentences to each client."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.drop = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                while not self.stop.is_set() and not self.drop.is_set():
                    try:
                        conn.sendall(GGA)
                    except OSError:
                        break
                    time.sleep(0.05)
            self.drop.clear()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_socket_url_reconnects_after_drop() -> None:
    server = SerialServer()
    got: list[Reading] = []
    cfg = SensorConfig(
        id="gps", protocol="nmea", port=f"socket://127.0.0.1:{server.port}", reopen_max_s=0.3
    )
    reader = SensorReader(cfg, got.append)
    reader.start()
    try:
        wait_until(lambda: len(got) >= 3, what="readings")
        server.drop.set()  # the serial server drops the connection
        wait_until(lambda: int(reader.health().counters()["reopens"]) >= 1, what="re-connect")
        before = len(got)
        wait_until(lambda: len(got) >= before + 3, what="readings after re-connect")
    finally:
        reader.stop()
        server.close()
    assert server.connections >= 2
    assert got[-1].values["satellites"] == 8
