"""Property-based tests (Hypothesis) of the link's byte-level parts: COBS, frame parsing,
the CRC check, the stream reader and the reply payload parsers, fed arbitrary bytes.

The documented error types: cobs_decode raises ValueError, parse_frame FrameError (a
ValueError), decode_frame and FrameReader never raise, the payload parsers TinycError.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinyc import link as L
from tinyc.errors import TinycError

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

frames = st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=700))


@SETTINGS
@given(st.binary(max_size=2000))
def test_cobs_round_trip(data):
    enc = L.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert L.cobs_decode(enc) == data


@SETTINGS
@given(st.binary(max_size=1200))
def test_cobs_decode_of_anything_is_bytes_or_value_error(data):
    try:
        out = L.cobs_decode(data)
    except ValueError:
        return
    assert isinstance(out, bytes) and len(out) <= len(data)


@SETTINGS
@given(frames)
def test_frame_round_trip(f):
    ftype, seq, payload = f
    wire = L.encode_frame(ftype, seq, payload)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert len(wire) == L.encoded_size(len(payload))
    got = L.parse_frame(wire[1:-1])
    assert (got.type, got.seq, got.payload, got.version) == (ftype, seq, payload, L.PROTO_VERSION)


def _well_formed(chunk: bytes, frame: L.Frame) -> bool:
    """The chunk is exactly the COBS encoding of that frame's header + payload + true CRC."""
    body = L.cobs_decode(chunk)
    header = L.HEADER.pack(frame.type, frame.seq, frame.version, body[3], len(frame.payload))
    return (body[:L.HEADER.size] == header and body[L.HEADER.size:-4] == frame.payload
            and struct.unpack("<I", body[-4:])[0] == zlib.crc32(body[:-4]) == frame.crc)


@SETTINGS
@given(st.binary(max_size=1200))
def test_parse_frame_of_anything_raises_only_frame_error_and_accepts_only_well_formed(chunk):
    try:
        frame = L.parse_frame(chunk)
    except L.FrameError as exc:
        assert exc.reason in ("cobs", "short", "length", "crc")
        assert L.decode_frame(chunk) is None
        return
    assert _well_formed(chunk, frame)


@SETTINGS
@given(frames, st.data())
def test_damaged_frame_is_never_accepted(f, data):
    """Any change to one byte, one dropped byte or one inserted byte: the frame is refused."""
    ftype, seq, payload = f
    chunk = bytearray(L.encode_frame(ftype, seq, payload)[1:-1])
    i = data.draw(st.integers(0, len(chunk) - 1))
    how = data.draw(st.sampled_from(["change", "drop", "insert"]))
    if how == "change":
        new = data.draw(st.integers(1, 255))
        assume(new != chunk[i])
        chunk[i] = new
    elif how == "drop":
        del chunk[i]
    else:
        chunk.insert(i, data.draw(st.integers(1, 255)))
    assert L.decode_frame(bytes(chunk)) is None


@SETTINGS
@given(st.lists(st.tuples(st.binary(max_size=60), frames), max_size=8), st.binary(max_size=60),
       st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_reader_finds_every_frame_between_any_noise_in_any_pieces(parts, tail, cuts):
    stream = bytearray()
    sent = []
    for noise, (ftype, seq, payload) in parts:
        stream += noise
        stream += L.encode_frame(ftype, seq, payload)
        sent.append((ftype, seq, payload))
    stream += tail
    reader = L.FrameReader()
    got = []
    pos, k = 0, 0
    while pos < len(stream):
        n = cuts[k % len(cuts)]
        got += reader.feed(bytes(stream[pos:pos + n]))
        pos, k = pos + n, k + 1
    # noise can only add a frame if it carries a valid CRC by chance (1 in 2**32)
    assert [(f.type, f.seq, f.payload) for f in got] == sent


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(1, 500), min_size=1, max_size=10))
def test_reader_on_anything_never_raises(data, cuts):
    reader = L.FrameReader()
    pos, k = 0, 0
    while pos < len(data):
        for frame in reader.feed(data[pos:pos + cuts[k % len(cuts)]]):
            assert isinstance(frame, L.Frame)
        pos, k = pos + cuts[k % len(cuts)], k + 1
    assert reader.crc_errors <= reader.dropped


@SETTINGS
@given(st.binary(max_size=400), st.integers(0, 300))
def test_payload_parsers_raise_only_tinyc_error(payload, out_bytes):
    for parse in (L.parse_hello, lambda p: L.parse_result(p, out_bytes)):
        try:
            parse(payload)
        except TinycError:
            pass
    code, detail, crc, msg = L.parse_error(payload)
    assert isinstance(msg, str)


@SETTINGS
@given(st.integers(0, 4), st.integers(0, 4), st.binary(max_size=100), st.data())
def test_hello_with_wrong_sizes_or_meta_is_refused_cleanly(n_in, n_out, meta, data):
    """A HELLO reply whose counts promise more sizes than it holds, or whose metadata is
    not a JSON object, is a TinycError or a BoardInfo, never a crash."""
    head = struct.pack("<BBH16sIIIIBBH", 2, 1, 3, b"0123456789abcdef", 4, 4, 8, 25_000_000, n_in, n_out, len(meta))
    sizes = data.draw(st.lists(st.integers(0, 2**32 - 1), max_size=n_in + n_out))
    payload = head + struct.pack(f"<{len(sizes)}I", *sizes) + meta
    try:
        info = L.parse_hello(payload)
    except TinycError:
        assert len(payload) < 40 + 4 * (n_in + n_out) + len(meta)
        return
    if len(sizes) == n_in + n_out:
        assert info.input_bytes + info.output_bytes == sizes
    assert isinstance(info.board, str)
