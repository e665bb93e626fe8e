"""The serial protocol, host side (the board side is firmware/common/tinyc_server.c).

Frame on the wire: 0x00 (sync), COBS(type u8, seq u8, version u8, flags u8, length u32,
payload, crc32 u32), 0x00. COBS (consistent overhead byte stuffing) leaves no 0x00 inside
a frame, so after garbage, a dropped byte or a corrupted frame the next 0x00 puts both
ends back in step; no length field has to be trusted to find the next frame. The CRC is
CRC-32/IEEE (zlib.crc32) over header and payload. All integers are little-endian.

The host talks first and always handshakes (HELLO until a valid reply): a board may still
be booting, and an STM32 USART drops bytes that arrive before it is enabled. A request
whose reply does not come within the timeout is sent again (same seq); late replies to
an earlier request are recognised by their seq and dropped.

Over a TCP transport set TCP_NODELAY, or every small frame waits ~40 ms (Nagle + delayed
ACK).
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field

from tinyc.errors import TinycError

PROTO_VERSION = 1
HEADER = struct.Struct("<BBBBI")  # type, seq, version, flags, length

T_HELLO = 0x01
T_INFER = 0x02
T_EXIT = 0x03
T_HELLO_REPLY = 0x81
T_RESULT = 0x82
T_BYE = 0x83
T_ERROR = 0xE0

TYPE_NAMES = {T_HELLO: "HELLO", T_INFER: "INFER", T_EXIT: "EXIT", T_HELLO_REPLY: "HELLO-reply",
              T_RESULT: "RESULT", T_BYE: "BYE", T_ERROR: "ERROR"}

ERROR_NAMES = {1: "bad INFER length", 2: "unknown frame type", 3: "inference failed", 4: "fault"}

CYCLE_SOURCES = {0: "none", 1: "systick", 2: "dwt", 3: "clock"}


# ---------------------------------------------------------------------------- COBS

def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data` (no delimiter added)."""
    out = bytearray()
    pos = 0
    n = len(data)
    while True:
        zero = data.find(b"\x00", pos, pos + 254)
        if zero < 0:
            block = data[pos:pos + 254]
            if len(block) == 254:
                out.append(0xFF)
                out += block
                pos += 254
                if pos == n:
                    return bytes(out)  # a full block at the end: no trailing code byte
                continue
            out.append(len(block) + 1)
            out += block
            return bytes(out)
        out.append(zero - pos + 1)
        out += data[pos:zero]
        pos = zero + 1


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS block sequence (no delimiters). Raises ValueError if it is broken."""
    out = bytearray()
    pos = 0
    n = len(data)
    while pos < n:
        code = data[pos]
        if code == 0:
            raise ValueError("zero byte inside a COBS frame")
        end = pos + code
        if end > n:
            raise ValueError("COBS block runs past the end of the frame")
        out += data[pos + 1:end]
        pos = end
        if code != 0xFF and pos < n:
            out.append(0)
    return bytes(out)


# ---------------------------------------------------------------------------- frames

@dataclass
class Frame:
    type: int
    seq: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.type, f"0x{self.type:02x}")


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    body = HEADER.pack(ftype, seq & 0xFF, PROTO_VERSION, 0, len(payload)) + payload
    body += struct.pack("<I", zlib.crc32(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


def decode_frame(encoded: bytes) -> Frame | None:
    """One chunk between two 0x00 bytes -> Frame, or None when it is not a valid frame."""
    try:
        body = cobs_decode(encoded)
    except ValueError:
        return None
    if len(body) < HEADER.size + 4:
        return None
    ftype, seq, version, _flags, length = HEADER.unpack_from(body)
    if version != PROTO_VERSION or length != len(body) - HEADER.size - 4:
        return None
    if zlib.crc32(body[:-4]) != struct.unpack_from("<I", body, len(body) - 4)[0]:
        return None
    return Frame(ftype, seq, body[HEADER.size:-4])


class FrameReader:
    """Splits a byte stream into frames; anything that does not decode is counted and dropped."""

    MAX_CHUNK = 1 << 26

    def __init__(self):
        self.buf = bytearray()
        self.dropped = 0   # chunks that were not valid frames (garbage, damaged frames)

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        frames = []
        while True:
            i = self.buf.find(0)
            if i < 0:
                if len(self.buf) > self.MAX_CHUNK:  # no sync for ages: junk
                    self.buf.clear()
                    self.dropped += 1
                return frames
            chunk = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if not chunk:
                continue
            frame = decode_frame(chunk)
            if frame is None:
                self.dropped += 1
            else:
                frames.append(frame)


# ---------------------------------------------------------------------------- payloads

@dataclass
class BoardInfo:
    """What the board says about itself in its HELLO reply."""
    proto_version: int
    cycle_source: str
    num_layers: int
    model_hash: str
    input_bytes_total: int
    output_bytes_total: int
    arena_bytes: int
    cycle_hz: int
    input_bytes: list[int]
    output_bytes: list[int]
    meta: dict = field(default_factory=dict)

    @property
    def board(self) -> str:
        return str(self.meta.get("board", "?"))


def parse_hello(payload: bytes) -> BoardInfo:
    import json
    if len(payload) < 40:
        raise TinycError(f"the board's HELLO reply is too short ({len(payload)} bytes): is it running tinyc firmware?")
    proto, csrc, nlayers = struct.unpack_from("<BBH", payload, 0)
    model_hash = payload[4:20].decode("ascii", "replace").strip()
    in_total, out_total, arena, cycle_hz = struct.unpack_from("<IIII", payload, 20)
    n_in, n_out, meta_len = struct.unpack_from("<BBH", payload, 36)
    off = 40
    sizes = list(struct.unpack_from(f"<{n_in + n_out}I", payload, off))
    off += 4 * (n_in + n_out)
    meta_raw = payload[off:off + meta_len]
    try:
        meta = json.loads(meta_raw.decode("utf-8")) if meta_raw else {}
    except ValueError:
        meta = {}
    return BoardInfo(proto, CYCLE_SOURCES.get(csrc, str(csrc)), nlayers, model_hash, in_total, out_total,
                     arena, cycle_hz, sizes[:n_in], sizes[n_in:], meta)


@dataclass
class RawResult:
    status: int
    ticks: int
    layer_ticks: list[int]
    output: bytes


def parse_result(payload: bytes, output_bytes: int) -> RawResult:
    if len(payload) < 16:
        raise TinycError(f"the board's RESULT frame is too short ({len(payload)} bytes)")
    status, lo, hi, nl, _ = struct.unpack_from("<iIIHH", payload, 0)
    layers = list(struct.unpack_from(f"<{nl}I", payload, 16))
    out = payload[16 + 4 * nl:]
    if len(out) != output_bytes:
        raise TinycError(f"the board sent {len(out)} output bytes, the model has {output_bytes}")
    return RawResult(status, lo | (hi << 32), layers, out)


def parse_error(payload: bytes) -> tuple[int, int, str]:
    if len(payload) < 8:
        return 0, 0, payload.decode("ascii", "replace")
    code, _, detail = struct.unpack_from("<HHI", payload, 0)
    return code, detail, payload[8:].decode("ascii", "replace")


class BoardError(TinycError):
    """The board answered with an ERROR frame."""

    def __init__(self, code: int, detail: int, message: str, port: str = ""):
        self.code, self.detail, self.board_message = code, detail, message
        where = f" on {port}" if port else ""
        super().__init__(f"the board{where} reported an error ({ERROR_NAMES.get(code, code)}): {message}")


class LinkTimeout(TinycError):
    """No valid reply within the timeout, after every retry."""


# ---------------------------------------------------------------------------- the link

class Link:
    """Request/reply over a byte stream with pyserial's interface (read(n), write(b),
    `timeout` attribute, optional `in_waiting`, `reset_input_buffer`)."""

    def __init__(self, stream, *, name: str = "", timeout: float = 10.0, retries: int = 5,
                 alive=None):
        self.stream = stream
        self.name = name or getattr(stream, "port", "") or "the link"
        self.timeout = timeout
        self.retries = retries
        self.alive = alive          # callable raising if the far end died (e.g. QEMU exited)
        self.reader = FrameReader()
        self.pending: list[Frame] = []
        self.seq = 0
        self.info: BoardInfo | None = None
        self.retransmits = 0
        self.last_rtt = 0.0         # send -> reply of the last request's answered attempt
        self.stale = 0              # replies to earlier requests, dropped

    # -- low level
    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def send(self, ftype: int, seq: int, payload: bytes = b"") -> None:
        try:
            self.stream.write(encode_frame(ftype, seq, payload))
            flush = getattr(self.stream, "flush", None)
            if flush is not None:
                flush()
        except OSError as exc:
            if self.alive is not None:
                self.alive()
            raise TinycError(f"cannot write to {self.name}: {exc}") from None

    def _read_some(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        self.stream.timeout = min(left, 0.2)
        waiting = getattr(self.stream, "in_waiting", 0) or 0
        return self.stream.read(max(1, min(waiting, 1 << 16)))

    def receive(self, deadline: float) -> Frame | None:
        """The next valid frame before `deadline` (monotonic seconds), or None."""
        while True:
            if self.pending:
                return self.pending.pop(0)
            if time.monotonic() >= deadline:
                return None
            try:
                data = self._read_some(deadline)
            except OSError as exc:  # pyserial's SerialException is an OSError
                if self.alive is not None:
                    self.alive()
                    time.sleep(0.2)  # the far end may be on its way out: let alive() see it
                    self.alive()
                raise TinycError(f"lost the link on {self.name}: {exc}") from None
            if data:
                self.pending.extend(self.reader.feed(data))
            elif self.alive is not None:
                self.alive()

    def request(self, ftype: int, payload: bytes, want: tuple[int, ...], *, timeout: float | None = None,
                retries: int | None = None) -> Frame:
        """Send a request and wait for its reply (a frame of a type in `want`, or ERROR,
        with the request's seq); resend on timeout."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        seq = self._next_seq()
        for attempt in range(retries + 1):
            if attempt:
                self.retransmits += 1
            sent = time.monotonic()
            self.send(ftype, seq, payload)
            deadline = sent + timeout
            while True:
                frame = self.receive(deadline)
                if frame is None:
                    break
                if frame.type == T_ERROR and frame.seq in (seq, 0):
                    code, detail, msg = parse_error(frame.payload)
                    raise BoardError(code, detail, msg, self.name)
                if frame.seq != seq or frame.type not in want:
                    self.stale += 1
                    continue
                self.last_rtt = time.monotonic() - sent
                return frame
        raise LinkTimeout(
            f"no valid {TYPE_NAMES.get(want[0], want[0])} from the board on {self.name} within {timeout:g} s "
            f"({retries + 1} tries): is the board running tinyc firmware and is the port right?")

    # -- protocol
    def handshake(self, *, timeout: float = 10.0, expect_hash: str | None = None,
                  ping_interval: float = 0.25) -> BoardInfo:
        """HELLO until a valid reply (the board may still be booting), then check the model."""
        deadline = time.monotonic() + timeout
        sent: set[int] = set()
        frame = None
        while frame is None:
            now = time.monotonic()
            if now >= deadline:
                raise LinkTimeout(f"no answer from a tinyc board on {self.name} within {timeout:g} s: "
                                  "check the port, the baud rate and that the firmware is flashed")
            seq = self._next_seq()
            sent.add(seq)
            self.send(T_HELLO, seq)
            # a reply to any ping of this handshake will do: on a slow link it may come
            # after the next ping has gone out
            ping_deadline = min(deadline, now + ping_interval)
            while True:
                got = self.receive(ping_deadline)
                if got is None:
                    break
                if got.type == T_HELLO_REPLY and got.seq in sent:
                    frame = got
                    break
                self.stale += 1
        info = parse_hello(frame.payload)
        if info.proto_version != PROTO_VERSION:
            raise TinycError(f"the board on {self.name} speaks protocol v{info.proto_version}, "
                             f"this tinyc speaks v{PROTO_VERSION}: rebuild and flash the firmware")
        if expect_hash is not None and info.model_hash != expect_hash:
            raise TinycError(
                f"the board on {self.name} runs model {info.model_hash}, expected {expect_hash}: "
                "flash the firmware built for this model (`tinyc flash OUTDIR --board ...`)")
        self.info = info
        return info

    def infer(self, data: bytes, *, timeout: float | None = None) -> RawResult:
        if self.info is None:
            raise TinycError("handshake with the board before sending work")
        if len(data) != self.info.input_bytes_total:
            raise TinycError(f"input is {len(data)} bytes, the model takes {self.info.input_bytes_total}")
        frame = self.request(T_INFER, bytes(data), (T_RESULT,), timeout=timeout)
        res = parse_result(frame.payload, self.info.output_bytes_total)
        return res

    def exit(self, *, timeout: float = 2.0) -> bool:
        """Ask the board's server to stop; True if it said BYE."""
        try:
            self.request(T_EXIT, b"", (T_BYE,), timeout=timeout, retries=1)
            return True
        except TinycError:
            return False
