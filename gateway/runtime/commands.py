"""Commands over MQTT: ``{base}/cmd/<name>`` with correlated replies.

A command is a JSON object. Before anything runs, the unit's :class:`Authorizer`
decides (``[security]``): normally only a trusted operator's signed command is
obeyed (:mod:`gateway.security.signing`), a read-only operator runs only
:data:`READ_ONLY_COMMANDS`, and every obeyed command is recorded through ``audit``
(who, what, when). The reply goes to the MQTT v5 response topic (with the request's
correlation data), else to the payload's ``reply_to`` (with its ``correlation``
copied), else to the default: with signed commands the requested topic must lie in
the caller's own reply space ``{base}/reply/<caller>/`` (default
``{base}/reply/<caller>/<name>``); with unsigned commands the default is
``{base}/reply/<name>``. Malformed, unauthorized or unknown commands get
``{"ok": false, "error": ...}`` and change nothing. Commands run one at a time on
their own thread; the queue in front of it is bounded.

The handler is given what it works with (the link for replies, the topics, a camera
lookup, the settings getter and ``apply_settings``), not the gateway that owns them.
Every command runs through :meth:`CommandHandler.dispatch`, the one place that looks a
command up in the explicit :attr:`CommandHandler.registry`.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from paho.mqtt.properties import Properties

from gateway.config.settings import GatewaySettings
from gateway.errors import ConfigError, GatewayError
from gateway.events.topics import Topics
from gateway.jsontypes import JsonObject, JsonValue
from gateway.redaction import redact_settings
from gateway.runtime.live_settings import ApplyResult, MergePatch, SettingsChange
from gateway.security.authorize import Authorizer, claimed_signer, leaf_paths
from gateway.security.signing import Caller, CommandRefusedError
from gateway.sources.frame import Frame
from gateway.transport.mqtt import Incoming, reply_properties

log = logging.getLogger(__name__)

QUEUE_SIZE = 32
MAX_COMMAND_BYTES = 256 * 1024
# What an operator with the read-only role may run.
READ_ONLY_COMMANDS = frozenset({"get_config"})
# Settings set_config never changes: the unit's identity (bound to its certificate)
# and its command policy.
ENROLLED_SETTINGS = ("security", "gateway.id", "gateway.site", "mqtt.topic_prefix")
MAX_TRUST_PEM = 64 * 1024
_AUDIT_ITEMS = 200  # the schema's bound on an audit event's lists


class CommandError(GatewayError):
    """A command that cannot be carried out; its message is the error reply."""


def _not_json(constant: str) -> float:
    """Python's JSON reader takes ``NaN`` and ``Infinity``; JSON (RFC 8259) does not."""
    raise json.JSONDecodeError(f"{constant} is not a JSON number", constant, 0)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError(f"number {text} is out of range", text, 0)
    return value


class ReplyLink(Protocol):
    """What commands need of the MQTT link: publishing and the protocol version."""

    @property
    def protocol(self) -> Literal["5", "3.1.1"] | None:
        """The protocol of the current connection."""

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> tuple[int, int] | None:
        """Publish; ``None`` when not connected."""


class CommandCamera(Protocol):
    """What commands need of a running camera."""

    def latest_frame(self) -> Frame | None:
        """The most recently processed frame."""

    def restart(self) -> None:
        """Reconnect the camera from scratch."""


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One parsed command, ready to run."""

    name: str
    args: JsonObject
    caller: Caller | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One command the unit obeyed: who, what, when, and how it ended."""

    command: str
    caller: Caller | None
    ok: bool
    error: str | None
    details: JsonObject


Command = Callable[[JsonObject], Any]


@dataclass(slots=True)
class Reply:
    """The answer to one command: ``ok`` with a ``result``, or an ``error`` (and problems)."""

    command: str
    ok: bool = False
    result: JsonValue = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    correlation: tuple[JsonValue] | None = None
    """The request's ``correlation`` (a 1-tuple: ``null`` is a value), copied back."""

    def to_json(self) -> JsonObject:
        """The reply's JSON object."""
        out: JsonObject = {"ok": self.ok, "command": self.command}
        if self.correlation is not None:
            out["correlation"] = self.correlation[0]
        if self.ok:
            out["result"] = self.result
        else:
            out["error"] = self.error
            if self.problems:
                out["problems"] = self.problems
        return out


class CommandHandler:
    """Parses, runs and answers the commands of one gateway."""

    def __init__(
        self,
        *,
        link: ReplyLink,
        topics: Topics,
        cameras: Mapping[str, CommandCamera],
        settings: Callable[[], GatewaySettings],
        apply_settings: Callable[[SettingsChange], ApplyResult],
        authorizer: Authorizer,
        audit: Callable[[AuditRecord], None] | None = None,
    ) -> None:
        """Answer through ``link``; ``cameras`` is a live view of the running cameras."""
        self.authorizer = authorizer
        self.audit = audit
        self.link = link
        self.topics = topics
        self.cameras = cameras
        self.settings = settings
        self.apply_settings = apply_settings
        self.rejected = 0
        self.handled = 0
        self._queue: queue.Queue[Incoming | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self.registry: dict[str, Command] = {
            "get_config": self.get_config,
            "set_config": self.set_config,
            "snapshot": self.snapshot,
            "restart_pipeline": self.restart_pipeline,
            "set_trust": self.set_trust,
        }

    def submit(self, msg: Incoming) -> None:
        """Queue a received command (network thread: never blocks)."""
        try:
            self._queue.put_nowait(msg)
        except queue.Full:
            self.rejected += 1
            log.warning("command queue full: %s ignored", msg.topic)

    def start(self) -> None:
        """Start the command thread."""
        self._thread = threading.Thread(target=self._run, name="commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the command thread after the command in progress."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(30.0)
            self._thread = None

    def _run(self) -> None:
        while (msg := self._queue.get()) is not None:
            try:
                topic, body, props = self.handle(msg)
                if self.link.publish(topic, body, qos=1, properties=props) is None:
                    log.warning("reply to %s not sent: not connected", msg.topic)
            except Exception:
                log.exception("command %s failed", msg.topic)

    # -- parsing and replies ---------------------------------------------------------

    def handle(self, msg: Incoming) -> tuple[str, bytes, Properties | None]:
        """Run one command; return the reply's topic, payload and MQTT properties."""
        name = msg.topic.rsplit("/", 1)[-1]
        reply = Reply(name)
        signed = self.authorizer.signed
        # Until the caller is known the reply goes where the sender cannot choose.
        topic = self.topics.reply(name) if signed else msg.response_topic or self.topics.reply(name)
        request: CommandRequest | None = None
        try:
            args = self._parse(msg.payload)
            if "correlation" in args:
                reply.correlation = (args["correlation"],)
            claimed = claimed_signer(args) if signed else None
            if claimed is not None:  # not verified yet: only that operator can read it
                topic = self._in_space(msg, args.get("reply_to"), claimed) or (
                    self.topics.caller_reply(claimed, name)
                )
            caller, args = self.authorizer.authorize(name, args)
            args.pop("correlation", None)
            topic = self._reply_topic(msg, args.pop("reply_to", None), caller, topic)
            request = CommandRequest(name, args, caller)
            reply.result = self.dispatch(request)
            reply.ok = True
            self.handled += 1
        except (CommandError, ConfigError, CommandRefusedError) as exc:
            reply.error = str(exc)
            reply.problems = list(getattr(exc, "problems", None) or [])
        except GatewayError as exc:
            reply.error = f"{name} failed: {exc}"
        except Exception as exc:  # a failing command still gets its reply
            log.exception("command %s failed", name)
            reply.error = f"{name} failed: internal error ({type(exc).__name__})"
        if not reply.ok:
            self.rejected += 1
            log.warning("command %s rejected: %s", name, reply.error)
        if request is not None:
            self._audit(request, reply)
        body = json.dumps(reply.to_json(), separators=(",", ":")).encode()
        props = reply_properties(msg.correlation_data) if self.link.protocol == "5" else None
        return topic, body, props

    def _reply_topic(
        self, msg: Incoming, reply_to: object, caller: Caller | None, default: str
    ) -> str:
        """Where the reply goes: the requested topic when it is allowed, else ``default``."""
        requested = msg.response_topic
        if requested is None and reply_to is not None:
            if not isinstance(reply_to, str) or not reply_to or any(c in reply_to for c in "#+\0"):
                raise CommandError("reply_to must be a topic name without wildcards")
            requested = reply_to
        if not self.authorizer.signed:
            return requested or default
        if caller is None:  # pragma: no cover - a signed policy always names the caller
            raise CommandError("no caller")
        if requested is None:
            return self.topics.caller_reply(caller.name, msg.topic.rsplit("/", 1)[-1])
        if self._in_space(msg, reply_to, caller.name) is None:
            space = self.topics.caller_reply(caller.name, "")
            raise CommandRefusedError(
                f"refused: replies go only under {space} (the caller's own reply space)"
            )
        return requested

    def _in_space(self, msg: Incoming, reply_to: object, caller: str) -> str | None:
        """The requested reply topic when it lies in ``caller``'s reply space, else ``None``."""
        requested = msg.response_topic or reply_to
        space = self.topics.caller_reply(caller, "")
        if (
            isinstance(requested, str)
            and requested.startswith(space)
            and requested != space
            and not any(c in requested for c in "#+\0")
        ):
            return requested
        return None

    def _audit(self, request: CommandRequest, reply: Reply) -> None:
        if self.audit is None:
            return
        try:  # the reply must still go out, whatever the arguments look like
            details: JsonObject = {}
            if request.name == "set_config":
                paths = sorted(p[:200] for p in leaf_paths(request.args.get("patch")))
                details["patch_paths"] = paths[:_AUDIT_ITEMS]
            elif request.name == "set_trust" and reply.ok and isinstance(reply.result, Mapping):
                trusted = reply.result.get("trusted")
                if isinstance(trusted, list):
                    details["trusted"] = trusted[:_AUDIT_ITEMS]
            elif "camera" in request.args:
                details["camera"] = str(request.args["camera"])[:64]
            self.audit(AuditRecord(request.name, request.caller, reply.ok, reply.error, details))
        except Exception:
            log.exception("could not record the audit event of %s", request.name)

    def dispatch(self, request: CommandRequest) -> Any:
        """Run one parsed command: the single place every command goes through."""
        command = self.registry.get(request.name)
        if command is None:
            known = ", ".join(sorted(self.registry))
            raise CommandError(f"unknown command {request.name!r} (known: {known})")
        caller = request.caller
        if caller is not None and caller.role != "admin" and request.name not in READ_ONLY_COMMANDS:
            allowed = ", ".join(sorted(READ_ONLY_COMMANDS))
            raise CommandRefusedError(
                f"refused: {caller.name} has the {caller.role} role (it may run: {allowed})"
            )
        return command(request.args)

    @staticmethod
    def _parse(payload: bytes) -> JsonObject:
        if len(payload) > MAX_COMMAND_BYTES:
            raise CommandError(f"command larger than {MAX_COMMAND_BYTES} bytes")
        if not payload.strip():
            return {}
        try:
            args = json.loads(payload, parse_constant=_not_json, parse_float=_finite)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"payload is not JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise CommandError("payload must be a JSON object")
        return args

    @staticmethod
    def _only(args: JsonObject, *allowed: str) -> None:
        extra = sorted(set(args) - set(allowed))
        if extra:
            raise CommandError(f"unknown argument(s): {', '.join(extra)}")

    def _camera(self, args: JsonObject) -> tuple[str, CommandCamera]:
        self._only(args, "camera")
        cam_id = args.get("camera")
        if not isinstance(cam_id, str):
            raise CommandError("argument 'camera' (a camera id) is required")
        runner = self.cameras.get(cam_id)
        if runner is None:
            known = ", ".join(sorted(self.cameras)) or "none running"
            raise CommandError(f"unknown camera {cam_id!r} (running: {known})")
        return cam_id, runner

    # -- the commands ----------------------------------------------------------------

    def get_config(self, args: JsonObject) -> Any:
        """Return the running settings with secrets and URL credentials redacted."""
        self._only(args)
        return redact_settings(self.settings())

    def set_config(self, args: JsonObject) -> Any:
        """Validate and persist a merge patch, then apply what can change live."""
        self._only(args, "patch")
        patch = args.get("patch")
        if not isinstance(patch, dict) or not patch:
            raise CommandError("argument 'patch' (a non-empty JSON merge patch object) is required")
        fixed = sorted(p for p in leaf_paths(patch) if p.startswith(ENROLLED_SETTINGS))
        if fixed:
            raise CommandRefusedError(
                f"refused: {', '.join(fixed)} can change only by enrollment on the unit "
                "(gateway enroll): who the unit is and whom it obeys are not remote settings"
            )
        return self.apply_settings(MergePatch(patch)).to_json()

    def snapshot(self, args: JsonObject) -> Any:
        """Publish one JPEG of a camera's latest frame (only when snapshots are enabled)."""
        if not self.settings().events.snapshots:
            raise CommandError("snapshots are disabled (set [events] snapshots = true)")
        cam_id, runner = self._camera(args)
        frame = runner.latest_frame()
        if frame is None:
            raise CommandError(f"camera {cam_id!r} has no frame yet")
        from gateway.vision.jpeg import encode_jpeg

        max_width = self.settings().events.snapshot_max_width
        jpeg = encode_jpeg(frame.image, quality=80, max_width=max_width)
        topic = self.topics.snapshot(cam_id)
        if self.link.publish(topic, jpeg, qos=1) is None:
            raise CommandError("not connected")
        return {"topic": topic, "bytes": len(jpeg)}

    def set_trust(self, args: JsonObject) -> Any:
        """Replace the trusted operators: PEM certificates of the fleet CA, an admin among them."""
        self._only(args, "operators")
        pem = args.get("operators")
        if not isinstance(pem, str) or not pem.strip() or len(pem) > MAX_TRUST_PEM:
            raise CommandError(
                f"argument 'operators' (PEM operator certificates, at most {MAX_TRUST_PEM} "
                "bytes) is required"
            )
        return {"trusted": self.authorizer.set_trust(pem)}

    def restart_pipeline(self, args: JsonObject) -> Any:
        """Restart one camera's capture and pipeline."""
        cam_id, runner = self._camera(args)
        runner.restart()
        return {"camera": cam_id}
