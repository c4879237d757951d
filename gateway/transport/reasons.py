"""What the outbox does with each PUBACK reason code (MQTT v5).

A row leaves the outbox only when the broker has taken responsibility for it. Every
PUBACK carries a reason code (MQTT v5, section 3.4.2.1); this table decides, per
code, one of three outcomes:

* ``delivered``: the broker accepted it; the row is deleted.
* ``retry``: the broker refused it for a reason of its configuration or state (no
  subscriber yet, an ACL, a quota). The row is KEPT; its topic is held and retried
  with back-off (a probe first, then every kept row of the topic), and the refusal is
  alarmed (log, health). Nothing is lost while the operator fixes the cause; the
  outbox bounds still apply (and count what they drop).
* ``discard``: the broker refused the message itself (its size, its payload format);
  the same bytes will be refused again and, held, they would block their topic
  forever. The row is deleted and counted in a persistent loss counter
  (``lost_refused``) that the health event carries to the centre.

``no_subscribers`` (16) is the one code whose outcome a deployment may choose: the
default ``retry`` keeps events the broker delivered to no one (a central subscriber
that is reconnecting); ``accept`` treats it as delivered, for a broker whose consumers
are not MQTT subscribers (a rule engine or a bridge that does not subscribe), and
counts each such event in the persistent ``accepted_unsubscribed`` counter.

MQTT v3.1.1 has no reason codes: a PUBACK is always success, even when the broker
dropped the message (no subscriber, ACL). On v3.1.1 the deployment must give the
central subscriber a persistent session (the broker then queues for it) and allow
the unit's topics; the link warns once per connection that refusals are invisible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["delivered", "retry", "discard"]
NoSubscribers = Literal["retry", "accept"]

NO_MATCHING_SUBSCRIBERS = 16


@dataclass(frozen=True, slots=True)
class Reason:
    """One PUBACK reason code: its name and what the outbox does with it."""

    code: int
    name: str
    verdict: Verdict
    counter: str | None = None  # the persistent counter a discarded row advances


PUBACK: dict[int, Reason] = {
    r.code: r
    for r in (
        Reason(0, "success", "delivered"),
        Reason(NO_MATCHING_SUBSCRIBERS, "no_matching_subscribers", "retry"),
        Reason(128, "unspecified_error", "retry"),
        Reason(131, "implementation_specific_error", "retry"),
        Reason(135, "not_authorized", "retry"),
        Reason(144, "topic_name_invalid", "retry"),
        Reason(145, "packet_identifier_in_use", "retry"),
        Reason(149, "packet_too_large", "discard", "lost_refused"),
        Reason(151, "quota_exceeded", "retry"),
        Reason(153, "payload_format_invalid", "discard", "lost_refused"),
    )
}


def classify(code: int, no_subscribers: NoSubscribers = "retry") -> Reason:
    """The outcome of PUBACK reason ``code``; unknown failure codes are retried."""
    if code == NO_MATCHING_SUBSCRIBERS and no_subscribers == "accept":
        return Reason(code, "no_matching_subscribers", "discard", "accepted_unsubscribed")
    known = PUBACK.get(code)
    if known is not None:
        return known
    if code < 128:  # a success code this table does not know (the spec has none)
        return Reason(code, f"success_{code}", "delivered")
    return Reason(code, f"refused_{code}", "retry")
