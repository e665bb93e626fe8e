"""Property tests of what users hand tinyc as files: any tinyc.json and any .npy either
load or raise a one-line TinycError, never anything else (the link's frame parser has its
own, tests/test_link_props.py)."""

from __future__ import annotations

import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyc.errors import TinycError
from tinyc.outdir import MANIFEST, TensorInfo, load_manifest
from tinyc.samples import load_inputs

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)

GOOD = {
    "tinyc_version": "0.1.0", "board": "host", "model_hash": "0123456789abcdef", "source": None,
    "ops": ["FULLY_CONNECTED"], "arena_bytes": 16, "arena_order": "size", "weight_bytes": 80, "code_bytes": None,
    "macs": 64,
    "inputs": [{"name": "in", "shape": [1, 8], "dtype": "int8", "bytes": 8, "scale": 0.5, "zero_point": 0}],
    "outputs": [{"name": "out", "shape": [1, 8], "dtype": "int8", "bytes": 8, "scale": 0.25, "zero_point": -3}],
    "layers": [{"index": 0, "name": "fc", "op": "FULLY_CONNECTED", "macs": 64}],
}


def _paths(d: dict, prefix=()):
    """Every (path of keys/indices) inside a JSON object."""
    for k, v in (d.items() if isinstance(d, dict) else enumerate(d)):
        yield prefix + (k,)
        if isinstance(v, (dict, list)):
            yield from _paths(v, prefix + (k,))


PATHS = list(_paths(GOOD))


def _load(tmp_path, text_or_bytes):
    (tmp_path / MANIFEST).write_bytes(text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode())
    try:
        m = load_manifest(tmp_path)
    except TinycError as exc:
        assert "\n" not in str(exc) and "tinyc.json" in str(exc)
        return None
    # whatever loads is usable: sizes agree with shapes and dtypes
    for t in m.inputs + m.outputs:
        assert t.bytes == int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
    return m


def test_the_good_manifest_loads(tmp_path):
    assert _load(tmp_path, json.dumps(GOOD)) is not None


@SETTINGS
@given(json_values)
def test_any_json_document(tmp_path, value):
    _load(tmp_path, json.dumps(value))


@SETTINGS
@given(st.binary(max_size=64))
def test_any_bytes(tmp_path, data):
    _load(tmp_path, data)


@SETTINGS
@given(st.sampled_from(PATHS), json_values, st.booleans())
def test_one_field_replaced_or_removed(tmp_path, path, value, remove):
    d = json.loads(json.dumps(GOOD))
    node = d
    for k in path[:-1]:
        node = node[k]
    if remove:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    _load(tmp_path, json.dumps(d))


# ----------------------------------------------------------------------------- .npy inputs

INPUT = [TensorInfo("in", [1, 4, 3], "int8", 12, 0.5, 0)]

arrays = hnp.arrays(
    dtype=st.sampled_from([np.int8, np.uint8, np.int16, np.float32, np.float64, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))


@SETTINGS
@given(arrays)
def test_any_npy_array(tmp_path, arr):
    path = tmp_path / "x.npy"
    np.save(path, arr)
    try:
        samples = load_inputs(path, INPUT)
    except TinycError as exc:
        assert "\n" not in str(exc)
        return
    assert samples and all(s[0].shape == (1, 4, 3) and s[0].dtype == np.int8 for s in samples)


@SETTINGS
@given(st.binary(max_size=200), st.booleans())
def test_any_npy_bytes(tmp_path, data, with_magic):
    path = tmp_path / "x.npy"
    if with_magic:   # a header that looks right, then anything
        buf = io.BytesIO()
        np.save(buf, np.zeros((2, 4, 3), np.int8))
        data = buf.getvalue()[:len(data) % 140] + data
    path.write_bytes(data)
    try:
        samples = load_inputs(path, INPUT)
    except TinycError as exc:
        assert "\n" not in str(exc)
        return
    assert all(s[0].shape == (1, 4, 3) for s in samples)
