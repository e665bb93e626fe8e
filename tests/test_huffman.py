"""Canonical Huffman codes and the weight encodings: round trips, code optimality, sizes."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from tinyc.passes import encode as E
from tinyc.passes import huffman as H


def _huffman_cost(freqs: list[int]) -> int:
    """Total bits of an optimal prefix code: the sum of all merged weights (independent of H)."""
    if len(freqs) == 1:
        return freqs[0]
    heap = list(freqs)
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


def _adversarial() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    pruned = rng.normal(0, 25, 4000).clip(-128, 127).astype(np.int8)
    pruned[rng.random(4000) < 0.92] = 0
    runs = np.zeros(3000, np.int8)
    runs[[0, 1, 700, 2999]] = [3, -128, 127, -1]
    return {
        "random": rng.integers(-128, 128, 2000).astype(np.int8),
        "all_zeros": np.zeros(777, np.int8),
        "one_value": np.full(513, -37, np.int8),
        "all_256_values": rng.permutation(np.arange(-128, 128)).astype(np.int8),
        "long_zero_runs": runs,
        "pruned_92pct": pruned,
        "single_weight": np.array([5], np.int8),
        "last_only": np.concatenate([np.zeros(1000, np.int8), [9]]).astype(np.int8),
        "extremes": np.tile(np.array([-128, 127, 0, 0, 0, 0, 0, 0, 0], np.int8), 50),
    }


@pytest.mark.parametrize("name", list(_adversarial()))
@pytest.mark.parametrize("kind", E.KINDS)
def test_round_trip_every_encoding(name, kind):
    w = _adversarial()[name]
    enc = E.encode(w, kind)
    assert np.array_equal(E.decode(enc), w)


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("kind", ["sparse", "sparse_huffman"])
def test_round_trip_every_gap_width(kind, bits):
    w = _adversarial()["long_zero_runs"]
    enc = E.encode(w, kind, bits)
    assert enc.gap_bits == bits
    assert np.array_equal(E.decode(enc), w)


def test_fillers_bridge_long_gaps():
    w = np.zeros(100, np.int8)
    w[[0, 40, 99]] = [1, 2, 3]
    vals, gaps, fillers = E.sparse_entries(w, 3)   # gaps up to 7: a filler per 8 skipped
    # real gaps 0, 39, 58 -> 0 + 39 // 8 + 58 // 8 fillers
    assert fillers == 39 // 8 + 58 // 8
    assert gaps.max() <= 7
    assert np.count_nonzero(vals) == 3 and vals.size == 3 + fillers
    assert int((gaps + 1).sum()) - 1 == 99          # the last entry lands on the last weight


def test_code_lengths_are_optimal_and_prefix_free():
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(2, 257))
        freqs = {int(s): int(f) for s, f in zip(rng.choice(256, n, replace=False), rng.integers(1, 1000, n))}
        lengths = H.code_lengths(freqs)
        assert sum(2.0 ** -l for l in lengths.values()) <= 1.0
        cost = sum(freqs[s] * l for s, l in lengths.items())
        assert cost == _huffman_cost(list(freqs.values()))
        codes = H.table_from_lengths(lengths).codes()
        words = sorted(format(c, f"0{l}b") for c, l in codes.values())
        assert all(not b.startswith(a) for a, b in zip(words, words[1:]))


def test_length_limit_keeps_codes_decodable():
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    freqs = {i: f for i, f in enumerate(fib)}      # unlimited Huffman would need 29-bit codes
    lengths = H.code_lengths(freqs, max_len=H.MAX_CODE_LEN)
    assert max(lengths.values()) == H.MAX_CODE_LEN
    assert sum(2.0 ** -l for l in lengths.values()) <= 1.0
    syms = np.repeat(np.arange(30), np.minimum(fib, 50))
    table = H.table_from_lengths(lengths)
    stream = H.encode(syms, table)
    assert np.array_equal(H.decode(stream, table, syms.size), syms)   # codes > 8 bits use the slow path


def test_sizes_are_the_stored_arrays():
    w = _adversarial()["pruned_92pct"]
    for kind in E.KINDS:
        e = E.encode(w, kind)
        arrays = [a for a in (e.values, e.value_stream, e.gap_stream) if a is not None]
        tables = [t for t in (e.value_table, e.gap_table) if t is not None]
        stored = sum(max(a.size, 1) * a.itemsize for a in arrays) + \
            sum(t.c_header().nbytes + t.c_symbols().nbytes for t in tables)
        assert e.nbytes == stored


def test_auto_picks_the_smallest_and_forced_modes():
    w = _adversarial()["pruned_92pct"]
    chosen, sizes = E.choose(w, "auto")
    assert chosen.nbytes == min(sizes.values())
    assert sizes["raw"] == w.size
    assert E.choose(w, "sparse")[0].kind == "sparse"
    assert E.choose(w, "huffman")[0].kind in ("huffman", "sparse_huffman")
    assert E.choose(w, "raw")[0].kind == "raw"
    # a pruned tensor is far smaller sparse than raw
    assert sizes["sparse"] < 0.3 * sizes["raw"]
