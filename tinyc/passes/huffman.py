"""Canonical Huffman codes for weight streams, and the table the generated C decodes with.

A code is described by its code lengths only (canonical Huffman, as DEFLATE): symbols are
sorted by (length, symbol) and codes are handed out in that order, counting up. What the C
decoder needs is therefore small: `counts[len]` (how many codes have each length, len 1..L)
and the symbols in canonical order. The bit stream is MSB-first and padded with
`STREAM_PAD` zero bytes so that the decoder's 32-bit refill never reads past the array.

Decoding (in Python here and in templates/ops/weights_huffman_decode.c.j2): peek
`lut_bits` bits and look them up in a table built at run time from `counts`/`symbols`
(symbol and length per entry); codes longer than `lut_bits` fall back to the canonical
per-length walk (puff.c's algorithm). Symbols are 0..255 (an int8 weight is coded as its
byte, a gap as its value).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

MAX_CODE_LEN = 16   # the decoder keeps >= 16 bits in its buffer before each code
LUT_BITS = 8        # first-level lookup table: 2^8 entries of uint16 (symbol | length << 8)
STREAM_PAD = 4      # zero bytes after each stream: the refill reads up to 4 bytes ahead


@dataclass
class HuffmanTable:
    """A canonical code: counts[l] codes of length l (l = 1..max_len), symbols in code order."""

    counts: list[int]      # counts[0] unused (0), counts[1..max_len]
    symbols: list[int]     # canonical order

    @property
    def max_len(self) -> int:
        return len(self.counts) - 1

    def lengths(self) -> dict[int, int]:
        out, k = {}, 0
        for length in range(1, self.max_len + 1):
            for _ in range(self.counts[length]):
                out[self.symbols[k]] = length
                k += 1
        return out

    def codes(self) -> dict[int, tuple[int, int]]:
        """symbol -> (code, length), assigned canonically."""
        out, code, k = {}, 0, 0
        for length in range(1, self.max_len + 1):
            for _ in range(self.counts[length]):
                out[self.symbols[k]] = (code, length)
                code += 1
                k += 1
            code <<= 1
        return out

    def c_header(self) -> np.ndarray:
        """The int16 array the C decoder reads: [max_len, counts[1..max_len]]."""
        return np.asarray([self.max_len, *self.counts[1:]], dtype=np.int16)

    def c_symbols(self) -> np.ndarray:
        """The symbols as the C stores them (one unused byte for an empty code: C has no
        zero-length arrays)."""
        return np.asarray(self.symbols or [0], dtype=np.uint8)

    def table_bytes(self) -> int:
        """Flash bytes of the table as the C stores it (int16 header + uint8 symbols)."""
        return 2 * (self.max_len + 1) + max(len(self.symbols), 1)

    def lut_bits(self) -> int:
        return min(self.max_len, LUT_BITS)


def code_lengths(freqs: dict[int, int], max_len: int = MAX_CODE_LEN) -> dict[int, int]:
    """Huffman code lengths for symbols with nonzero frequency, limited to max_len bits.

    One symbol alone gets a 1-bit code (a code needs at least one bit to be decodable).
    Over-long codes are clipped to max_len and the Kraft sum is then restored by lengthening
    the cheapest shorter codes (least frequent first), which keeps the code prefix-free.
    """
    syms = sorted(s for s, f in freqs.items() if f > 0)
    if not syms:
        return {}
    if len(syms) == 1:
        return {syms[0]: 1}
    if len(syms) > (1 << max_len):
        raise ValueError(f"{len(syms)} symbols do not fit codes of at most {max_len} bits")
    # Standard Huffman: merge the two least frequent; ties broken by a counter (deterministic).
    heap = [(freqs[s], i, [s]) for i, s in enumerate(syms)]
    heapq.heapify(heap)
    depth = {s: 0 for s in syms}
    counter = len(syms)
    while len(heap) > 1:
        f1, _, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (f1 + f2, counter, a + b))
        counter += 1
    if max(depth.values()) <= max_len:
        return depth
    lengths = {s: min(d, max_len) for s, d in depth.items()}
    limit = 1 << max_len   # Kraft sum in units of 2^-max_len

    def kraft():
        return sum(1 << (max_len - l) for l in lengths.values())

    while kraft() > limit:
        # lengthen the least frequent symbol among the longest codes still shorter than max_len
        cands = [s for s in syms if lengths[s] < max_len]
        longest = max(lengths[s] for s in cands)
        s = min((s for s in cands if lengths[s] == longest), key=lambda s: (freqs[s], s))
        lengths[s] += 1
    return lengths


def table_from_lengths(lengths: dict[int, int]) -> HuffmanTable:
    if not lengths:
        return HuffmanTable([0, 0], [])
    max_len = max(lengths.values())
    counts = [0] * (max_len + 1)
    for l in lengths.values():
        counts[l] += 1
    symbols = [s for s, _ in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0]))]
    return HuffmanTable(counts, symbols)


def build_table(symbols: np.ndarray) -> HuffmanTable:
    """The canonical code for a stream of symbols (ints 0..255)."""
    values, freqs = np.unique(np.asarray(symbols, dtype=np.int64), return_counts=True)
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError("Huffman symbols must be 0..255")
    return table_from_lengths(code_lengths({int(v): int(f) for v, f in zip(values, freqs)}))


def encoded_bits(symbols: np.ndarray, table: HuffmanTable) -> int:
    lengths = table.lengths()
    values, freqs = np.unique(np.asarray(symbols, dtype=np.int64), return_counts=True)
    return int(sum(lengths[int(v)] * int(f) for v, f in zip(values, freqs)))


def pack_bits(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate codes (MSB first) of the given lengths into bytes, padded as stored."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    total = int(lengths.sum())
    bits = np.zeros(total, dtype=np.uint8)
    if total:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        for j in range(int(lengths.max())):
            m = lengths > j
            bits[starts[m] + j] = (codes[m] >> (lengths[m] - 1 - j)) & 1
    packed = np.packbits(bits) if total else np.zeros(0, dtype=np.uint8)
    return np.concatenate([packed, np.zeros(STREAM_PAD, dtype=np.uint8)])


def encode(symbols: np.ndarray, table: HuffmanTable) -> np.ndarray:
    """symbols -> the padded byte stream (uint8)."""
    codes = table.codes()
    sym = np.asarray(symbols, dtype=np.int64).reshape(-1)
    code_of = np.zeros(256, dtype=np.int64)
    len_of = np.zeros(256, dtype=np.int64)
    for s, (c, l) in codes.items():
        code_of[s], len_of[s] = c, l
    if sym.size and np.any(len_of[sym] == 0):
        raise ValueError("a symbol has no code in the table")
    return pack_bits(code_of[sym], len_of[sym])


class BitReader:
    """MSB-first reader with the C decoder's buffer discipline: a left-aligned 32-bit buffer,
    topped up by two bytes when fewer than 16 bits are left (Huffman codes) or by one byte
    when fewer than 8 are left (fixed-width gaps)."""

    def __init__(self, data: np.ndarray):
        self.data = bytes(np.asarray(data, dtype=np.uint8))
        self.pos = 0
        self.buf = 0
        self.nbits = 0

    def _byte(self) -> int:
        # Reading past the stored bytes would be a bug in the C: fail loudly here.
        b = self.data[self.pos]
        self.pos += 1
        return b

    def refill(self):
        if self.nbits < 16:
            self.buf |= (self._byte() << (24 - self.nbits)) | (self._byte() << (16 - self.nbits))
            self.nbits += 16

    def read(self, n: int) -> int:
        """n <= 8 bits."""
        if self.nbits < 8:
            self.buf |= self._byte() << (24 - self.nbits)
            self.nbits += 8
        v = self.buf >> (32 - n)
        self.buf = (self.buf << n) & 0xFFFFFFFF
        self.nbits -= n
        return v


def build_lut(table: HuffmanTable) -> list[int]:
    """The first-level table the C builds at run time: symbol | length << 8, 0 = longer code."""
    k = table.lut_bits()
    lut = [0] * (1 << k)
    for s, (c, l) in table.codes().items():
        if l <= k:
            first = c << (k - l)
            for i in range(first, first + (1 << (k - l))):
                lut[i] = s | (l << 8)
    return lut


def decode(data: np.ndarray, table: HuffmanTable, n: int) -> np.ndarray:
    """Decode n symbols exactly as the C decoder does (LUT, then the canonical walk)."""
    br = BitReader(data)
    k = table.lut_bits()
    lut = build_lut(table)
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        br.refill()
        e = lut[br.buf >> (32 - k)]
        if e >> 8:
            length = e >> 8
            out[i] = e & 0xFF
        else:
            first = index = 0
            for length in range(1, table.max_len + 1):
                code = br.buf >> (32 - length)
                count = table.counts[length]
                if code - first < count:
                    out[i] = table.symbols[index + code - first]
                    break
                index += count
                first = (first + count) << 1
            else:
                raise ValueError("invalid Huffman code in the stream")
        br.buf = (br.buf << length) & 0xFFFFFFFF
        br.nbits -= length
    return out
