"""MQTT topic layout: ``{prefix}/{site}/{gateway}/{kind}/...``.

=====================================================  =====================================
topic                                                  what
=====================================================  =====================================
``{prefix}/{site}/{gw}/events/{source}/{type}``        camera events (QoS 1, from the outbox)
``{prefix}/{site}/{gw}/sensors/{sensor}``              ``sensor_reading`` events
``{prefix}/{site}/{gw}/health``                        ``health`` events
``{prefix}/{site}/{gw}/status``                        ``availability``, retained, last will
``{prefix}/{site}/{gw}/cmd/{name}``                    commands to the gateway
``{prefix}/{site}/{gw}/reply/{caller}/...``            replies to a signed command's caller
``{prefix}/{site}/{gw}/reply/{name}``                  replies without a known caller
``{prefix}/{site}/{gw}/snapshot/{camera}``             JPEG snapshots (opt-in)
``{prefix}/{site}/{gw}/batch``                         compact batches of bulk events (opt-in)
``{prefix}/central/capabilities/{consumer}``           what a central consumer reads (retained)
=====================================================  =====================================

``prefix`` may itself have several levels (``city/east``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.events.envelope import Draft

KINDS = ("events", "sensors", "health", "status", "cmd", "reply", "snapshot", "batch")


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one gateway."""

    prefix: str
    site: str
    gateway: str

    @property
    def base(self) -> str:
        """``{prefix}/{site}/{gateway}``."""
        return f"{self.prefix}/{self.site}/{self.gateway}"

    def event(self, source: str, event_type: str) -> str:
        """Where a camera event of ``source`` and ``event_type`` goes."""
        return f"{self.base}/events/{source}/{event_type}"

    def sensor(self, sensor_id: str) -> str:
        """Where readings of ``sensor_id`` go."""
        return f"{self.base}/sensors/{sensor_id}"

    @property
    def health(self) -> str:
        """Health events."""
        return f"{self.base}/health"

    @property
    def status(self) -> str:
        """Retained availability (``online`` / ``offline``), also the last will."""
        return f"{self.base}/status"

    def command(self, name: str) -> str:
        """Where command ``name`` is sent."""
        return f"{self.base}/cmd/{name}"

    @property
    def commands(self) -> str:
        """The filter the gateway subscribes to for its commands."""
        return f"{self.base}/cmd/+"

    def reply(self, name: str) -> str:
        """Default reply topic of command ``name`` (no response topic nor ``reply_to``)."""
        return f"{self.base}/reply/{name}"

    def caller_reply(self, caller: str, name: str) -> str:
        """Reply topic of command ``name`` sent by ``caller`` (its own reply space)."""
        return f"{self.base}/reply/{caller}/{name}"

    def snapshot(self, camera_id: str) -> str:
        """Where a JPEG snapshot of ``camera_id`` goes."""
        return f"{self.base}/snapshot/{camera_id}"

    @property
    def batch(self) -> str:
        """Compact batches of bulk-lane events (:mod:`gateway.events.batch`)."""
        return f"{self.base}/batch"

    def for_draft(self, draft: Draft) -> str:
        """Return the topic an event is published on, from its type and source."""
        if draft.type == "sensor_reading":
            return self.sensor(draft.source)
        if draft.type == "health":
            return self.health
        if draft.type == "availability":
            return self.status
        return self.event(draft.source, draft.type)


def event_type_of(base: str, topic: str) -> str | None:
    """The event type of ``topic`` if it is an event or sensor topic of gateway ``base``.

    ``base`` is ``{prefix}/{site}/{gw}``; None for any other topic.
    """
    if not topic.startswith(base) or topic[len(base) : len(base) + 1] != "/":
        return None
    rest = topic[len(base) + 1 :]
    if rest.startswith("sensors/") and rest.count("/") == 1:
        return "sensor_reading"
    if rest.startswith("events/") and rest.count("/") == 2:
        return rest.rsplit("/", 1)[1]
    return None


def _filter(prefix: str, site: str, gateway: str, tail: str) -> str:
    return f"{prefix}/{site}/{gateway}/{tail}"


def events_filter(prefix: str, site: str = "+", gateway: str = "+") -> str:
    """Subscription filter for camera events (``+`` wildcards by default)."""
    return _filter(prefix, site, gateway, "events/#")


def sensors_filter(prefix: str, site: str = "+", gateway: str = "+") -> str:
    """Subscription filter for sensor readings."""
    return _filter(prefix, site, gateway, "sensors/#")


def health_filter(prefix: str, site: str = "+", gateway: str = "+") -> str:
    """Subscription filter for health events."""
    return _filter(prefix, site, gateway, "health")


def status_filter(prefix: str, site: str = "+", gateway: str = "+") -> str:
    """Subscription filter for availability."""
    return _filter(prefix, site, gateway, "status")


def batch_filter(prefix: str, site: str = "+", gateway: str = "+") -> str:
    """Subscription filter for compact batches."""
    return _filter(prefix, site, gateway, "batch")


def data_filters(prefix: str, site: str = "+", gateway: str = "+") -> list[str]:
    """Every filter an ingest worker needs: events, sensors, health, status and batches."""
    return [
        events_filter(prefix, site, gateway),
        sensors_filter(prefix, site, gateway),
        health_filter(prefix, site, gateway),
        status_filter(prefix, site, gateway),
        batch_filter(prefix, site, gateway),
    ]


CAPABILITIES_LEVELS = ("central", "capabilities")


def capabilities_topic(prefix: str, consumer: str) -> str:
    """Where central consumer ``consumer`` declares what it reads (retained).

    Three levels under the prefix whose last is never a topic kind: no gateway's
    topic (``{prefix}/{site}/{gw}/{kind}/...``) can be one.
    """
    return f"{prefix}/{'/'.join(CAPABILITIES_LEVELS)}/{consumer}"


def capabilities_filter(prefix: str) -> str:
    """The filter a gateway subscribes to for every central consumer's declaration."""
    return capabilities_topic(prefix, "+")


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A parsed gateway topic."""

    site: str
    gateway: str
    kind: str
    rest: tuple[str, ...]


def parse_topic(prefix: str, topic: str) -> TopicInfo | None:
    """Split ``topic`` under ``prefix``; ``None`` when it is not a gateway topic."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) < 3 or parts[2] not in KINDS or not parts[0] or not parts[1]:
        return None
    return TopicInfo(site=parts[0], gateway=parts[1], kind=parts[2], rest=tuple(parts[3:]))
