"""The ONNX Runtime execution providers: what this build offers, what the config asks for.

A Jetson or GPU box whose ``onnxruntime`` wheel lacks the configured provider (the CPU
wheel still installed, a wheel for another CUDA) fails here with the list of what the
installed build does offer, before a camera's detector is even loaded.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult

_FIX = (
    "install an ONNX Runtime build with that provider (pip install '.[cuda]' or "
    "'.[openvino]'; on a Jetson, JetPack's onnxruntime-gpu wheel: see deploy/debian.md), "
    "or set detector.providers to ones listed here"
)


def check_providers(ctx: Context) -> Iterator[CheckResult]:
    """One line: the providers available, and whether every configured one is among them."""
    import onnxruntime as ort

    from gateway.vision.detector.session import PROVIDERS

    settings = ctx.settings
    wanted: dict[str, list[str]] = {}
    for camera in settings.cameras:
        if camera.enabled:
            for name in (camera.detector or settings.detector).providers or ["cpu"]:
                wanted.setdefault(name, []).append(camera.id)
    available = list(ort.get_available_providers())
    config_name = {ort_name: name for name, ort_name in PROVIDERS.items()}
    offered = ", ".join(config_name.get(p, p) for p in available)
    build = f"onnxruntime {ort.__version__} ({ort.get_device()}) offers: {offered}"
    missing = {
        name: cameras for name, cameras in wanted.items() if PROVIDERS[name] not in available
    }
    if missing:
        lacking = "; ".join(f"{name} (used by {', '.join(c)})" for name, c in missing.items())
        yield CheckResult("providers", "providers", "fail", f"{build}; missing {lacking}", _FIX)
        return
    used = ", ".join(wanted) if wanted else "none (no camera)"
    yield CheckResult("providers", "providers", "ok", f"{build}; configured: {used}")
