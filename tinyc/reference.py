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
