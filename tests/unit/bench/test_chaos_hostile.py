"""The rogue client's record of what it sent, also while the broker is away."""

from __future__ import annotations

from gateway.bench.chaos.hostile import HostileClient
from gateway.localservers import free_port


def test_a_burst_into_an_absent_broker_is_recorded_as_sent_and_unanswered() -> None:
    rogue = HostileClient(free_port(), "chaos/rogue", "pw", "city", "chaos")  # nobody listens
    sent = rogue.poison(3) + rogue.huge()
    assert [s.reason for s in sent] == [None] * 4
    assert rogue.sent == sent  # the campaign's figures count them
    assert [s.kind for s in rogue.sent][-1] == "over_packet_limit"
