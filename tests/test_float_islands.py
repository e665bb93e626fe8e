"""Float islands the TFLite quantizer leaves around a movement op (DEQUANTIZE -> SPLIT float ->
QUANTIZE) are closed into int8 ops: the model stays the same function (exactly, or within the
1 LSB by which TFLite's float and fixed-point requantize roundings differ) and compiles
bit-exact."""

import numpy as np

from helpers import assert_bit_exact
from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph
from tinyc.ir import Graph, Op, QuantParams, Tensor
from tinyc.quantize.float_islands import close_float_islands, has_float_island
from tinyc.quantize.float_tflite import check_full_int8
from tinyc.reference import Reference

X_Q = QuantParams([0.0136], [3])
OTHER_Q = QuantParams([0.0211], [-5])   # a part the quantizer gave its own range


def island_graph() -> Graph:
    """X (int8 1x48) -> DEQUANTIZE -> SPLIT into 3 -> QUANTIZE parts 0 and 2; part 1 unread
    (what an unrolled GRU's first step leaves: its reset-gate slice has no reader)."""
    t = [Tensor("x", (1, 48), "int8", X_Q),
         Tensor("axis", (), "int32", None, np.array(1, np.int32)),
         Tensor("x_float", (1, 48), "float32"),
         Tensor("part0", (1, 16), "float32"), Tensor("part1", (1, 16), "float32"), Tensor("part2", (1, 16), "float32"),
         Tensor("part0_q", (1, 16), "int8", X_Q),        # same parameters as x: the QUANTIZE goes
         Tensor("part2_q", (1, 16), "int8", OTHER_Q),    # different: it stays, as a requantize
         Tensor("part0_relu", (1, 16), "int8", X_Q)]
    ops = [Op("DEQUANTIZE", [0], [2], {}, "dequantize"),
           Op("SPLIT", [1, 2], [3, 4, 5], {"num_splits": 3, "_options": "SplitOptionsT"}, "split"),
           Op("QUANTIZE", [3], [6], {}, "quantize0"),
           Op("QUANTIZE", [5], [7], {}, "quantize2"),
           Op("RELU", [6], [8], {}, "relu")]
    return Graph(t, ops, [0], [8, 7])


def _run(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    return Reference(model).run(x)


def test_island_is_closed_into_int8_ops_with_the_same_function(tmp_path):
    g = island_graph()
    assert has_float_island(g)
    closed = close_float_islands(g)
    assert not has_float_island(closed)
    kinds = [op.kind for op in closed.ops]
    assert kinds == ["SPLIT", "QUANTIZE", "RELU"], kinds
    island_bytes, closed_bytes = graph_to_tflite(g), graph_to_tflite(closed)
    check_full_int8(closed_bytes)
    written = tflite_to_graph(closed_bytes)
    live = {x for op in written.ops for x in op.inputs + op.outputs if x >= 0}
    assert all(written.tensors[x].dtype != "float32" for x in live)

    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(-128, 128, (1, 48), dtype=np.int8)
        want, got = _run(island_bytes, x), _run(closed_bytes, x)
        assert np.array_equal(want[0], got[0])                 # part 0: a copy, exact
        assert np.max(np.abs(want[1].astype(int) - got[1].astype(int))) <= 1   # part 2: requantized


def test_closed_island_compiles_bit_exact(tmp_path):
    assert_bit_exact(graph_to_tflite(close_float_islands(island_graph())), tmp_path, n_random=30)


def test_graph_without_island_is_returned_unchanged():
    g = island_graph()
    g.ops[3] = Op("TANH", [5], [7], {}, "float_reader")   # a float reader: not a movement island
    assert not has_float_island(g)
    assert close_float_islands(g) is g
