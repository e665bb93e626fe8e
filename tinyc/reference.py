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


REFERENCE_NAMES = {"litert": "LiteRT BUILTIN_REF", "tflm": "TensorFlow Lite Micro (tflite-micro interpreter)"}


# The child side of ReferenceProcess: the one interpreter its worker process holds (state
# such as SVDF or LSTM variables carries over between samples, as on the board).
_LOADED: list = []


def _load_engine(engine: str, model: str) -> None:
    """(Reference process) load `model` with `engine` ("litert" or "tflm")."""
    _LOADED[:] = [REFERENCES[engine](model)]


def _run_engine(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """(Reference process) one sample through the loaded interpreter."""
    return _LOADED[0].run(*inputs)


class _EngineProcess:
    """One engine on one model in a child process (tinyc.isolated.Worker)."""

    def __init__(self, engine: str, model: Path):
        from tinyc.isolated import Worker

        self.model = model
        self.worker = Worker(REFERENCE_NAMES[engine])
        try:
            self.worker.call(_load_engine, engine, str(model), what=f"loading {model.name}")
        except TinycError:
            self.worker.close()
            raise

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.worker.call(_run_engine, [np.asarray(a) for a in inputs], what=f"running {self.model.name}")

    def close(self) -> None:
        self.worker.close()


def litert_mishandles(graph) -> str | None:
    """Why LiteRT's reference must not be trusted with this graph although it may load it, or
    None. Its SVDF kernel assumes int16 state and time weights: on TFLM's 8-bit SVDF
    (keyword_scrambled_8bit) it corrupts its heap and aborts, and on parts of that model it
    returns values computed from the wrong bytes."""
    for i, op in enumerate(graph.ops):
        if op.kind == "SVDF" and len(op.inputs) > 2 and graph.tensors[op.inputs[2]].dtype == "int8":
            return f"op {i} is an SVDF with int8 state, which LiteRT's reference kernel does not implement"
    return None


class ReferenceProcess:
    """The oracle for `validate`, in a child process: LiteRT BUILTIN_REF where it runs the
    model; where it rejects the model or dies on it (an abort, a failed invoke), TFLM's
    interpreter; TFLM also where `avoid_litert` (litert_mishandles) says LiteRT would load the
    model but compute it wrongly. `name` says which one answered, `fallback_reason` why LiteRT
    did not.
    The choice is made before the first result is used: every sample has one reference."""

    def __init__(self, model: str | Path, probe: list[np.ndarray] | None = None, avoid_litert: str | None = None):
        self.model = Path(model)
        self.fallback_reason: str | None = None
        self.engine = "litert"
        self._child = None
        if avoid_litert:
            self._use_tflm(f"LiteRT BUILTIN_REF is not used: {avoid_litert}")
            return
        try:
            self._child = _EngineProcess("litert", self.model)
            if probe is not None:
                self._child.run(probe)
                # A fresh interpreter: the probe has advanced any state (SVDF, LSTM variables).
                self._child.close()
                self._child = _EngineProcess("litert", self.model)
        except TinycError as exc:
            self._use_tflm(f"LiteRT BUILTIN_REF cannot run it: {exc}")

    def _use_tflm(self, reason: str) -> None:
        if getattr(self, "_child", None) is not None:
            self._child.close()
        self.fallback_reason = reason
        self.engine = "tflm"
        try:
            self._child = _EngineProcess("tflm", self.model)
        except TinycError as exc:
            self._child = None
            raise TinycError(f"no reference runs {self.model.name}: {reason}; TFLM: {exc}; "
                             f"{abort_hint(self.model)}") from None

    @property
    def name(self) -> str:
        return REFERENCE_NAMES[self.engine]

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self._child.run(list(inputs))

    def close(self) -> None:
        if self._child is not None:
            self._child.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
            # 16 MB: the interpreter's default arena is too small for the larger MLPerf models
            self.interpreter = runtime.Interpreter.from_bytes(bytes(content), arena_size=16 * 1024 * 1024)
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
