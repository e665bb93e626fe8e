"""Weight encodings: raw int8, sparse (values + relative indices), Huffman, sparse + Huffman.

Every encoder works on the weight tensor flattened in the order its kernel consumes it
(`kernel_order`): FULLY_CONNECTED rows, CONV_2D filters (OHWI, one output channel after the
other), DEPTHWISE_CONV_2D one channel's taps after the other. The flat index runs across
rows/filters, so no per-row pointers are stored: the kernel walks the entries in order and
finishes a row/filter whenever the running position crosses its end.

sparse (Deep Compression, Han et al. 2016, section 3): the nonzero weights as int8 values
  and the gap before each (the number of zeros skipped) in `gap_bits` bits. A gap longer
  than 2^gap_bits - 1 is bridged by filler entries (gap = 2^gap_bits - 1, value 0).
huffman: every weight's byte Huffman-coded (canonical code, tinyc.passes.huffman).
sparse_huffman: the sparse entries with both values and gaps Huffman-coded.

Sizes are the bytes of the C arrays exactly as emitted (stream padding and code tables
included), so `auto` picks the smallest real footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyc.errors import TinycError
from tinyc.passes import huffman

KINDS = ("raw", "sparse", "huffman", "sparse_huffman")
CHOICES = ("auto", "raw", "sparse", "huffman")   # what --weights accepts
GAP_BITS = tuple(range(1, 9))


@dataclass
class Encoded:
    """One weight tensor in one encoding: the arrays the kernel reads, and their bytes."""

    kind: str
    size: int                          # number of weights
    gap_bits: int = 0
    entries: int = 0                   # sparse entries (nonzeros + fillers)
    fillers: int = 0
    values: np.ndarray | None = None   # raw / sparse: int8 values
    value_stream: np.ndarray | None = None   # Huffman-coded values (uint8, padded)
    value_table: huffman.HuffmanTable | None = None
    gap_stream: np.ndarray | None = None     # sparse: bit-packed gaps; sparse_huffman: Huffman-coded
    gap_table: huffman.HuffmanTable | None = None
    value_bits: int = 0                # payload bits of the values (without padding/tables)
    index_bits: int = 0                # payload bits of the indices

    @property
    def nbytes(self) -> int:
        n = 0
        if self.values is not None:
            n += max(int(self.values.size), 1)   # an empty C array is stored as one byte
        for s in (self.value_stream, self.gap_stream):
            if s is not None:
                n += int(s.size)
        for t in (self.value_table, self.gap_table):
            if t is not None:
                n += t.table_bytes()
        return n

    def summary(self) -> dict:
        return {"kind": self.kind, "bytes": self.nbytes, "gap_bits": self.gap_bits, "entries": self.entries,
                "fillers": self.fillers, "value_bits": self.value_bits, "index_bits": self.index_bits,
                "lut_bits": [t.lut_bits() for t in (self.value_table, self.gap_table) if t is not None],
                "max_code_len": [t.max_len for t in (self.value_table, self.gap_table) if t is not None]}


def kernel_order(op_kind: str, w: np.ndarray) -> np.ndarray:
    """The weights as [units, per_unit] in the order the kernel consumes them."""
    if op_kind == "DEPTHWISE_CONV_2D":   # [1, H, W, C] -> one channel's taps after the other
        return np.ascontiguousarray(w.reshape(-1, w.shape[-1]).T)
    return np.ascontiguousarray(w.reshape(w.shape[0], -1))


def _symbols(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int8).view(np.uint8).astype(np.int64)


def sparse_entries(flat: np.ndarray, gap_bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(values int8, gaps, fillers) with Deep Compression's filler zeros for long gaps."""
    flat = np.asarray(flat, dtype=np.int8).reshape(-1)
    pos = np.flatnonzero(flat)
    gaps = np.diff(np.concatenate([[-1], pos])) - 1
    step = 1 << gap_bits                       # a filler advances gap_max + 1 positions
    nfill = gaps // step
    rest = gaps - nfill * step
    reps = nfill + 1
    total = int(reps.sum())
    out_gaps = np.full(total, step - 1, dtype=np.int64)
    out_vals = np.zeros(total, dtype=np.int8)
    last = np.cumsum(reps) - 1                 # each real entry comes after its fillers
    out_gaps[last] = rest
    out_vals[last] = flat[pos]
    return out_vals, out_gaps, int(nfill.sum())


def encode(flat: np.ndarray, kind: str, gap_bits: int | None = None) -> Encoded:
    """Encode the flat int8 weights in `kind`; for sparse kinds the best gap width unless given."""
    flat = np.asarray(flat, dtype=np.int8).reshape(-1)
    n = int(flat.size)
    if kind == "raw":
        return Encoded("raw", n, values=flat.copy(), value_bits=8 * n)
    if kind == "huffman":
        sym = _symbols(flat)
        table = huffman.build_table(sym)
        bits = huffman.encoded_bits(sym, table)
        return Encoded("huffman", n, value_stream=huffman.encode(sym, table), value_table=table, value_bits=bits)
    if kind in ("sparse", "sparse_huffman"):
        if gap_bits is None:
            return min((encode(flat, kind, b) for b in GAP_BITS), key=lambda e: (e.nbytes, -e.gap_bits))
        vals, gaps, fillers = sparse_entries(flat, gap_bits)
        m = int(vals.size)
        if kind == "sparse":
            stream = huffman.pack_bits(gaps, np.full(m, gap_bits))
            return Encoded("sparse", n, gap_bits, m, fillers, values=vals, gap_stream=stream,
                           value_bits=8 * m, index_bits=gap_bits * m)
        vsym = _symbols(vals)
        vt, gt = huffman.build_table(vsym), huffman.build_table(gaps)
        vbits, gbits = huffman.encoded_bits(vsym, vt), huffman.encoded_bits(gaps, gt)
        return Encoded("sparse_huffman", n, gap_bits, m, fillers,
                       value_stream=huffman.encode(vsym, vt), value_table=vt,
                       gap_stream=huffman.encode(gaps, gt), gap_table=gt, value_bits=vbits, index_bits=gbits)
    raise TinycError(f"unknown weight encoding '{kind}'; choose one of {', '.join(KINDS)}")


def candidates(flat: np.ndarray) -> dict[str, Encoded]:
    return {k: encode(flat, k) for k in KINDS}


def valid_mode(mode: str) -> bool:
    return mode in CHOICES or mode == "smallest" or (mode.startswith("kind:") and mode[5:] in KINDS)


def choose(flat: np.ndarray, mode: str = "auto") -> tuple[Encoded, dict[str, int]]:
    """The encoding for `--weights mode` and the bytes of every candidate.

    auto: the smallest of all four (tinyc.passes.compress also weighs the decoding time).
    sparse: the sparse list (int8 values + packed gaps).
    huffman: Huffman-coded values, with Huffman-coded gaps when that sparse form is smaller
    (a pruned tensor). raw: unchanged. "kind:K" forces exactly the encoding K; "smallest" is
    auto without the time limit (benchmarks).
    """
    if not valid_mode(mode):
        raise TinycError(f"--weights {mode}: choose one of {', '.join(CHOICES)}")
    cands = candidates(flat)
    return pick(cands, mode), {k: e.nbytes for k, e in cands.items()}


def pick(cands: dict[str, Encoded], mode: str) -> Encoded:
    """The candidate `--weights mode` selects (see choose)."""
    sizes = {k: e.nbytes for k, e in cands.items()}
    if mode.startswith("kind:"):   # one exact kind (tests, benchmarks)
        best = mode[5:]
    elif mode in ("auto", "smallest"):
        best = min(KINDS, key=lambda k: (sizes[k], KINDS.index(k)))
    elif mode == "huffman":
        best = min(("huffman", "sparse_huffman"), key=lambda k: (sizes[k], k))
    else:
        best = mode
    return cands[best]


def decode(enc: Encoded) -> np.ndarray:
    """The flat int8 weights back from an encoding (the C kernels' reading, in Python)."""
    n = enc.size
    if enc.kind == "raw":
        return np.asarray(enc.values, dtype=np.int8).copy()
    if enc.kind == "huffman":
        sym = huffman.decode(enc.value_stream, enc.value_table, n)
        return sym.astype(np.uint8).view(np.int8)
    if enc.kind == "sparse":
        br = huffman.BitReader(enc.gap_stream)
        gaps = np.asarray([br.read(enc.gap_bits) for _ in range(enc.entries)], dtype=np.int64)
        vals = np.asarray(enc.values[:enc.entries], dtype=np.int8)
    elif enc.kind == "sparse_huffman":
        gaps = huffman.decode(enc.gap_stream, enc.gap_table, enc.entries)
        vals = huffman.decode(enc.value_stream, enc.value_table, enc.entries).astype(np.uint8).view(np.int8)
    else:
        raise TinycError(f"unknown weight encoding '{enc.kind}'")
    out = np.zeros(n, dtype=np.int8)
    pos = np.cumsum(gaps + 1) - 1
    if pos.size and pos[-1] >= n:
        raise ValueError("sparse entries run past the end of the tensor")
    out[pos] = vals
    return out
