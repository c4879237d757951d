"""Stopping on signals: services stop in order on SIGTERM or SIGINT, handlers restored after."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from gateway.interrupt import stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_sets_the_event_and_the_old_handlers_come_back(sig: signal.Signals) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), sig)
        assert stop.wait(5)
    assert {s: signal.getsignal(s) for s in before} == before


def test_off_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def run() -> None:
        with stop_on_signals() as stop:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(stop.is_set())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert seen == [before, False]
