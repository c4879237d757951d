"""The [mqtt] trial: the last good config waits beside the file and comes back after a power cut.

The real broker cases (a bad port rolled back, a good change kept) are in
tests/integration/test_signed_commands.py; these drive :class:`ConnectionGate` with a link double to
pin down the file states during and after a trial.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import load_settings
from gateway.config.transport import MqttConfig
from gateway.errors import TransportError
from gateway.runtime.link_gate import ConnectionGate, last_good_path, recover_interrupted_trial
from gateway.runtime.live_settings import LiveSettings, MergePatch
from tests.support.transport import write_config

GOOD_PORT = 18830


class _Link:
    """Reconnects when the port is the good one; records what the trial left on disk."""

    def __init__(self, cfg: MqttConfig, config: Path) -> None:
        self.cfg = cfg
        self.config = config
        self.connects = 1
        self.last_error: str | None = None
        self.connected = True
        self.saved_during_trial: list[bool] = []

    def reconfigure(self, cfg: MqttConfig) -> None:
        self.saved_during_trial.append(last_good_path(self.config).exists())
        self.cfg = cfg
        if cfg.port == GOOD_PORT:
            self.connects += 1
        else:
            self.last_error = f"cannot connect to 127.0.0.1:{cfg.port}: refused"


def gate_for(tmp_path: Path) -> tuple[ConnectionGate, _Link, Path]:
    path = write_config(tmp_path, GOOD_PORT)
    settings = load_settings(path)
    live = LiveSettings(settings, path, lambda _camera: None)
    link = _Link(settings.mqtt, path)
    return ConnectionGate(live, link, deadline_s=0.3), link, path


@pytest.mark.parametrize("port", [GOOD_PORT + 1, 1])
def test_the_last_good_file_waits_during_the_trial_and_goes_after_it(
    tmp_path: Path, port: int
) -> None:
    gate, link, path = gate_for(tmp_path)
    before = path.read_text()
    with pytest.raises(TransportError, match="last good config is restored"):
        gate.apply(MergePatch({"mqtt": {"port": port}}))
    # Kept while the new settings are tried; gone once the good file is back on disk.
    assert link.saved_during_trial == [True, False]
    assert not last_good_path(path).exists()
    assert load_settings(path).mqtt.port == GOOD_PORT
    assert path.read_text() == before


def test_a_kept_change_leaves_no_last_good_file(tmp_path: Path) -> None:
    gate, link, path = gate_for(tmp_path)
    result = gate.apply(MergePatch({"mqtt": {"keepalive_s": 20}}))
    assert "mqtt" in result.applied
    assert link.saved_during_trial == [True]
    assert not last_good_path(path).exists()


def test_a_power_cut_during_the_trial_is_undone_at_the_next_start(tmp_path: Path) -> None:
    path = write_config(tmp_path, GOOD_PORT)
    good = path.read_text()
    last_good_path(path).write_text(good)
    path.write_text(good.replace(f"port = {GOOD_PORT}", "port = 1"))  # the change on trial
    assert recover_interrupted_trial(path) is True
    assert path.read_text() == good and not last_good_path(path).exists()
    assert recover_interrupted_trial(path) is False  # nothing to do the next time
