"""Input samples: random ones that cover a tensor's quantized range, and .npy files checked
against the model's inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.errors import TinycError
from tinyc.ir import np_dtype
from tinyc.outdir import TensorInfo


def random_inputs(inputs: list[TensorInfo], n: int, seed: int = 0,
                  ranges: list[tuple[float, float] | None] | None = None,
                  fixed: dict[int, np.ndarray] | None = None) -> list[list[np.ndarray]]:
    """n samples; each a list with one array per model input (full shape, batch included).

    `ranges` (see input_ranges), one per input or None: float inputs are uniform over the
    range their quantization covers, widened by 10% so that clamping is exercised too ([-1, 1]
    when nothing is known); integer inputs are uniform over their range, both ends included
    (indices into a table), else over the whole dtype; bool inputs are 0 or 1. Inputs in
    `fixed` (input index -> value; see shape_inputs) take that value in every sample.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        sample = []
        for k, t in enumerate(inputs):
            shape, dtype = tuple(t.shape), np.dtype(t.dtype)
            known = ranges[k] if ranges and k < len(ranges) else None
            if fixed and k in fixed:
                sample.append(np.asarray(fixed[k], dtype=dtype).reshape(shape))
            elif dtype == np.bool_:
                sample.append(rng.integers(0, 2, size=shape).astype(np.bool_))
            elif np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                lo, hi = (int(known[0]), int(known[1])) if known else (int(info.min), int(info.max))
                sample.append(rng.integers(lo, hi + 1, size=shape, dtype=dtype))
            else:
                lo, hi = known or (-1.0, 1.0)
                pad = 0.05 * (hi - lo)
                sample.append(rng.uniform(lo - pad, hi + pad, size=shape).astype(dtype))
        samples.append(sample)
    return samples


def load_inputs(paths, inputs: list[TensorInfo]) -> list[list[np.ndarray]]:
    """Samples from files: one .npy for a single-input model ([N, *input_shape] or one sample of
    exactly input_shape), one .npz with an array per input (keyed by input name, or input<k>),
    or one .npy per input, in the model's input order."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    names = ", ".join(f"'{t.name}'" for t in inputs)
    if len(paths) == 1 and paths[0].suffix == ".npz":
        arrays = _npz_arrays(paths[0], inputs)
        where = [f"{paths[0]}['{t.name}']" for t in inputs]
    elif len(paths) == len(inputs):
        arrays = [_load_npy(p) for p in paths]
        where = [str(p) for p in paths]
    else:
        raise TinycError(f"the model has {len(inputs)} inputs ({names}) and {len(paths)} input files were given; "
                         "give one .npz with an array per input name, or --input once per input, in order")
    per_input = [_samples_of(a, t, w) for a, t, w in zip(arrays, inputs, where)]
    counts = {len(a) for a in per_input}
    if len(counts) > 1:
        raise TinycError(f"the inputs hold different numbers of samples ({sorted(counts)}); give the same N for each")
    return [[a[i] for a in per_input] for i in range(counts.pop() if counts else 0)]


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise TinycError(f"cannot read {path} as a .npy file: {why}") from None
    if not isinstance(arr, np.ndarray):   # an .npz archive given where a .npy belongs
        names = ", ".join(arr.files[:5]) or "none"
        arr.close()
        raise TinycError(f"{path} is a .npz archive (arrays: {names}) given with other input files; give one "
                         ".npz with an array per input name, or one .npy of [N, *input_shape] per input")
    return arr


def _npz_arrays(path: Path, inputs: list[TensorInfo]) -> list[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise TinycError(f"cannot read {path} as a .npz file: {why}") from None
    arrays = []
    for k, t in enumerate(inputs):
        key = t.name if t.name in data else f"input{k}" if f"input{k}" in data else None
        if key is None:
            raise TinycError(f"{path} has no array for input {k} '{t.name}' (it holds {sorted(data)}); "
                             f"name each array after its input, or input{k}")
        arrays.append(data[key])
    return arrays


def _samples_of(arr: np.ndarray, t: TensorInfo, where: str) -> np.ndarray:
    """[N, *input_shape] samples of one input from an array of [N, *per_sample] or one sample."""
    if arr.size == 0:
        raise TinycError(f"{where} holds no samples (shape {list(arr.shape)}); give at least one")
    shape, dtype = tuple(t.shape), np.dtype(t.dtype)
    if arr.dtype != dtype and t.scale is None and arr.dtype.kind in "iu" and dtype.kind in "iu":
        # plain integers (indices; numpy's default int64): any integer type whose values fit
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise TinycError(f"{where} holds values in [{arr.min()}, {arr.max()}]; the model's input '{t.name}' is "
                             f"{dtype}: give values in [{info.min}, {info.max}]")
        arr = arr.astype(dtype)
    if arr.dtype != dtype:
        how = (f"quantize with scale {t.scale} and zero point {t.zero_point}" if t.scale is not None
               else f"whole numbers as {dtype}")
        raise TinycError(f"{where} holds {arr.dtype} values; the model's input '{t.name}' is {dtype}: convert the "
                         f"data (e.g. {how})")
    per_sample = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    if tuple(arr.shape) == shape:
        arr = arr.reshape((1, *per_sample))
    if tuple(arr.shape[1:]) == shape:  # [N, *input_shape], batch dimension included
        arr = arr.reshape((arr.shape[0], *per_sample))
    if arr.ndim == 0 or tuple(arr.shape[1:]) != tuple(per_sample):
        raise TinycError(f"{where} has shape {list(arr.shape)}; input '{t.name}' takes "
                         f"[N, {', '.join(map(str, per_sample))}] (input shape {list(shape)})")
    return arr.reshape((arr.shape[0], *shape))


def to_record(sample: list[np.ndarray]) -> bytes:
    return b"".join(np.ascontiguousarray(a).tobytes() for a in sample)


def from_record(data: bytes, outputs: list[TensorInfo]) -> list[np.ndarray]:
    arrays, off = [], 0
    for t in outputs:
        n = t.bytes
        arrays.append(np.frombuffer(data[off:off + n], dtype=np.dtype(t.dtype)).reshape(t.shape).copy())
        off += n
    return arrays


def input_ranges(graph) -> list[tuple[float, float] | None]:
    """The values worth drawing for each graph input, or None: for a float input feeding a
    QUANTIZE, the real range that op's int8 output covers; for an integer input read as
    indices, [0, n - 1] with n the smallest table it indexes (index_bounds)."""
    bounds = index_bounds(graph)
    return [_quantized_range(graph, t) if graph.tensors[t].dtype == "float32"
            else (0, bounds[t][1] - 1) if t in bounds else None for t in graph.inputs]


def _quantized_range(graph, t: int) -> tuple[float, float] | None:
    for op in graph.ops:
        if op.kind == "QUANTIZE" and op.inputs and op.inputs[0] == t:
            q = graph.tensors[op.outputs[0]].quant
            if q is None or q.per_axis:
                return None
            lo, hi = (-128, 127) if graph.tensors[op.outputs[0]].dtype == "int8" else (0, 255)
            return (lo - q.zp) * q.s, (hi - q.zp) * q.s
    return None


# Ops that pass an integer tensor's values on unchanged on the way from a model input to a
# GATHER's indices; SELECT (choosing among such tensors) and an unquantized ADD are the
# Embedding's negative-index wrap, SELECT(i < 0, i + n, i).
_INDEX_CARRIERS = ("CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS")
_INDEX_WRAP = ("SELECT", "SELECT_V2", "ADD")


def index_bounds(graph) -> dict[int, tuple[int, int]]:
    """Integer graph input -> (lowest, n): its values in [lowest, n) are in range for every
    GATHER whose indices it becomes, n the rows of the smallest such axis; lowest is -n where
    each such path wraps negative indices (an Embedding's), else 0."""
    consumers: dict[int, list] = {}
    for op in graph.ops:
        for k, t in enumerate(op.inputs):
            consumers.setdefault(t, []).append((op, k))
    bounds: dict[int, tuple[int, int]] = {}
    for source in (t for t in graph.inputs if np.issubdtype(np_dtype(graph.tensors[t].dtype), np.integer)):
        seen, todo = set(), [(source, False)]
        while todo:
            t, wrapped = todo.pop()
            if (t, wrapped) in seen:
                continue
            seen.add((t, wrapped))
            for op, k in consumers.get(t, []):
                if op.kind == "GATHER" and k == 1:
                    x = graph.tensors[op.inputs[0]]
                    n = int(x.shape[int(op.attrs.get("axis", 0)) % max(len(x.shape), 1)])
                    lowest, rows = bounds.get(source, (-n, n))
                    bounds[source] = (max(lowest, -n if wrapped else 0), min(rows, n))
                elif op.kind in _INDEX_CARRIERS or (op.kind in _INDEX_WRAP and
                                                    graph.tensors[op.outputs[0]].quant is None):
                    todo.extend((o, wrapped or op.kind in ("SELECT", "SELECT_V2")) for o in op.outputs)
    return bounds


def check_index_inputs(samples: list[list[np.ndarray]], graph, inputs: list[TensorInfo]) -> None:
    """Refuse samples whose index inputs leave the tables they look up (index_bounds): the
    reference fails on them, and the generated C clamps them."""
    bounds = index_bounds(graph)
    for k, t in enumerate(graph.inputs):
        lowest, rows = bounds.get(t, (None, None))
        for i, sample in enumerate(samples if rows is not None else []):
            bad = sample[k][(sample[k] < lowest) | (sample[k] >= rows)]
            if bad.size:
                raise TinycError(f"sample {i} of input '{inputs[k].name}' holds index {int(bad.flat[0])}, outside "
                                 f"[{lowest}, {rows}) of the {rows}-row table it looks up (the reference fails on it): "
                                 "give in-range indices")


def shape_inputs(graph) -> dict[int, np.ndarray]:
    """Graph inputs that are a TRANSPOSE_CONV's output_shape: the model declares that shape
    statically (the output tensor's), which is the only value it runs with. Input index ->
    that shape, for samples."""
    fixed = {}
    for op in graph.ops:
        if op.kind == "TRANSPOSE_CONV" and op.inputs and op.inputs[0] in graph.inputs:
            fixed[graph.inputs.index(op.inputs[0])] = np.array(graph.tensors[op.outputs[0]].shape, dtype=np.int32)
    return fixed
