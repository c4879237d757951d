"""A Linux GPIO output line through the character device (``/dev/gpiochipN``, uAPI v2).

The line is requested as an output with ``GPIO_V2_GET_LINE_IOCTL`` (its first value set
in the same request, so it never glitches through a default), then driven with
``GPIO_V2_LINE_SET_VALUES_IOCTL`` on the line file descriptor the kernel returns. The
structures mirror ``<linux/gpio.h>``; ``tests/unit/rules/test_rules_gpio.py`` checks their sizes,
offsets and ioctl numbers against that header with the C compiler.

When the gateway process ends, the kernel releases the line and what the pin does next
depends on the driver (it may keep its value or go back to an input): write the fail-safe
value before (the rules engine does on stop), and put a pull resistor on the pin for a
crash (the hardware's fail-safe).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

from gateway.actuation import OutputValue
from gateway.config.rules import GpioAction
from gateway.rules.actuators.base import ActuatorError, WriteContext

GPIO_V2_LINES_MAX = 64
GPIO_MAX_NAME_SIZE = 32
GPIO_V2_LINE_NUM_ATTRS_MAX = 10
GPIO_V2_LINE_FLAG_ACTIVE_LOW = 1 << 1
GPIO_V2_LINE_FLAG_OUTPUT = 1 << 3
GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES = 2

_IOC_WRITE, _IOC_READ = 1, 2


def _iowr(kind: int, number: int, size: int) -> int:
    """The Linux ``_IOWR(kind, number, size)`` request code."""
    return ((_IOC_READ | _IOC_WRITE) << 30) | (size << 16) | (kind << 8) | number


def _ior(kind: int, number: int, size: int) -> int:
    """The Linux ``_IOR(kind, number, size)`` request code."""
    return (_IOC_READ << 30) | (size << 16) | (kind << 8) | number


class GpioChipInfo(ctypes.Structure):
    """``struct gpiochip_info``."""

    _fields_ = (
        ("name", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("label", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("lines", ctypes.c_uint32),
    )


class _AttrValue(ctypes.Union):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("debounce_period_us", ctypes.c_uint32),
    )


class GpioV2LineAttribute(ctypes.Structure):
    """``struct gpio_v2_line_attribute``."""

    _anonymous_ = ("u",)
    _fields_ = (("id", ctypes.c_uint32), ("padding", ctypes.c_uint32), ("u", _AttrValue))


class GpioV2LineConfigAttribute(ctypes.Structure):
    """``struct gpio_v2_line_config_attribute``."""

    _fields_ = (("attr", GpioV2LineAttribute), ("mask", ctypes.c_uint64))


class GpioV2LineConfig(ctypes.Structure):
    """``struct gpio_v2_line_config``."""

    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("num_attrs", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 5),
        ("attrs", GpioV2LineConfigAttribute * GPIO_V2_LINE_NUM_ATTRS_MAX),
    )


class GpioV2LineRequest(ctypes.Structure):
    """``struct gpio_v2_line_request``."""

    _fields_ = (
        ("offsets", ctypes.c_uint32 * GPIO_V2_LINES_MAX),
        ("consumer", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("config", GpioV2LineConfig),
        ("num_lines", ctypes.c_uint32),
        ("event_buffer_size", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 5),
        ("fd", ctypes.c_int32),
    )


class GpioV2LineValues(ctypes.Structure):
    """``struct gpio_v2_line_values``."""

    _fields_ = (("bits", ctypes.c_uint64), ("mask", ctypes.c_uint64))


GPIO_GET_CHIPINFO_IOCTL = _ior(0xB4, 0x01, ctypes.sizeof(GpioChipInfo))
GPIO_V2_GET_LINE_IOCTL = _iowr(0xB4, 0x07, ctypes.sizeof(GpioV2LineRequest))
GPIO_V2_LINE_GET_VALUES_IOCTL = _iowr(0xB4, 0x0E, ctypes.sizeof(GpioV2LineValues))
GPIO_V2_LINE_SET_VALUES_IOCTL = _iowr(0xB4, 0x0F, ctypes.sizeof(GpioV2LineValues))


def line_request(offset: int, value: int, *, active_low: bool, consumer: str) -> GpioV2LineRequest:
    """A request for one output line starting at ``value`` (logical: 1 = active)."""
    request = GpioV2LineRequest()
    request.offsets[0] = offset
    request.num_lines = 1
    request.consumer = consumer.encode()[: GPIO_MAX_NAME_SIZE - 1]
    flags = GPIO_V2_LINE_FLAG_OUTPUT | (GPIO_V2_LINE_FLAG_ACTIVE_LOW if active_low else 0)
    request.config.flags = flags
    request.config.num_attrs = 1
    attr = request.config.attrs[0]
    attr.attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES
    attr.attr.values = 1 if value else 0
    attr.mask = 1
    return request


def line_values(value: int) -> GpioV2LineValues:
    """Values of a one-line request: bit 0 set for ``value`` 1."""
    return GpioV2LineValues(bits=1 if value else 0, mask=1)


class GpioActuator:
    """Owns one requested line while the gateway runs."""

    def __init__(self, cfg: GpioAction, consumer: str = "roadside-gateway") -> None:
        self.cfg = cfg
        self.consumer = consumer
        self._line_fd: int | None = None

    def open(self) -> None:
        """Nothing yet: the first write requests the line with its value (no glitch)."""

    def _request(self, value: int) -> int:
        cfg = self.cfg
        try:
            chip = os.open(cfg.chip, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ActuatorError(f"gpio {cfg.chip}: {exc.strerror}") from exc
        try:
            request = line_request(
                cfg.line, value, active_low=cfg.active_low, consumer=self.consumer
            )
            fcntl.ioctl(chip, GPIO_V2_GET_LINE_IOCTL, request)
        except OSError as exc:
            hint = " (line in use by another consumer)" if exc.errno == errno.EBUSY else ""
            raise ActuatorError(f"gpio {cfg.target()}: {exc.strerror}{hint}") from exc
        finally:
            os.close(chip)
        return int(request.fd)

    def write(self, value: OutputValue, context: WriteContext) -> None:
        """Drive the line (requesting it with this value first if needed)."""
        level = 1 if value else 0
        if self._line_fd is None:
            self._line_fd = self._request(level)
            return
        try:
            fcntl.ioctl(self._line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, line_values(level))
        except OSError as exc:
            raise ActuatorError(f"gpio {self.cfg.target()}: {exc.strerror}") from exc

    def close(self) -> None:
        """Release the line."""
        fd, self._line_fd = self._line_fd, None
        if fd is not None:
            os.close(fd)
