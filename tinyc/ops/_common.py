"""Checks shared by the op modules. (A helper, not an op module: tinyc.ops._load_all skips
module names that start with "_".)"""

from __future__ import annotations

from tinyc.errors import UnsupportedError


def label(op, kind: str | None = None) -> str:
    """How error messages name an op: its kind, then its name if it has one."""
    kind = kind or op.kind
    return f"{kind} '{op.name}'" if op.name else kind


def check_s8_in_out(graph, op, lab: str, n_inputs: int, what: str):
    """n_inputs inputs and one output, the first input and the output int8; returns them.
    `what` names the op for the dtype error ("int8 logistic")."""
    if len(op.inputs) != n_inputs or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                               f"{n_inputs} and 1 expected")
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int8" or y.dtype != "int8":
        raise UnsupportedError(f"{lab} has a {x.dtype} input and a {y.dtype} output; tinyc compiles {what}: "
                               "quantize the model to full int8")
    return x, y


def check_per_tensor(lab: str, x, y) -> None:
    """x and y have one scale and zero point each."""
    if x.quant is None or y.quant is None or x.quant.per_axis or y.quant.per_axis:
        raise UnsupportedError(f"{lab} needs per-tensor quantized input and output")
