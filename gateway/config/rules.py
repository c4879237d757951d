"""Local rules: a trigger, conditions and the outputs it drives (``[[rules]]``).

A rule turns what the gateway sees (analytics alerts, zone occupancy and dwell, a
line's count rate, a sensor value) into output states on the pole (a Modbus relay or
sign register, a command to a sensor board, a local MQTT topic, a webhook, a GPIO line)
without any round trip to a central system. Every output names its three states:
``active`` (the rule fires), ``idle`` (it does not) and ``fail_safe`` (the gateway
stops, or the camera the rule depends on stalls). See ``docs/rules.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from gateway.config.common import Ident, StrictModel
from gateway.config.transport import MqttConfig

AlertKindName = Literal["stopped_vehicle", "pedestrian_in_roadway", "wrong_way", "over_capacity"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# -- triggers -----------------------------------------------------------------------------


class CameraTrigger(StrictModel):
    """A trigger fed by one camera's analytics."""

    camera: Ident = Field(description="The camera id whose analytics feed this trigger.")
    labels: list[str] = Field(default_factory=list, description="Empty: every class.")


class AlertTrigger(CameraTrigger):
    """An analytics alert of one kind: each alert fires the rule once (outputs hold)."""

    type: Literal["alert"]
    kind: AlertKindName
    zone: Ident | None = Field(default=None, description="Only alerts of this zone.")
    line: Ident | None = Field(default=None, description="Only alerts of this line.")


class ZoneOccupancyTrigger(CameraTrigger):
    """Active while at least ``min_count`` tracks (of ``labels``) are inside a zone."""

    type: Literal["zone_occupancy"]
    zone: Ident
    min_count: int = Field(default=1, ge=1, le=1024)


class ZoneDwellTrigger(CameraTrigger):
    """Active while a track (of ``labels``) has been inside a zone for ``dwell_s`` or more."""

    type: Literal["zone_dwell"]
    zone: Ident
    dwell_s: float = Field(gt=0, le=86400)


class LineRateTrigger(CameraTrigger):
    """Active while a line counted ``min_count`` or more crossings within ``window_s``."""

    type: Literal["line_rate"]
    line: Ident
    direction: Literal["left_to_right", "right_to_left"] | None = Field(
        default=None, description="Only crossings in this direction (default: both)."
    )
    min_count: int = Field(ge=1, le=10_000)
    window_s: float = Field(gt=0, le=3600)


class SensorTrigger(StrictModel):
    """Active while a sensor value is above (or below) a limit, with a clear margin."""

    type: Literal["sensor"]
    sensor: Ident
    value: str = Field(min_length=1, max_length=64, description="Reading value name: pm2_5, ...")
    above: float | None = None
    below: float | None = None
    clear_margin: float = Field(
        default=0.0, ge=0, description="Hysteresis: clears only this far back past the limit."
    )
    max_age_s: float = Field(
        default=60.0, gt=0, description="A value older than this no longer counts (stale)."
    )

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self


Trigger = Annotated[
    AlertTrigger | ZoneOccupancyTrigger | ZoneDwellTrigger | LineRateTrigger | SensorTrigger,
    Field(discriminator="type"),
]
TRIGGER_TYPES = frozenset({"alert", "zone_occupancy", "zone_dwell", "line_rate", "sensor"})


# -- conditions ---------------------------------------------------------------------------


class TimeWindow(StrictModel):
    """Local time of day (``HH:MM``, wrapping midnight when ``end`` < ``start``) and days."""

    start: str = Field(description="HH:MM, inclusive.")
    end: str = Field(description="HH:MM, exclusive.")
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"expected HH:MM (00:00 .. 23:59), got {value!r}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        if not self.days:
            raise ValueError("days: at least one day")
        return self

    def minutes(self) -> tuple[int, int]:
        """``start`` and ``end`` as minutes after midnight."""
        return _to_minutes(self.start), _to_minutes(self.end)


def _to_minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class Conditions(StrictModel):
    """When a trigger may fire the rule."""

    time_of_day: TimeWindow | None = None
    camera_ok: bool | None = Field(
        default=None,
        description=(
            "Camera triggers: fire only while the camera streams; otherwise the outputs "
            "go to their fail-safe state (default true for camera triggers)."
        ),
    )
    max_frame_age_s: float = Field(
        default=2.0, gt=0, le=600, description="A camera with no frame for this long is not ok."
    )
    min_duration_s: float = Field(
        default=0.0, ge=0, le=3600, description="The trigger must hold this long first."
    )


# -- actions ------------------------------------------------------------------------------


class OutputTiming(StrictModel):
    """What every output shares: flicker protection, timeouts and retries."""

    hold_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Minimum on-time: stays active this long after the rule last wanted it.",
    )
    min_off_s: float = Field(
        default=0.0, ge=0, le=3600, description="Once idle, stays idle at least this long."
    )
    max_changes_per_min: int = Field(
        default=30, ge=1, le=600, description="Rate limit; later changes are coalesced."
    )
    timeout_s: float = Field(default=1.0, gt=0, le=10, description="One write's time limit.")
    retry_max_s: float = Field(
        default=10.0, gt=0, le=600, description="Longest back-off between failed writes."
    )
    refresh_s: float | None = Field(
        default=None, gt=0, le=3600, description="Write the current state again this often."
    )


class ModbusLink(StrictModel):
    """A Modbus device: RTU over a serial port, or TCP."""

    transport: Literal["rtu", "tcp"] = "rtu"
    port: str | None = Field(default=None, description="RTU: serial device path or pyserial URL.")
    baud: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    host: str | None = Field(default=None, description="TCP: the device's address.")
    tcp_port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247, description="Device (unit/slave) id.")
    address: int = Field(ge=0, le=65535, description="Coil or register address (0-based).")

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.transport == "rtu" and not self.port:
            raise ValueError("transport 'rtu' needs a port")
        if self.transport == "tcp" and not self.host:
            raise ValueError("transport 'tcp' needs a host")
        return self

    def endpoint(self) -> str:
        """The connection this output uses (outputs on the same one share a client)."""
        if self.transport == "tcp":
            return f"tcp://{self.host}:{self.tcp_port}"
        return f"rtu://{self.port}"


class ModbusCoilAction(OutputTiming, ModbusLink):
    """Write a coil (function 05): a relay, a beacon."""

    type: Literal["modbus_coil"]
    active: bool = True
    idle: bool = False
    fail_safe: bool = Field(description="Coil state when the gateway stops or the camera stalls.")

    def target(self) -> str:
        """What this output writes (two rules may not write the same one)."""
        return f"{self.endpoint()}/unit{self.unit}/coil{self.address}"


U16 = Annotated[int, Field(ge=0, le=65535)]


class ModbusRegisterAction(OutputTiming, ModbusLink):
    """Write a holding register (function 06): a sign controller's message number."""

    type: Literal["modbus_register"]
    active: U16
    idle: U16
    fail_safe: U16 = Field(
        description="Register value when the gateway stops or the camera stalls."
    )

    def target(self) -> str:
        """What this output writes."""
        return f"{self.endpoint()}/unit{self.unit}/register{self.address}"


class BridgeAction(OutputTiming):
    """An OUTPUT_SET command to a sensor board over the firmware bridge (an rsb sensor)."""

    type: Literal["bridge"]
    sensor: Ident = Field(description="The [[sensors]] entry (protocol rsb) of the board's port.")
    node: int = Field(default=1, ge=0, le=255, description="Board node id.")
    output: int = Field(ge=0, le=255, description="Board output number.")
    active: float = 1.0
    idle: float = 0.0
    fail_safe: float = Field(description="Value the board applies on stop, stall or lease expiry.")
    lease_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description=(
            "The board falls back to fail_safe by itself unless the value is refreshed "
            "within this time (0: no lease). Refreshed every lease_s / 3."
        ),
    )

    def target(self) -> str:
        """What this output writes."""
        return f"bridge://{self.sensor}/node{self.node}/output{self.output}"


class MqttAction(OutputTiming):
    """A publish to a topic on a local broker (a sign controller or PLC on the pole)."""

    type: Literal["mqtt"]
    broker: MqttConfig = Field(default_factory=MqttConfig, description="The local broker.")
    topic: str = Field(pattern=r"^[^#+$][^#+]*$", max_length=256)
    qos: Literal[0, 1] = 1
    retain: bool = True
    active: str = "on"
    idle: str = "off"
    fail_safe: str = Field(description="Payload published on stop or stall.")

    def target(self) -> str:
        """What this output writes."""
        return f"mqtt://{self.broker.host}:{self.broker.port}/{self.topic}"


class WebhookAction(OutputTiming):
    """An HTTP POST/PUT of a JSON body ``{"rule", "state", "value", "ts", ...}``."""

    type: Literal["webhook"]
    url: AnyHttpUrl
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra request headers; kept secret (Authorization tokens) in get_config.",
    )
    retries: int = Field(default=3, ge=0, le=10, description="Attempts after the first one.")
    active: str = "active"
    idle: str = "idle"
    fail_safe: str = Field(description="The body's value on stop or stall.")

    def target(self) -> str:
        """What this output writes."""
        return f"{self.method} {self.url}"


class GpioAction(OutputTiming):
    """A Linux GPIO line through the character device (``/dev/gpiochipN``, uAPI v2)."""

    type: Literal["gpio"]
    chip: str = Field(default="/dev/gpiochip0", pattern=r"^/dev/gpiochip\d+$|^/")
    line: int = Field(ge=0, le=511, description="Line offset on the chip.")
    active_low: bool = False
    active: Literal[0, 1] = 1
    idle: Literal[0, 1] = 0
    fail_safe: Literal[0, 1] = Field(description="Line value on stop or stall.")

    def target(self) -> str:
        """What this output writes."""
        return f"gpio://{self.chip}/{self.line}"


Action = Annotated[
    ModbusCoilAction
    | ModbusRegisterAction
    | BridgeAction
    | MqttAction
    | WebhookAction
    | GpioAction,
    Field(discriminator="type"),
]
ACTION_TYPES = frozenset({"modbus_coil", "modbus_register", "bridge", "mqtt", "webhook", "gpio"})
CAMERA_TRIGGERS = (AlertTrigger, ZoneOccupancyTrigger, ZoneDwellTrigger, LineRateTrigger)


# -- the rule -----------------------------------------------------------------------------


class RuleConfig(StrictModel):
    """One local rule: when ``trigger`` holds under ``conditions``, drive ``actions``."""

    id: Ident
    enabled: bool = True
    description: str = Field(default="", max_length=200)
    trigger: Trigger
    conditions: Conditions = Field(default_factory=Conditions)
    max_latency_ms: float = Field(
        default=500.0,
        gt=0,
        le=60_000,
        description="Frame (or reading) to write latency this rule promises; later is 'late'.",
    )
    actions: list[Action] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _conditions_fit(self) -> Self:
        camera = isinstance(self.trigger, CAMERA_TRIGGERS)
        if self.conditions.camera_ok and not camera:
            raise ValueError("conditions.camera_ok: needs a camera trigger")
        if isinstance(self.trigger, AlertTrigger):
            if self.conditions.min_duration_s:
                raise ValueError(
                    "conditions.min_duration_s: an alert is an instant; use zone_occupancy "
                    "or zone_dwell to require a duration"
                )
            for i, action in enumerate(self.actions):
                if action.hold_s <= 0:
                    raise ValueError(
                        f"actions[{i}].hold_s: an alert is an instant; the output needs "
                        "hold_s > 0 to show it"
                    )
        targets = [a.target() for a in self.actions]
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise ValueError(f"actions: the same output twice: {', '.join(dupes)}")
        return self

    @property
    def needs_camera_ok(self) -> bool:
        """Whether the rule falls back to fail-safe when its camera is not streaming."""
        if not isinstance(self.trigger, CAMERA_TRIGGERS):
            return False
        return self.conditions.camera_ok is not False

    @property
    def camera(self) -> str | None:
        """The camera of a camera trigger."""
        return self.trigger.camera if isinstance(self.trigger, CAMERA_TRIGGERS) else None


# Union tags that pydantic puts into error locations (dropped from field paths).
UNION_TAGS: dict[str, frozenset[str]] = {"trigger": TRIGGER_TYPES, "actions": ACTION_TYPES}


def check_references(
    rules: list[RuleConfig],
    cameras: dict[str, tuple[set[str], set[str]]],
    sensors: dict[str, tuple[str, str]],
) -> list[str]:
    """Problems with what rules refer to, one ``rules[i].field: message`` line each.

    Args:
        rules: the ``[[rules]]`` entries.
        cameras: camera id -> (zone ids, line ids).
        sensors: sensor id -> (protocol, port).
    """
    problems: list[str] = []
    ids = [r.id for r in rules]
    for dupe in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"rules: duplicate id {dupe}")
    owner: dict[str, int] = {}
    sensor_ports = {port: sid for sid, (_protocol, port) in sensors.items()}
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        trigger = rule.trigger
        if isinstance(trigger, SensorTrigger):
            if trigger.sensor not in sensors:
                problems.append(f"{where}.trigger.sensor: no sensor {trigger.sensor!r}")
        elif trigger.camera not in cameras:
            problems.append(f"{where}.trigger.camera: no camera {trigger.camera!r}")
        else:
            zones, lines = cameras[trigger.camera]
            zone = getattr(trigger, "zone", None)
            line = getattr(trigger, "line", None)
            if zone is not None and zone not in zones:
                problems.append(
                    f"{where}.trigger.zone: camera {trigger.camera!r} has no zone {zone!r}"
                )
            if line is not None and line not in lines:
                problems.append(
                    f"{where}.trigger.line: camera {trigger.camera!r} has no line {line!r}"
                )
        for j, action in enumerate(rule.actions):
            at = f"{where}.actions[{j}]"
            target = action.target()
            if target in owner and owner[target] != i:
                first = owner[target]
                problems.append(
                    f"{at}: {target} is already driven by rules[{first}] ({rules[first].id})"
                )
            owner.setdefault(target, i)
            if isinstance(action, BridgeAction):
                spec = sensors.get(action.sensor)
                if spec is None:
                    problems.append(f"{at}.sensor: no sensor {action.sensor!r}")
                elif spec[0] != "rsb":
                    problems.append(
                        f"{at}.sensor: sensor {action.sensor!r} speaks {spec[0]!r}, not rsb"
                    )
            port = action.port if isinstance(action, ModbusLink) else None
            if port and port in sensor_ports:
                problems.append(f"{at}.port: {port} is the port of sensor {sensor_ports[port]!r}")
    return problems
