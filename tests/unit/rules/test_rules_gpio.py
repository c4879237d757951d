"""GPIO output through the Linux character device (uAPI v2).

The ioctl structures are checked against ``<linux/gpio.h>`` with the C compiler (sizes,
offsets, request codes and the bytes of a filled request). Driving a real line needs a
``/dev/gpiochipN``: the ``gpio-sim`` (or ``gpio-mockup``) kernel module makes one; where
neither is loaded (containers, VMs without modules) that test is skipped with the reason.
"""

from __future__ import annotations

import ctypes
import glob
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gateway.actuation import Cause
from gateway.config.rules import GpioAction
from gateway.rules.actuators import gpio
from gateway.rules.actuators.base import ActuatorError, WriteContext

HEADER = Path("/usr/include/linux/gpio.h")

C_PROGRAM = r"""
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <linux/gpio.h>
int main(void) {
    struct gpio_v2_line_request r;
    unsigned char *b = (unsigned char *)&r;
    size_t i;
    printf("sizeof_request %zu\n", sizeof(struct gpio_v2_line_request));
    printf("sizeof_config %zu\n", sizeof(struct gpio_v2_line_config));
    printf("sizeof_attribute %zu\n", sizeof(struct gpio_v2_line_attribute));
    printf("sizeof_values %zu\n", sizeof(struct gpio_v2_line_values));
    printf("sizeof_chipinfo %zu\n", sizeof(struct gpiochip_info));
    printf("offset_consumer %zu\n", offsetof(struct gpio_v2_line_request, consumer));
    printf("offset_config %zu\n", offsetof(struct gpio_v2_line_request, config));
    printf("offset_num_lines %zu\n", offsetof(struct gpio_v2_line_request, num_lines));
    printf("offset_fd %zu\n", offsetof(struct gpio_v2_line_request, fd));
    printf("ioctl_get_line %lu\n", (unsigned long)GPIO_V2_GET_LINE_IOCTL);
    printf("ioctl_set_values %lu\n", (unsigned long)GPIO_V2_LINE_SET_VALUES_IOCTL);
    printf("ioctl_get_values %lu\n", (unsigned long)GPIO_V2_LINE_GET_VALUES_IOCTL);
    printf("ioctl_chipinfo %lu\n", (unsigned long)GPIO_GET_CHIPINFO_IOCTL);
    printf("flag_output %lu\n", (unsigned long)GPIO_V2_LINE_FLAG_OUTPUT);
    printf("flag_active_low %lu\n", (unsigned long)GPIO_V2_LINE_FLAG_ACTIVE_LOW);
    printf("attr_output_values %d\n", (int)GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES);
    memset(&r, 0, sizeof r);
    r.offsets[0] = 17;
    r.num_lines = 1;
    strcpy(r.consumer, "roadside-gateway");
    r.config.flags = GPIO_V2_LINE_FLAG_OUTPUT | GPIO_V2_LINE_FLAG_ACTIVE_LOW;
    r.config.num_attrs = 1;
    r.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
    r.config.attrs[0].attr.values = 1;
    r.config.attrs[0].mask = 1;
    printf("request_hex ");
    for (i = 0; i < sizeof r; i++) printf("%02x", b[i]);
    printf("\n");
    return 0;
}
"""


@pytest.fixture(scope="module")
def kernel_header(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if shutil.which("gcc") is None or not HEADER.exists():
        pytest.fail(
            "gcc and <linux/gpio.h> (linux-libc-dev, pulled in by gcc) are needed to check "
            "the GPIO ioctl structures",
            pytrace=False,
        )
    work = tmp_path_factory.mktemp("gpio")
    source, binary = work / "layout.c", work / "layout"
    source.write_text(C_PROGRAM)
    subprocess.run(["gcc", "-std=c99", "-O0", str(source), "-o", str(binary)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_structures_match_the_kernel_header(kernel_header: dict[str, str]) -> None:
    facts = {
        "sizeof_request": ctypes.sizeof(gpio.GpioV2LineRequest),
        "sizeof_config": ctypes.sizeof(gpio.GpioV2LineConfig),
        "sizeof_attribute": ctypes.sizeof(gpio.GpioV2LineAttribute),
        "sizeof_values": ctypes.sizeof(gpio.GpioV2LineValues),
        "sizeof_chipinfo": ctypes.sizeof(gpio.GpioChipInfo),
        "offset_consumer": gpio.GpioV2LineRequest.consumer.offset,
        "offset_config": gpio.GpioV2LineRequest.config.offset,
        "offset_num_lines": gpio.GpioV2LineRequest.num_lines.offset,
        "offset_fd": gpio.GpioV2LineRequest.fd.offset,
        "ioctl_get_line": gpio.GPIO_V2_GET_LINE_IOCTL,
        "ioctl_set_values": gpio.GPIO_V2_LINE_SET_VALUES_IOCTL,
        "ioctl_get_values": gpio.GPIO_V2_LINE_GET_VALUES_IOCTL,
        "ioctl_chipinfo": gpio.GPIO_GET_CHIPINFO_IOCTL,
        "flag_output": gpio.GPIO_V2_LINE_FLAG_OUTPUT,
        "flag_active_low": gpio.GPIO_V2_LINE_FLAG_ACTIVE_LOW,
        "attr_output_values": gpio.GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES,
    }
    assert {k: str(v) for k, v in facts.items()} == {k: kernel_header[k] for k in facts}
    assert gpio.GPIO_V2_GET_LINE_IOCTL == 0xC250B407  # the documented value, as a cross-check


def test_request_bytes_match_the_kernel_header(kernel_header: dict[str, str]) -> None:
    request = gpio.line_request(17, 1, active_low=True, consumer="roadside-gateway")
    assert bytes(request).hex() == kernel_header["request_hex"]


def test_missing_chip_is_a_clear_actuator_error(tmp_path: Path) -> None:
    cfg = GpioAction(type="gpio", chip=str(tmp_path / "gpiochip9"), line=3, fail_safe=0)
    actuator = gpio.GpioActuator(cfg)
    context = WriteContext("r", "active", Cause("alert", 0.0, "alert", "cam"), 1.0)
    with pytest.raises(ActuatorError, match="No such file or directory"):
        actuator.write(1, context)


def _sim_chips() -> list[str]:
    chips = []
    for path in sorted(glob.glob("/sys/bus/gpio/devices/gpiochip*")):
        label = Path(path, "label")
        text = label.read_text().strip() if label.exists() else ""
        if text.startswith(("gpio-sim", "gpio-mockup")):
            chips.append("/dev/" + Path(path).name)
    return chips


def test_drives_a_simulated_line() -> None:
    chips = _sim_chips()
    if not chips:
        pytest.skip(
            "no gpio-sim or gpio-mockup chip on this machine (the kernel has no module "
            "support here: modprobe gpio-sim needs a host kernel with CONFIG_GPIO_SIM)"
        )
    cfg = GpioAction(type="gpio", chip=chips[0], line=0, fail_safe=0)
    actuator = gpio.GpioActuator(cfg)
    context = WriteContext("r", "active", Cause("alert", 0.0, "alert", "cam"), 1.0)
    try:
        actuator.write(1, context)
        values = gpio.GpioV2LineValues(bits=0, mask=1)
        assert actuator._line_fd is not None
        import fcntl

        fcntl.ioctl(actuator._line_fd, gpio.GPIO_V2_LINE_GET_VALUES_IOCTL, values)
        assert values.bits & 1 == 1
        actuator.write(0, context)
        time.sleep(0.01)
        fcntl.ioctl(actuator._line_fd, gpio.GPIO_V2_LINE_GET_VALUES_IOCTL, values)
        assert values.bits & 1 == 0
    finally:
        actuator.close()
