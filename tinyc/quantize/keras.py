"""Keras 3 models (.keras, .h5, SavedModel directory) -> float and full-int8 `.tflite`.

The int8 model comes from `tf.lite.TFLiteConverter` with a representative dataset, so it is
what any TFLite user would get from the same model and data: the converter folds
BatchNormalization into the convolution before it, fuses ReLU/ReLU6 into the op, drops
Dropout, and quantizes with its MLIR quantizer. The batch is fixed to 1 (the model is cloned
onto a `batch_shape=(1, ...)` input) so that Flatten stays one RESHAPE. The converter prints
to stdout and stderr from C++, so both are captured at the file-descriptor level.

TensorFlow is imported inside the functions: importing tinyc never loads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable

from tinyc.errors import TinycError, UnsupportedError

# Which Keras layers tinyc supports is judged on the converted graph (tinyc.codegen's check
# names the op a layer lowers to), not on class names: Conv1D, SeparableConv2D, Rescaling or
# swish lower to ops tinyc has. Here only what the converter path itself cannot take is refused.
# TensorFlow 2.21's converter dies (SIGSEGV) calibrating a Keras 3 LSTM or GRU layer for int8 in
# its fused form; unrolled (one set of matmuls and activations per time step) they convert.
RECURRENT_LAYERS = ("LSTM", "GRU")


def quiet_tf_env() -> None:
    """Silence TensorFlow's start-up banner lines (must run before `import tensorflow`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


_ACTIVE: list[tuple] = []  # (saved fd 1, saved fd 2, capture file fd) of open captures


@contextlib.contextmanager
def captured_output():
    """Redirect fd 1 and 2 to a temporary file (the converter writes there from C++).

    Yields a list that receives the captured text when the block ends. `uncaptured(fn)`
    runs a callback (progress display) with the real stdout/stderr in the middle of it.
    """
    import sys

    sink: list[str] = []
    _flush()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = (os.dup(1), os.dup(2))
        py_out, py_err = sys.stdout, sys.stderr
        devnull = open(os.devnull, "w")
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            sys.stdout = sys.stderr = devnull
            _ACTIVE.append((saved[0], saved[1], tmp.fileno(), py_out, py_err))
            yield sink
        finally:
            _ACTIVE.pop()
            sys.stdout, sys.stderr = py_out, py_err
            devnull.close()
            _flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", "replace"))


def _flush() -> None:
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - closed or odd streams
            pass


def uncaptured(fn, *args) -> None:
    """Call fn(*args) with the real stdout/stderr even inside `captured_output()`."""
    import sys

    if not _ACTIVE:
        fn(*args)
        return
    out_fd, err_fd, tmp_fd, py_out, py_err = _ACTIVE[-1]
    cur_out, cur_err = sys.stdout, sys.stderr
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    sys.stdout, sys.stderr = py_out, py_err
    try:
        fn(*args)
    finally:
        _flush()
        sys.stdout, sys.stderr = cur_out, cur_err
        os.dup2(tmp_fd, 1)
        os.dup2(tmp_fd, 2)


def _custom_classes_in_config(path: Path) -> list[tuple[str, str]]:
    """(layer name, class name) of layers in a .keras file that are not Keras built-ins."""
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except Exception:
        return []
    found: list[tuple[str, str]] = []

    def walk(node):
        if isinstance(node, dict):
            cls, module = node.get("class_name"), node.get("module")
            if isinstance(cls, str) and isinstance(node.get("config"), dict):
                registered = node.get("registered_name")
                if (module is not None and not str(module).startswith("keras")) or \
                        (registered and "_" in str(registered) and ">" in str(registered)):
                    found.append((str(node["config"].get("name", "?")), cls))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return found


def load_keras(path) -> object:
    """Load a Keras model (.keras / .h5); a TinycError with one line if that fails."""
    quiet_tf_env()
    path = Path(path)
    if not path.exists():
        raise TinycError(f"{path}: no such file")
    with captured_output():
        import keras  # noqa: F401  (imports TensorFlow)
    try:
        with captured_output():
            model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises TypeError/ValueError with long texts
        msg = str(e)
        custom = _custom_classes_in_config(path) if path.suffix.lower() == ".keras" else []
        if custom:
            name, cls = custom[0]
            raise UnsupportedError(
                f"{path}: layer '{name}' is a custom layer ({cls}); tinyc converts built-in Keras layers "
                "only: replace it with built-in layers or convert the model to .tflite yourself") from None
        m = re.search(r"Could not locate class '([^']+)'", msg) or re.search(r"Unknown layer: '?([A-Za-z0-9_>.]+)", msg)
        if m:
            raise UnsupportedError(
                f"{path}: the model uses a custom or unknown layer class {m.group(1)}; tinyc converts built-in "
                "Keras layers only") from None
        first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
        raise TinycError(f"{path}: cannot load the Keras model ({first[:200]})") from None
    return model


def _all_layers(model) -> Iterable:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers") and layer is not model:
            yield from _all_layers(layer)


def check_keras_model(model) -> None:
    """Refuse custom layers and several inputs/outputs, one clear line each. Built-in layers
    are not judged by class: the converted graph is (the op each one lowers to)."""
    ins, outs = list(model.inputs or []), list(model.outputs or [])
    if len(ins) != 1 or len(outs) != 1:
        raise UnsupportedError(
            f"Keras model '{model.name}' has {len(ins)} inputs and {len(outs)} outputs; tinyc compiles "
            "models with one input and one output for now: split the model or wrap it in one that has one of each")
    for layer in _all_layers(model):
        cls = type(layer)
        module = getattr(cls, "__module__", "") or ""
        if not module.startswith("keras"):
            raise UnsupportedError(
                f"layer '{layer.name}' is a custom layer ({cls.__name__}); tinyc converts built-in Keras layers "
                "only: rewrite it with built-in layers")


def input_shape(model) -> tuple[int, ...]:
    """The model input's shape with the batch fixed to 1; refuses unknown non-batch dimensions."""
    shape = tuple(model.inputs[0].shape)
    if any(d is None for d in shape[1:]):
        raise UnsupportedError(
            f"Keras model '{model.name}' has input shape {shape} with unknown dimensions; tinyc needs a fixed "
            "input shape: build the model with keras.Input(shape=...) fully specified")
    return (1,) + tuple(int(d) for d in shape[1:])


def _batch_one(model):
    """A clone of `model` whose input has batch size 1 (weights shared by value)."""
    import keras

    shape = input_shape(model)

    def unrolled(layer):
        config = layer.get_config()
        if type(layer).__name__ in RECURRENT_LAYERS:
            config["unroll"] = True   # see RECURRENT_LAYERS
        return type(layer).from_config(config)

    try:
        with captured_output():
            inp = keras.Input(batch_shape=shape, dtype=model.inputs[0].dtype)   # int32 indices stay int32
            clone = keras.models.clone_model(model, input_tensors=inp,
                                             clone_function=unrolled)
            clone.set_weights(model.get_weights())
        return clone
    except Exception:
        # Subclassed or unusual models cannot be cloned: convert them as they are (the converter
        # then fixes the batch of the signature to 1 itself).
        return model


def _run_converter(converter) -> bytes:
    captured: list[str] = []
    try:
        with captured_output() as captured:
            return bytes(converter.convert())
    except Exception as e:
        log = (captured[0] if captured else "")
        reason = _converter_reason(str(e) + "\n" + log)
        raise TinycError(f"the TFLite converter failed: {reason}") from None


# What the converter says about a recurrent layer kept as a TensorFlow while-loop (a SavedModel
# of an LSTM/GRU not unrolled), and what the user can do about it.
_TENSOR_LIST = ("the model runs a recurrent layer as a TensorFlow while-loop (tensor list ops), which int8 "
                "TFLite cannot express: give tinyc the .keras model (it unrolls LSTM and GRU layers) or "
                "export the layer with unroll=True")


def _converter_reason(text: str) -> str:
    if "Lowering tensor list ops is failed" in text:
        return _TENSOR_LIST
    # the first error line that is not only an MLIR location (`loc(callsite(...)): error: ...`)
    for pat in (r"'tf\.[A-Za-z0-9]+' op is neither a custom op nor a flex op", r"error: (?!loc\()([^\n]+)",
                r"RuntimeError: ([^\n]+)", r"ValueError: ([^\n]+)"):
        m = re.search(pat, text)
        if m:
            return (m.group(1) if m.groups() else m.group(0)).strip()[:240]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:240] if lines else "unknown error"


def _converter_for(path_or_model):
    quiet_tf_env()
    with captured_output():
        import tensorflow as tf
    if isinstance(path_or_model, (str, Path)) and Path(path_or_model).is_dir():
        return tf.lite.TFLiteConverter.from_saved_model(str(path_or_model))
    return tf.lite.TFLiteConverter.from_keras_model(_batch_one(path_or_model))


def convert_float(path_or_model) -> bytes:
    """Float32 `.tflite` of a Keras model or SavedModel directory (no optimisation flags)."""
    return _run_converter(_converter_for(path_or_model))


def convert_int8(path_or_model, representative: Callable[[], Iterable], *, per_tensor: bool = False,
                 io: str = "int8", activations: str = "int8") -> bytes:
    """Full-int8 `.tflite` through the converter's post-training quantization.

    `representative` is a generator function yielding `[sample]` lists (sample shaped like the
    input, batch 1, float32). io="int8" makes the model's input and output int8; io="float"
    keeps float32 I/O, with QUANTIZE / DEQUANTIZE ops at the edges. activations="int16": the
    converter's 16x8 mode (int16 activations and I/O, int8 weights, int64 bias).
    """
    import tensorflow as tf

    conv = _converter_for(path_or_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if activations == "int16":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if io == "int8":
        conv.inference_input_type = tf.int16 if activations == "int16" else tf.int8
        conv.inference_output_type = tf.int16 if activations == "int16" else tf.int8
    conv._experimental_disable_per_channel = bool(per_tensor)  # noqa: SLF001 (documented converter flag)
    return _run_converter(conv)

