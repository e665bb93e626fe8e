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


class TflmReference:
    """TensorFlow Lite Micro's interpreter (the `tflite-micro` package) over one .tflite
    model: what `tinyc convert --numerics tflm` is checked against."""

    def __init__(self, model: str | Path | bytes):
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError:
            raise TinycError("--reference tflm needs the tflite-micro package (pip install tflite-micro)") from None
        content = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
        try:
            self.interpreter = runtime.Interpreter.from_bytes(bytes(content))
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TinycError(f"TensorFlow Lite Micro rejects the model: {first}") from None
        # the runtime has no count of inputs and outputs: the flatbuffer's main subgraph has
        from ai_edge_litert import schema_py_generated as schema

        main = schema.Model.GetRootAsModel(bytes(content), 0).Subgraphs(0)
        self.inputs = [self.interpreter.get_input_details(k) for k in range(main.InputsLength())]
        self.outputs = [self.interpreter.get_output_details(k) for k in range(main.OutputsLength())]

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run one sample (each input with its full shape, batch included)."""
        for k, (detail, value) in enumerate(zip(self.inputs, inputs)):
            self.interpreter.set_input(np.asarray(value, dtype=detail["dtype"]).reshape(detail["shape"]), k)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(k), copy=True) for k in range(len(self.outputs))]


REFERENCES = {"litert": Reference, "tflm": TflmReference}
