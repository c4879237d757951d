"""The explicit registry of sensor protocols, selected by name (config ``protocol``).

Stream protocols build a decoder (``feed(bytes) -> list[Reading]``); polled protocols
(Modbus) are driven by the reader through :mod:`gateway.serialports.modbus`. Factories import
their module when called, so a protocol whose module is missing fails only when it is
selected.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.errors import UsageError
from gateway.sensors.decoder import Decoder, OptionValue

DecoderFactory = Callable[[str, Mapping[str, OptionValue]], Decoder]


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """One registry entry."""

    name: str
    kind: Literal["stream", "poll"]
    description: str
    factory: DecoderFactory | None = None


def _builtin(module: str, cls: str, protocol: str) -> DecoderFactory:
    def factory(sensor_id: str, options: Mapping[str, OptionValue]) -> Decoder:
        decoder_cls = getattr(importlib.import_module(f"gateway.sensors.{module}"), cls)
        decoder: Decoder = decoder_cls.from_options(sensor_id, options, protocol=protocol)
        return decoder

    return factory


def _external(target: str, protocol: str) -> DecoderFactory:
    """Build a factory for a decoder class outside this package.

    The class is built with ``from_options(sensor_id, options, protocol=...)`` when it
    has that class method (as the built-in decoders do), else with no arguments.
    """

    def factory(sensor_id: str, options: Mapping[str, OptionValue]) -> Decoder:
        module_name, attr = target.split(":")
        try:
            decoder_cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"protocol decoder {target} is not available: {exc}") from exc
        from_options = getattr(decoder_cls, "from_options", None)
        if callable(from_options):
            built: Decoder = from_options(sensor_id, options, protocol=protocol)
            return built
        if options:
            raise UsageError(f"decoder {target} takes no options")
        decoder: Decoder = decoder_cls()
        return decoder

    return factory


PROTOCOLS: dict[str, ProtocolSpec] = {
    "pms5003": ProtocolSpec(
        "pms5003",
        "stream",
        "Plantower PMS5003 (also PMS3003/PMS5003ST by frame length)",
        _builtin("pms", "PmsDecoder", "pms5003"),
    ),
    "pms7003": ProtocolSpec(
        "pms7003",
        "stream",
        "Plantower PMS7003 (same frames as PMS5003)",
        _builtin("pms", "PmsDecoder", "pms7003"),
    ),
    "sds011": ProtocolSpec(
        "sds011",
        "stream",
        "Nova Fitness SDS011 particulate sensor",
        _builtin("sds011", "Sds011Decoder", "sds011"),
    ),
    "nmea": ProtocolSpec(
        "nmea",
        "stream",
        "NMEA 0183 GPS/GNSS: GGA and RMC sentences",
        _builtin("nmea", "NmeaDecoder", "nmea"),
    ),
    "ops243": ProtocolSpec(
        "ops243",
        "stream",
        "OmniPreSense OPS243-style Doppler radar speed lines",
        _builtin("radar", "RadarDecoder", "ops243"),
    ),
    "modbus": ProtocolSpec(
        "modbus", "poll", "Modbus RTU, function 03 holding registers, polled (config [modbus])"
    ),
    "rsb": ProtocolSpec(
        "rsb",
        "stream",
        "Roadside sensor board: COBS + CRC frames (firmware_bridge)",
        _builtin("rsb", "BridgeDecoder", "rsb"),
    ),
}


def get_protocol(name: str) -> ProtocolSpec:
    """Return the registry entry for ``name`` (:class:`UsageError` listing the names)."""
    spec = PROTOCOLS.get(name)
    if spec is None:
        raise UsageError(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}")
    return spec


def make_decoder(
    name: str, sensor_id: str = "", options: Mapping[str, OptionValue] | None = None
) -> Decoder:
    """Build the stream decoder registered as ``name``."""
    spec = get_protocol(name)
    if spec.factory is None:
        raise UsageError(f"protocol {name!r} is polled, not a byte stream to decode")
    return spec.factory(sensor_id, options or {})
