"""ONNX Runtime sessions: execution providers, threads, loading errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gateway.errors import ModelError
from gateway.vision.detector.signature import FLOAT, UINT8, TensorSpec

# Config name -> ONNX Runtime execution provider.
PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}

# Input size used when the model's input has dynamic height/width and none is configured.
DEFAULT_SIZE = {FLOAT: 640, UINT8: 300}


def ort_providers(names: Sequence[str]) -> list[str]:
    """ONNX Runtime provider names for config names; raise if one is not available.

    The CPU provider is always appended last as the fallback for unsupported operators.
    """
    available = ort.get_available_providers()
    chosen: list[str] = []
    for name in names or ["cpu"]:
        provider = PROVIDERS.get(name)
        if provider is None:
            raise ModelError(f"unknown execution provider {name!r}; known: {', '.join(PROVIDERS)}")
        if provider not in available:
            known = {v: k for k, v in PROVIDERS.items()}
            listed = ", ".join(f"{known[p]} ({p})" if p in known else p for p in available)
            raise ModelError(
                f"execution provider {name} ({provider}) is not available in this "
                f"onnxruntime build; available: {listed}"
            )
        if provider not in chosen:
            chosen.append(provider)
    if PROVIDERS["cpu"] not in chosen:
        chosen.append(PROVIDERS["cpu"])
    return chosen


def open_session(path: Path, providers: Sequence[str], threads: int) -> ort.InferenceSession:
    """Load ``path`` with ``threads`` intra-op threads; a bad file is a :class:`ModelError`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    chosen = ort_providers(providers)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except Exception as exc:  # ORT raises its own pybind exception types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {path}: not a valid ONNX model ({detail})") from None


def input_spec(session: ort.InferenceSession, model: str) -> TensorSpec:
    """Return the model's single image input."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelError(f"unsupported model {model}: expected one image input, got {names}")
    item = inputs[0]
    return TensorSpec(item.name, item.type, tuple(item.shape))


def input_hw(spec: TensorSpec, override: int | None) -> tuple[int, int]:
    """``(height, width)``: static dims, else the configured size, else a default."""
    shape = spec.shape
    if len(shape) != 4:
        return (0, 0)
    dims = (shape[2], shape[3]) if spec.type == FLOAT else (shape[1], shape[2])
    fallback = override or DEFAULT_SIZE.get(spec.type, 640)
    height = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else fallback
    width = dims[1] if isinstance(dims[1], int) and dims[1] > 0 else fallback
    return (height, width)


def feed_shape(spec: TensorSpec, hw: tuple[int, int]) -> tuple[int, ...]:
    """Return the concrete input shape (batch 1) for ``hw``."""
    if spec.type == UINT8:
        return (1, hw[0], hw[1], 3)
    return (1, 3, hw[0], hw[1])


def warm_up(
    session: ort.InferenceSession, spec: TensorSpec, hw: tuple[int, int], model: str
) -> tuple[TensorSpec, ...]:
    """Run once on a blank image; return the outputs with their concrete shapes."""
    channels = None
    if len(spec.shape) == 4:
        channels = spec.shape[1] if spec.type == FLOAT else spec.shape[3]
    if spec.type not in (FLOAT, UINT8) or channels != 3:
        raise ModelError(
            f"unsupported model {model}: input {spec.describe()} is not an image "
            "(float32 [1,3,H,W] or uint8 [1,H,W,3])"
        )
    dtype = np.float32 if spec.type == FLOAT else np.uint8
    blank = np.full(feed_shape(spec, hw), 114, dtype=dtype)
    try:
        values = session.run(None, {spec.name: blank})
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {model} fails on a {hw[1]}x{hw[0]} input: {detail}") from None
    return tuple(
        TensorSpec(o.name, o.type, tuple(np.asarray(v).shape))
        for o, v in zip(session.get_outputs(), values, strict=True)
    )
