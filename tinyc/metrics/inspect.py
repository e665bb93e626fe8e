"""`tinyc inspect`: what is in a .tflite model and what tinyc can compile."""

from __future__ import annotations

from pathlib import Path

from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.ir import first_float_op, op_macs
from tinyc.ops import check_op, supported_ops


def inspect_model(path: Path) -> dict:
    """ops, shapes, MACs and support per op. For a float model (`"float": True`) support is
    judged on the op kinds: it is compiled after int8 quantization (convert --calib), whose
    constants are checked then."""
    path = Path(path)
    if path.is_dir() or path.suffix in (".keras", ".h5"):
        raise TinycError(f"inspect reads .tflite files; convert {path} first (tinyc convert {path} --calib ... -o OUT)")
    graph = load_tflite(path)
    # A float model is judged by its int8 form (what `convert --calib` compiles): its op kinds.
    is_float = first_float_op(graph) is not None
    kinds = set(supported_ops())
    ops = []
    params_total = 0
    for i, op in enumerate(graph.ops):
        if is_float:
            ok = op.kind in kinds
            why = "" if ok else f"{op.kind} is not an op tinyc compiles; supported: {', '.join(sorted(kinds))}"
        else:
            try:
                check_op(graph, i)
                ok, why = True, ""
            except TinycError as exc:
                ok, why = False, str(exc)
        params = sum(graph.tensors[t].size for t in op.inputs if t >= 0 and graph.tensors[t].is_const
                     and op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL"))
        params_total += params
        out = graph.tensors[op.outputs[0]] if op.outputs else None
        ops.append({
            "index": i, "op": op.kind, "name": op.name,
            "output_shape": list(out.shape) if out else [], "dtype": out.dtype if out else "",
            "params": int(params), "macs": int(op_macs(graph, op)), "supported": ok, "why": why,
            "attrs": {k: v for k, v in op.attrs.items() if not k.startswith("_")},
        })

    def io(ts):
        return [{"name": graph.tensors[t].name, "shape": list(graph.tensors[t].shape),
                 "dtype": graph.tensors[t].dtype} for t in ts]

    return {"model": str(path), "float": is_float, "inputs": io(graph.inputs), "outputs": io(graph.outputs), "ops": ops,
            "params": int(params_total), "macs": int(sum(o["macs"] for o in ops)),
            "supported": all(o["supported"] for o in ops)}
