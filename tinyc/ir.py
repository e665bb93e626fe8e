"""The graph IR: tensors, quantization, ops, in topological order.

Plain dataclasses, no behaviour beyond small queries. Passes take a Graph and return a new
one (see `Graph.copy`). Op kinds and attribute names follow the TFLite schema, normalised:

  CONV_2D            stride_h, stride_w, dilation_h, dilation_w, padding ('SAME'|'VALID'),
                     activation ('NONE'|'RELU'|'RELU6'|'RELU_N1_TO_1')
  DEPTHWISE_CONV_2D  the same + depth_multiplier
  FULLY_CONNECTED    activation, keep_num_dims
  ADD, MUL           activation
  AVERAGE_POOL_2D, MAX_POOL_2D
                     stride_h, stride_w, filter_h, filter_w, padding, activation
  MEAN               keep_dims (axes are the constant second input)
  PAD                (paddings are the constant second input)
  CONCATENATION      axis (normalised to >= 0), activation
  RESHAPE            (new shape is the output tensor's shape)
  SOFTMAX            beta
  LOGISTIC, QUANTIZE, DEQUANTIZE   no attributes

Shapes are NHWC as in TFLite. Optional op inputs that are absent are -1.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field

import numpy as np

# dtype names used in the IR, with their numpy and C spellings and byte sizes.
DTYPES = {
    "int8": (np.int8, "int8_t", 1),
    "uint8": (np.uint8, "uint8_t", 1),
    "int16": (np.int16, "int16_t", 2),
    "int32": (np.int32, "int32_t", 4),
    "int64": (np.int64, "int64_t", 8),
    "float32": (np.float32, "float", 4),
    "bool": (np.bool_, "uint8_t", 1),  # TFLite's bool: one byte, 0 or 1; no <stdbool.h> needed
}


def np_dtype(dtype: str):
    return DTYPES[dtype][0]


def c_type(dtype: str) -> str:
    return DTYPES[dtype][1]


def dtype_size(dtype: str) -> int:
    return DTYPES[dtype][2]


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    `scale` and `zero_point` are 1-D arrays: length 1 for per-tensor, one entry per slice of
    `axis` for per-axis (per-channel) quantization. Scales are float32 as stored in .tflite;
    kernels derive their multipliers from them exactly as TFLite does.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))

    @property
    def per_axis(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (error if per-axis)."""
        assert not self.per_axis, "per-axis quantization has no single scale"
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        assert self.zero_point.size == 1 or not np.any(self.zero_point), "per-axis zero points"
        return int(self.zero_point[0])


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = None  # constant data (weights, bias, shapes) or None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * dtype_size(self.dtype)


@dataclass
class Op:
    kind: str
    inputs: list[int]
    outputs: list[int]
    attrs: dict = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    name: str = "model"
    # Free-form facts carried along (source file, converter version, ...).
    meta: dict = field(default_factory=dict)

    def copy(self) -> "Graph":
        return _copy.deepcopy(self)

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def producers(self) -> dict[int, int]:
        """tensor index -> index of the op that writes it."""
        return {t: i for i, op in enumerate(self.ops) for t in op.outputs}

    def consumers(self) -> dict[int, list[int]]:
        """tensor index -> indices of the ops that read it."""
        out: dict[int, list[int]] = {}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(i)
        return out

    def op_kinds(self) -> list[str]:
        seen: list[str] = []
        for op in self.ops:
            if op.kind not in seen:
                seen.append(op.kind)
        return seen


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (what inspect, the compression cost model and reports count)."""
    t = graph.tensors
    if not op.outputs:
        return 0
    out = t[op.outputs[0]]
    if op.kind == "CONV_2D":
        return out.size * int(np.prod(t[op.inputs[1]].shape[1:]))
    if op.kind == "DEPTHWISE_CONV_2D":
        w = t[op.inputs[1]]
        return out.size * int(w.shape[1] * w.shape[2])
    if op.kind == "FULLY_CONNECTED":
        return out.size * int(t[op.inputs[1]].shape[-1])
    if op.kind == "AVERAGE_POOL_2D":
        return out.size * int(op.attrs.get("filter_h", 1)) * int(op.attrs.get("filter_w", 1))
    if op.kind == "MEAN":
        return t[op.inputs[0]].size
    if op.kind == "BATCH_MATMUL":  # depth: the LHS's last dim, or the one before with adj_x
        return out.size * int(t[op.inputs[0]].shape[-2 if op.attrs.get("adj_x") else -1])
    if op.kind in ("ADD", "MUL", "SOFTMAX", "LOGISTIC"):
        return out.size
    return 0


# Ops that only move float bytes (after a DEQUANTIZE at a float-I/O model's edge).
_FLOAT_OK = {"DEQUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


def first_float_op(graph: Graph) -> int | None:
    """Index of the first op that computes in float32, or None for an int8 graph."""
    for i, op in enumerate(graph.ops):
        if op.kind not in _FLOAT_OK and op.outputs and graph.tensors[op.outputs[0]].dtype == "float32":
            return i
    return None
