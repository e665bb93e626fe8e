"""`.tflite` flatbuffer <-> IR, through the schema's object API (ai-edge-litert ships it).

Op attributes are the builtin options' fields in snake_case, with a few normalised names
(see tinyc/ir.py): `activation` and `padding` as strings, `stride_h/w`, `dilation_h/w`,
`filter_h/w`. The options class name is kept in `attrs["_options"]` and the opcode version
in `attrs["_version"]` so that the graph can be written back unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tinyc.errors import TinycError, UnsupportedError
from tinyc.ir import Graph, Op, QuantParams, Tensor, np_dtype

_TENSOR_TYPES = {
    schema.TensorType.FLOAT32: "float32",
    schema.TensorType.INT8: "int8",
    schema.TensorType.UINT8: "uint8",
    schema.TensorType.INT16: "int16",
    schema.TensorType.INT32: "int32",
    schema.TensorType.INT64: "int64",
    schema.TensorType.BOOL: "bool",
}
_TENSOR_TYPE_CODES = {v: k for k, v in _TENSOR_TYPES.items()}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
OP_CODES = {k: v for v, k in OP_NAMES.items()}
_OPTION_TYPES = {v: k for k, v in vars(schema.BuiltinOptions).items() if not k.startswith("_")}

_ACTIVATIONS = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
_RENAMES = {
    "fused_activation_function": "activation",
    "dilation_wfactor": "dilation_w",
    "dilation_hfactor": "dilation_h",
    "filter_width": "filter_w",
    "filter_height": "filter_h",
}
_RENAMES_BACK = {v: k for k, v in _RENAMES.items()}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _decode(name) -> str:
    if name is None:
        return ""
    return name.decode("utf-8", "replace") if isinstance(name, (bytes, bytearray)) else str(name)


def _options_to_attrs(options) -> dict:
    attrs: dict = {}
    if options is None:
        return attrs
    attrs["_options"] = type(options).__name__
    for key, value in vars(options).items():
        snake = _RENAMES.get(_snake(key), _snake(key))
        if snake == "activation":
            value = _ACTIVATIONS.get(value, str(value))
        elif snake == "padding":
            value = _PADDINGS.get(value, str(value))
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        attrs[snake] = value
    return attrs


def _attrs_to_options(attrs: dict):
    cls_name = attrs.get("_options")
    if not cls_name:
        return None
    options = getattr(schema, cls_name)()
    for key in vars(options):
        snake = _RENAMES.get(_snake(key), _snake(key))
        if snake not in attrs:
            continue
        value = attrs[snake]
        if snake == "activation":
            value = getattr(schema.ActivationFunctionType, value)
        elif snake == "padding":
            value = getattr(schema.Padding, value)
        setattr(options, key, value)
    return options


def parse_model(buf: bytes, source: str = "model"):
    """Unpack a flatbuffer into the schema's ModelT, or raise a one-line TinycError."""
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TinycError(f"{source} is not a TFLite flatbuffer (no 'TFL3' identifier); "
                         "give a .tflite file, or a Keras model")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(buf), 0)
        # Touch every tensor buffer: a truncated file fails here instead of later.
        for sg in model.subgraphs or []:
            for t in sg.tensors or []:
                b = model.buffers[t.buffer] if model.buffers and t.buffer < len(model.buffers) else None
                if b is not None and b.offset and b.offset + b.size > len(buf):
                    raise ValueError("buffer outside file")
    except TinycError:
        raise
    except Exception as exc:  # flatbuffers raises struct.error, IndexError, ...
        raise TinycError(f"{source} is a truncated or corrupt TFLite file ({type(exc).__name__}); "
                         "re-export it from the converter") from None
    if not model.subgraphs:
        raise TinycError(f"{source} has no subgraph")
    return model


def op_name(model, op) -> str:
    """The builtin op name of a flatbuffer operator (opcode = max(builtin, deprecated builtin))."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def tensor_name(t) -> str:
    return _decode(t.name)


def dtype_name(t) -> str:
    """A flatbuffer tensor's type in lower case ("float32", "int8", ...)."""
    return _TYPE_NAMES.get(int(t.type), str(t.type)).lower()


def is_constant(model, t) -> bool:
    """True when the tensor's buffer holds data inside the flatbuffer."""
    buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
    return buf is not None and buf.data is not None and len(buf.data) > 0


def io_tensors(model) -> tuple[list, list]:
    g = model.subgraphs[0]
    return [g.tensors[i] for i in g.inputs], [g.tensors[i] for i in g.outputs]


def _buffer_bytes(model, buf: bytes, index: int) -> bytes | None:
    if not model.buffers or index >= len(model.buffers) or index == 0:
        return None
    b = model.buffers[index]
    if b.data is not None and len(b.data):
        return bytes(np.asarray(b.data, dtype=np.uint8))
    if b.offset and b.size:  # large models keep data outside the flatbuffer tables
        return bytes(buf[b.offset:b.offset + b.size])
    return None


def load_tflite(path: str | Path) -> Graph:
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise TinycError(f"cannot read {path}: {exc.strerror}") from None
    graph = tflite_to_graph(buf, source=str(path))
    graph.meta["source"] = str(path)
    return graph


def several_subgraphs_error(model, source: str) -> UnsupportedError:
    """The refusal of a model with control flow, naming the op that calls the other subgraphs
    (a Keras SimpleRNN lowers to WHILE; its output tensor's name carries the layer's)."""
    g = model.subgraphs[0]
    for i, op in enumerate(g.operators or []):
        kind = op_name(model, op)
        if kind in ("WHILE", "IF", "CALL_ONCE", "CALL", "STABLEHLO_WHILE", "STABLEHLO_CASE"):
            out = tensor_name(g.tensors[op.outputs[0]]) if op.outputs is not None and len(op.outputs) else "?"
            return UnsupportedError(
                f"{source}: op {i} {kind} ('{out}') runs {len(model.subgraphs) - 1} more subgraphs (control flow, "
                "e.g. a Keras SimpleRNN); tinyc compiles single-subgraph models: replace that layer "
                "(e.g. by LSTM, GRU, Conv1D or Dense layers), or build it with unroll=True")
    return UnsupportedError(f"{source} has {len(model.subgraphs)} subgraphs; tinyc compiles "
                            "single-subgraph models (no control flow): re-export without it")


def tflite_to_graph(buf: bytes, source: str = "model") -> Graph:
    model = parse_model(buf, source)
    if len(model.subgraphs) != 1:
        raise several_subgraphs_error(model, source)
    sg = model.subgraphs[0]
    tensors: list[Tensor] = []
    for i, t in enumerate(sg.tensors or []):
        dtype = _TENSOR_TYPES.get(t.type)
        if dtype is None:
            raise UnsupportedError(f"tensor {i} ('{_decode(t.name)}') has type "
                                   f"{_TYPE_NAMES.get(t.type, t.type)}, which tinyc does not support")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            zp = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else np.zeros(len(q.scale))
            quant = QuantParams(np.asarray(q.scale, np.float32), np.asarray(zp, np.int64),
                                int(q.quantizedDimension or 0))
        data = None
        raw = _buffer_bytes(model, buf, t.buffer)
        if raw is not None:
            arr = np.frombuffer(raw, dtype=np_dtype(dtype))
            if arr.size != (int(np.prod(shape)) if shape else 1):
                raise TinycError(f"{source}: tensor {i} ('{_decode(t.name)}') has {arr.size} values "
                                 f"for shape {list(shape)}; the file is corrupt")
            data = arr.reshape(shape).copy()
        tensors.append(Tensor(_decode(t.name) or f"t{i}", shape, dtype, quant, data))

    ops: list[Op] = []
    for i, o in enumerate(sg.operators or []):
        code = model.operatorCodes[o.opcodeIndex]
        kind = op_name(model, o)
        if kind == "CUSTOM":
            kind = f"CUSTOM:{_decode(code.customCode)}"
        attrs = _options_to_attrs(o.builtinOptions)
        attrs["_version"] = int(code.version or 1)
        if o.intermediates is not None and len(o.intermediates):  # LSTM's scale holders
            attrs["_intermediates"] = [int(x) for x in o.intermediates]
        outs = [int(x) for x in (o.outputs if o.outputs is not None else [])]
        name = tensors[outs[0]].name if outs else f"op{i}"
        ops.append(Op(kind, [int(x) for x in (o.inputs if o.inputs is not None else [])], outs, attrs, name))
    inputs = [int(x) for x in (sg.inputs if sg.inputs is not None else [])]
    outputs = [int(x) for x in (sg.outputs if sg.outputs is not None else [])]
    graph = Graph(tensors, ops, inputs, outputs, name=_decode(sg.name) or "model")
    # Variable tensors (state kept between invocations: SVDF, LSTM) are written back as such.
    variables = [i for i, t in enumerate(sg.tensors or []) if t.isVariable]
    if variables:
        graph.meta["variable_tensors"] = variables
    return graph


def graph_to_tflite(graph: Graph) -> bytes:
    """Write the IR as a valid .tflite flatbuffer (what the reference interpreter runs)."""
    model = schema.ModelT()
    model.version = 3
    model.description = "tinyc"
    model.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
    opcodes: list[tuple[str, int]] = []
    sg = schema.SubGraphT()
    sg.name = graph.name
    sg.tensors = []
    variables = set(graph.meta.get("variable_tensors", []))
    for i, t in enumerate(graph.tensors):
        st = schema.TensorT()
        st.name = t.name
        st.shape = np.asarray(t.shape, dtype=np.int32)
        st.type = _TENSOR_TYPE_CODES[t.dtype]
        st.buffer = 0
        st.isVariable = i in variables
        if t.data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(t.data, dtype=np_dtype(t.dtype)).tobytes(), np.uint8)
            model.buffers.append(b)
            st.buffer = len(model.buffers) - 1
        if t.quant is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in t.quant.scale]
            q.zeroPoint = [int(z) for z in t.quant.zero_point]
            q.quantizedDimension = int(t.quant.axis)
            st.quantization = q
        sg.tensors.append(st)
    sg.operators = []
    for op in graph.ops:
        if op.kind.startswith("CUSTOM:") or op.kind not in OP_CODES:
            raise UnsupportedError(f"cannot write op {op.kind} to .tflite")
        key = (op.kind, int(op.attrs.get("_version", 1)))
        if key not in opcodes:
            opcodes.append(key)
        so = schema.OperatorT()
        so.opcodeIndex = opcodes.index(key)
        so.inputs = np.asarray(op.inputs, dtype=np.int32)
        so.outputs = np.asarray(op.outputs, dtype=np.int32)
        if op.attrs.get("_intermediates"):
            so.intermediates = np.asarray(op.attrs["_intermediates"], dtype=np.int32)
        options = _attrs_to_options(op.attrs)
        if options is not None:
            so.builtinOptionsType = _option_type_code(op.attrs["_options"])
            so.builtinOptions = options
        sg.operators.append(so)
    sg.inputs = np.asarray(graph.inputs, dtype=np.int32)
    sg.outputs = np.asarray(graph.outputs, dtype=np.int32)
    model.subgraphs = [sg]
    model.operatorCodes = []
    for kind, version in opcodes:
        oc = schema.OperatorCodeT()
        code = OP_CODES[kind]
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = version
        model.operatorCodes.append(oc)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _option_type_code(cls_name: str) -> int:
    name = cls_name[:-1] if cls_name.endswith("T") else cls_name
    try:
        return getattr(schema.BuiltinOptions, name)
    except AttributeError:
        # Options added after the 127-op limit live in BuiltinOptions2; not used by our ops.
        raise UnsupportedError(f"cannot write builtin options {name}") from None
