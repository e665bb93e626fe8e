"""Metadata that TFLM accepts and LiteRT's reference rejects, normalised so the reference can
run the model tinyc writes (OUTDIR/model.tflite). Pure: IR in, IR and notes out.

- A tensor quantized with one scale and zero point but a quantized_dimension other than 0
  (person_detect's weights carry quantized_dimension 3): LiteRT refuses the model
  ("quantized_dimension" checks assume per-axis data), TFLM and the math ignore the field for
  a single scale. It is set to 0; every value stays the same.
"""

from __future__ import annotations

from tinyc.ir import Graph


def normalise_for_reference(graph: Graph) -> tuple[Graph, list[str]]:
    fixed = [i for i, t in enumerate(graph.tensors)
             if t.quant is not None and t.quant.scale.size == 1 and t.quant.axis != 0]
    if not fixed:
        return graph, []
    out = graph.copy()
    for i in fixed:
        out.tensors[i].quant.axis = 0
    names = ", ".join(f"'{graph.tensors[i].name}'" for i in fixed[:3]) + (" ..." if len(fixed) > 3 else "")
    return out, [f"set quantized_dimension to 0 on {len(fixed)} single-scale tensors ({names}) in model.tflite: "
                 "LiteRT's reference rejects another value there; TFLM ignores it; no value changes"]
