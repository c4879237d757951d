"""What a model looks like from outside: its input and output tensors."""

from __future__ import annotations

from dataclasses import dataclass

# ONNX Runtime type strings of the input tensors the detector can feed.
FLOAT = "tensor(float)"
UINT8 = "tensor(uint8)"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One named tensor; ``shape`` entries are ints, or strings/None for dynamic axes."""

    name: str
    type: str
    shape: tuple[int | str | None, ...]

    def describe(self) -> str:
        """``name type [d0,d1,...]`` for error messages."""
        dims = ",".join("?" if not isinstance(d, int) else str(d) for d in self.shape)
        return f"{self.name} {self.type.removeprefix('tensor(').rstrip(')')} [{dims}]"

    @property
    def short_name(self) -> str:
        """The name without a TensorFlow ``:0`` suffix."""
        return self.name.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's single input, its resolved ``(height, width)``, and its outputs.

    Output shapes are the concrete shapes of a warm-up run, so dynamic axes are resolved.
    """

    input: TensorSpec
    input_hw: tuple[int, int]
    outputs: tuple[TensorSpec, ...]

    @property
    def nchw_float(self) -> bool:
        """The input is float32 ``[1, 3, H, W]``."""
        shape = self.input.shape
        return self.input.type == FLOAT and len(shape) == 4 and shape[1] == 3

    @property
    def nhwc_uint8(self) -> bool:
        """The input is uint8 ``[1, H, W, 3]``."""
        shape = self.input.shape
        return self.input.type == UINT8 and len(shape) == 4 and shape[3] == 3

    def describe(self) -> str:
        """One line listing input and outputs."""
        outs = "; ".join(o.describe() for o in self.outputs)
        return f"input {self.input.describe()}; outputs {outs}"
