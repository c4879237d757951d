"""Each detector the cameras need: present, loadable, with labels that fit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gateway.config.vision import DetectorConfig
from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult
from gateway.errors import GatewayError


def check_models(ctx: Context) -> Iterator[CheckResult]:
    """Load every detector an enabled camera uses, as ``gateway run`` will."""
    settings = ctx.settings
    needed: dict[str, tuple[DetectorConfig, list[str]]] = {}
    for camera in settings.cameras:
        if not camera.enabled:
            continue
        detector = camera.detector or settings.detector
        key = detector.model_dump_json()
        needed.setdefault(key, (detector, []))[1].append(camera.id)
    for detector, cameras in needed.values():
        yield _check_one(detector, cameras, settings.model_dir)


def _check_one(detector: DetectorConfig, cameras: list[str], model_dir: Path) -> CheckResult:
    from gateway.vision.detector import load_detector

    name = f"model {detector.model}"
    used_by = f"used by {', '.join(cameras)}"
    try:
        loaded = load_detector(detector, model_dir)
    except GatewayError as exc:
        return CheckResult("models", name, "fail", f"{exc} ({used_by})", _fix(detector, model_dir))
    h, w = loaded.input_size
    return CheckResult(
        "models",
        name,
        "ok",
        f"loads: {len(loaded.labels)} classes, input {w}x{h} ({used_by})",
    )


def _is_store_name(model: str) -> bool:
    return not (model.endswith(".onnx") or "/" in model or "\\" in model)


def _fix(detector: DetectorConfig, model_dir: Path) -> str:
    from gateway.modelstore.store import ModelStore, install_hint

    model = detector.model
    if not _is_store_name(model):
        path = Path(model).expanduser()
        if not path.exists():
            return (
                f"copy the model to {path}, or import it into the store "
                f"(gateway models import FILE --name NAME --model-dir {model_dir}) "
                "and set detector.model to NAME"
            )
        return f"replace {path} with a working ONNX model (gateway models verify checks the store)"
    if model in ModelStore(model_dir).names():
        return f"re-install it: gateway models pull {model} --model-dir {model_dir} (or import)"
    return install_hint(model, model_dir)
