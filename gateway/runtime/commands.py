"""Commands over MQTT: ``{base}/cmd/<name>`` with correlated replies.

A command is a JSON object. The reply goes to the MQTT v5 response topic (with the
request's correlation data), else to the payload's ``reply_to`` (with its
``correlation`` copied), else to ``{base}/reply/<name>``. Malformed or unknown
commands get ``{"ok": false, "error": ...}`` and change nothing. Commands run one at
a time on their own thread; the queue in front of it is bounded.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, GatewayError
from gateway.runtime.config_patch import classify, patched_settings, to_toml, write_atomically
from gateway.transport.mqtt import Incoming, reply_properties

if TYPE_CHECKING:
    from gateway.app import App

log = logging.getLogger(__name__)

QUEUE_SIZE = 32
MAX_COMMAND_BYTES = 256 * 1024


class CommandError(GatewayError):
    """A command that cannot be carried out; its message is the error reply."""


class CommandHandler:
    """Parses, runs and answers commands for one :class:`~gateway.app.App`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.rejected = 0
        self.handled = 0
        self._queue: queue.Queue[Incoming | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self.registry: dict[str, Callable[[dict[str, Any]], Any]] = {
            "get_config": self.get_config,
            "set_config": self.set_config,
            "snapshot": self.snapshot,
            "restart_pipeline": self.restart_pipeline,
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
                if self.app.link.publish(topic, body, qos=1, properties=props) is None:
                    log.warning("reply to %s not sent: not connected", msg.topic)
            except Exception:
                log.exception("command %s failed", msg.topic)

    # -- parsing and replies ---------------------------------------------------------

    def handle(self, msg: Incoming) -> tuple[str, bytes, Any]:
        """Run one command; return the reply's topic, payload and MQTT properties."""
        name = msg.topic.rsplit("/", 1)[-1]
        reply: dict[str, Any] = {"ok": False, "command": name}
        topic = msg.response_topic or self.app.topics.reply(name)
        args: dict[str, Any] = {}
        try:
            args = self._parse(msg.payload)
            reply_to = args.pop("reply_to", None)
            if "correlation" in args:
                reply["correlation"] = args.pop("correlation")
            if msg.response_topic is None and reply_to is not None:
                if (
                    not isinstance(reply_to, str)
                    or not reply_to
                    or any(c in reply_to for c in "#+\0")
                ):
                    raise CommandError("reply_to must be a topic name without wildcards")
                topic = reply_to
            command = self.registry.get(name)
            if command is None:
                known = ", ".join(sorted(self.registry))
                raise CommandError(f"unknown command {name!r} (known: {known})")
            reply["result"] = command(args)
            reply["ok"] = True
            self.handled += 1
        except (CommandError, ConfigError) as exc:
            reply["error"] = str(exc)
            problems = getattr(exc, "problems", None)
            if problems:
                reply["problems"] = problems
        except GatewayError as exc:
            reply["error"] = f"{name} failed: {exc}"
        if not reply["ok"]:
            self.rejected += 1
            log.warning("command %s rejected: %s", name, reply["error"])
        body = json.dumps(reply, separators=(",", ":")).encode()
        props = reply_properties(msg.correlation_data) if self.app.link.protocol == "5" else None
        return topic, body, props

    @staticmethod
    def _parse(payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_COMMAND_BYTES:
            raise CommandError(f"command larger than {MAX_COMMAND_BYTES} bytes")
        if not payload.strip():
            return {}
        try:
            args = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"payload is not JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise CommandError("payload must be a JSON object")
        return args

    @staticmethod
    def _only(args: dict[str, Any], *allowed: str) -> None:
        extra = sorted(set(args) - set(allowed))
        if extra:
            raise CommandError(f"unknown argument(s): {', '.join(extra)}")

    def _camera(self, args: dict[str, Any]) -> tuple[str, Any]:
        self._only(args, "camera")
        cam_id = args.get("camera")
        if not isinstance(cam_id, str):
            raise CommandError("argument 'camera' (a camera id) is required")
        runner = self.app.cameras.get(cam_id)
        if runner is None:
            known = ", ".join(sorted(self.app.cameras)) or "none running"
            raise CommandError(f"unknown camera {cam_id!r} (running: {known})")
        return cam_id, runner

    # -- the commands ----------------------------------------------------------------

    def get_config(self, args: dict[str, Any]) -> Any:
        """Return the running settings with secrets redacted."""
        self._only(args)
        return self.app.settings.model_dump(mode="json")

    def set_config(self, args: dict[str, Any]) -> Any:
        """Validate and persist a merge patch, then apply what can change live."""
        self._only(args, "patch")
        patch = args.get("patch")
        if not isinstance(patch, dict) or not patch:
            raise CommandError("argument 'patch' (a non-empty JSON merge patch object) is required")
        path = self.app.config_path
        if path is None:
            raise CommandError("the gateway runs without a config file: nothing to patch")
        data, new = patched_settings(path, patch)
        live, restart = classify(self.app.settings, new)
        write_atomically(path, to_toml(data))
        by_id = {c.id: c for c in new.cameras}
        for cam_id in live:
            if cam_id in self.app.cameras:
                self.app.replace_camera(by_id[cam_id])
        running = [by_id[c.id] if c.id in live else c for c in self.app.settings.cameras]
        self.app.settings = self.app.settings.model_copy(update={"cameras": running})
        result: dict[str, Any] = {"applied": live, "restart_required": restart}
        if restart:
            result["message"] = "restart required for: " + ", ".join(restart)
        return result

    def snapshot(self, args: dict[str, Any]) -> Any:
        """Publish one JPEG of a camera's latest frame (only when snapshots are enabled)."""
        if not self.app.settings.events.snapshots:
            raise CommandError("snapshots are disabled (set [events] snapshots = true)")
        cam_id, runner = self._camera(args)
        frame = runner.latest_frame()
        if frame is None:
            raise CommandError(f"camera {cam_id!r} has no frame yet")
        import cv2

        image = frame.image
        max_width = self.app.settings.events.snapshot_max_width
        if image.shape[1] > max_width:
            height = round(image.shape[0] * max_width / image.shape[1])
            image = cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise CommandError("JPEG encoding failed")
        topic = self.app.topics.snapshot(cam_id)
        if self.app.link.publish(topic, jpeg.tobytes(), qos=1) is None:
            raise CommandError("not connected")
        return {"topic": topic, "bytes": int(jpeg.size)}

    def restart_pipeline(self, args: dict[str, Any]) -> Any:
        """Restart one camera's capture and pipeline."""
        cam_id, runner = self._camera(args)
        runner.restart()
        return {"camera": cam_id}
