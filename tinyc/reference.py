"""The oracle: LiteRT's interpreter with the reference kernels (BUILTIN_REF).

XNNPACK / the optimized kernels differ from the reference by up to 1 LSB; never use them here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.errors import TinycError


class Reference:
    """A LiteRT BUILTIN_REF interpreter over one .tflite model."""

    def __init__(self, model: str | Path | bytes, preserve_all_tensors: bool = False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        content = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
        try:
            self.interpreter = Interpreter(
                model_content=bytes(content),
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                experimental_preserve_all_tensors=preserve_all_tensors,
                num_threads=1,
            )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TinycError(f"the reference interpreter rejects the model: {first}") from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run one sample (each input with its full shape, batch included)."""
        for detail, value in zip(self.inputs, inputs):
            self.interpreter.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]).reshape(detail["shape"]))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]).copy() for d in self.outputs]

    def run_batch(self, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        return [self.run(*s) for s in samples]


def _run_all(model: str | bytes, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    return Reference(model if isinstance(model, bytes) else Path(model)).run_batch(samples)


def abort_hint(model: str | Path | bytes) -> str:
    """What to tell the user when LiteRT died on `model`: the first op tinyc's own checks
    refuse (its constants are usually what LiteRT's asserts trip on), else where to look."""
    from tinyc.frontend.tflite import load_tflite, tflite_to_graph
    from tinyc.codegen.ops import check_op

    try:
        graph = tflite_to_graph(model) if isinstance(model, (bytes, bytearray)) else load_tflite(model)
        for i, op in enumerate(graph.ops):
            try:
                check_op(graph, i)
            except TinycError as exc:
                return f"op {i} ({op.kind}) is the likely cause: {exc}"
    except TinycError:
        pass
    return "an op's quantized constants are outside what LiteRT's reference kernels accept; " \
           "`tinyc inspect` on the int8 model lists the ops"


def reference_outputs(model: str | Path | bytes, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """The reference's outputs for every sample, computed in a child process (tinyc.isolated):
    a model LiteRT aborts on becomes a TinycError, not the end of tinyc."""
    from tinyc.isolated import run_isolated

    src = bytes(model) if isinstance(model, (bytes, bytearray)) else str(model)
    return run_isolated(_run_all, src, samples, what="running the reference (BUILTIN_REF) on the model",
                        hint=lambda: abort_hint(src if isinstance(src, bytes) else Path(src)))
