"""The serial protocol, host side (the board side is firmware/common/tinyc_server.c).

Frame on the wire: 0x00 (sync), COBS(type u8, seq u8, version u8, flags u8, length u32,
payload, crc32 u32), 0x00. COBS (consistent overhead byte stuffing) leaves no 0x00 inside
a frame, so after garbage, a dropped byte or a corrupted frame the next 0x00 puts both
ends back in step; no length field has to be trusted to find the next frame. The CRC is
CRC-32/IEEE (zlib.crc32) over header and payload. All integers are little-endian.

The host talks first and always handshakes (HELLO until a valid reply): a board may still
be booting, and an STM32 USART drops bytes that arrive before it is enabled. A request
whose reply does not come within its deadline is sent again (same seq). Every RESULT and
ERROR (protocol v2) carries the CRC of the request it answers: a late reply to an earlier
request is dropped even when its 8-bit seq has come round again (256 requests later, or a
stale reply left in a board's UART by an interrupted session). RESULT also carries the
number of INFERs the board has served since start-up; when it goes down, the board was
reset. Retries, resyncs, CRC errors, stale replies and resets are counted in `Link.stats`.

A request's deadline is the time its frames take on the wire (10 bits a byte at the link's
baud rate) plus a compute allowance given by the caller: see `wire_seconds`.

Over a TCP transport set TCP_NODELAY, or every small frame waits ~40 ms (Nagle + delayed
ACK).
"""

from __future__ import annotations

import os
import select
import struct
import termios
import time
import zlib
from dataclasses import dataclass, field

from tinyc.errors import TinycError

# What a serial port whose far end went away raises: pyserial's write and read raise OSError
# (SerialException is one), its flush and buffer resets termios.error, which is not one.
PORT_ERRORS = (OSError, termios.error)
# Bytes written between two reads of the board's output while a frame goes out (Link.send).
SEND_CHUNK = 512

PROTO_VERSION = 2
HELLO_VERSION = 1       # HELLO goes out as v1: boards of every version answer it with their own version
HEADER = struct.Struct("<BBBBI")  # type, seq, version, flags, length
RESULT_HEAD = struct.Struct("<iQHHIII")  # status, ticks, #layers, 0, request crc, stack bytes, infer count
ERROR_HEAD = struct.Struct("<HHII")      # code, 0, detail, request crc
STACK_UNKNOWN = 0xFFFFFFFF
BITS_PER_BYTE = 10      # a UART byte: start bit, 8 data bits, stop bit

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

CYCLE_SOURCES = {0: "none", 1: "systick", 2: "dwt", 3: "clock", 4: "pmccntr"}


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

class FrameError(ValueError):
    """A chunk between two 0x00 bytes that is not a valid frame; `reason` says why:
    "cobs" (broken stuffing), "short", "length" (length field disagrees), "crc"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Frame:
    type: int
    seq: int
    payload: bytes = b""
    version: int = PROTO_VERSION
    crc: int = 0            # the frame's CRC field: what a reply quotes to name its request

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.type, f"0x{self.type:02x}")


def frame_body(ftype: int, seq: int, payload: bytes = b"", version: int = PROTO_VERSION) -> bytes:
    """The decoded frame: header, payload and CRC (before COBS)."""
    body = HEADER.pack(ftype, seq & 0xFF, version, 0, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def encode_frame(ftype: int, seq: int, payload: bytes = b"", version: int = PROTO_VERSION) -> bytes:
    return b"\x00" + cobs_encode(frame_body(ftype, seq, payload, version)) + b"\x00"


def encoded_size(payload_bytes: int) -> int:
    """Bytes on the wire of a frame with this payload: syncs, COBS overhead, header, CRC."""
    body = HEADER.size + payload_bytes + 4
    return body + body // 254 + 1 + 2


def wire_seconds(payload_bytes: int, baud: int | None) -> float:
    """Time a frame with this payload takes on a UART at `baud` (0 without a known baud)."""
    if not baud:
        return 0.0
    return encoded_size(payload_bytes) * BITS_PER_BYTE / baud


def parse_frame(encoded: bytes) -> Frame:
    """One chunk between two 0x00 bytes -> Frame; raises FrameError when it is not one.
    Frames of any protocol version are returned (the version is the caller's to judge)."""
    try:
        body = cobs_decode(encoded)
    except ValueError:
        raise FrameError("cobs") from None
    if len(body) < HEADER.size + 4:
        raise FrameError("short")
    ftype, seq, version, _flags, length = HEADER.unpack_from(body)
    if length != len(body) - HEADER.size - 4:
        raise FrameError("length")
    crc = struct.unpack_from("<I", body, len(body) - 4)[0]
    if zlib.crc32(body[:-4]) != crc:
        raise FrameError("crc")
    return Frame(ftype, seq, body[HEADER.size:-4], version, crc)


def decode_frame(encoded: bytes) -> Frame | None:
    """parse_frame, or None when the chunk is not a valid frame."""
    try:
        return parse_frame(encoded)
    except FrameError:
        return None


class FrameReader:
    """Splits a byte stream into frames; anything that does not decode is counted and dropped
    (each such chunk is a resync: the reader is back in step at the 0x00 that ended it)."""

    MAX_CHUNK = 1 << 26

    def __init__(self):
        self.buf = bytearray()
        self.dropped = 0      # chunks that were not valid frames (garbage, damaged frames)
        self.crc_errors = 0   # of those, well-formed chunks whose CRC did not match

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
            try:
                frames.append(parse_frame(chunk))
            except FrameError as exc:
                self.dropped += 1
                self.crc_errors += exc.reason == "crc"


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
    if len(payload) < off + 4 * (n_in + n_out) + meta_len:
        raise TinycError(f"the board's HELLO reply is truncated ({len(payload)} bytes for {n_in} input and "
                         f"{n_out} output sizes and {meta_len} bytes of metadata): is the link noisy?")
    sizes = list(struct.unpack_from(f"<{n_in + n_out}I", payload, off))
    off += 4 * (n_in + n_out)
    meta_raw = payload[off:off + meta_len]
    try:
        meta = json.loads(meta_raw.decode("utf-8")) if meta_raw else {}
    except ValueError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    return BoardInfo(proto, CYCLE_SOURCES.get(csrc, str(csrc)), nlayers, model_hash, in_total, out_total,
                     arena, cycle_hz, sizes[:n_in], sizes[n_in:], meta)


@dataclass
class RawResult:
    status: int
    ticks: int
    layer_ticks: list[int]
    output: bytes
    request_crc: int = 0          # CRC of the INFER frame this RESULT answers
    stack_bytes: int | None = None  # stack high-water mark of the inference; None: unknown
    infer_count: int = 0          # INFERs the board has served since start-up, this one included


def parse_result(payload: bytes, output_bytes: int) -> RawResult:
    if len(payload) < RESULT_HEAD.size:
        raise TinycError(f"the board's RESULT frame is too short ({len(payload)} bytes)")
    status, ticks, nl, _, request_crc, stack, count = RESULT_HEAD.unpack_from(payload, 0)
    if len(payload) < RESULT_HEAD.size + 4 * nl:
        raise TinycError(f"the board's RESULT frame is too short for {nl} layer counts ({len(payload)} bytes)")
    layers = list(struct.unpack_from(f"<{nl}I", payload, RESULT_HEAD.size))
    out = payload[RESULT_HEAD.size + 4 * nl:]
    if len(out) != output_bytes:
        raise TinycError(f"the board sent {len(out)} output bytes, the model has {output_bytes}")
    return RawResult(status, ticks, layers, out, request_crc, None if stack == STACK_UNKNOWN else stack, count)


def result_payload_bytes(num_layers: int, output_bytes: int) -> int:
    return RESULT_HEAD.size + 4 * num_layers + output_bytes


def parse_error(payload: bytes) -> tuple[int, int, int, str]:
    """(code, detail, request crc, message) of an ERROR payload."""
    if len(payload) < ERROR_HEAD.size:
        return 0, 0, 0, payload.decode("ascii", "replace")
    code, _, detail, request_crc = ERROR_HEAD.unpack_from(payload, 0)
    return code, detail, request_crc, payload[ERROR_HEAD.size:].decode("ascii", "replace")


class BoardError(TinycError):
    """The board answered with an ERROR frame."""

    def __init__(self, code: int, detail: int, message: str, port: str = ""):
        self.code, self.detail, self.board_message = code, detail, message
        where = f" on {port}" if port else ""
        super().__init__(f"the board{where} reported an error ({ERROR_NAMES.get(code, code)}): {message}")


class LinkTimeout(TinycError):
    """No valid reply within the deadline, after every retry."""


@dataclass
class LinkStats:
    """What the link survived; all zero on a clean link."""
    retries: int = 0       # requests sent again after their deadline passed
    resyncs: int = 0       # chunks between two 0x00 that were not frames (noise, damaged or split frames)
    crc_errors: int = 0    # of those, well-formed frames whose CRC failed
    stale: int = 0         # valid replies to an earlier request (old seq or request CRC), dropped
    resets: int = 0        # times the board was found restarted (its INFER count went down)

    def as_dict(self) -> dict:
        return {"retries": self.retries, "resyncs": self.resyncs, "crc_errors": self.crc_errors,
                "stale": self.stale, "resets": self.resets}


# ---------------------------------------------------------------------------- the link

class Link:
    """Request/reply over a byte stream with pyserial's interface (read(n), write(b),
    `timeout` attribute, optional `in_waiting`, `reset_input_buffer`, `baudrate`)."""

    def __init__(self, stream, *, name: str = "", timeout: float = 10.0, retries: int = 5,
                 alive=None, baud: int | None = None):
        self.stream = stream
        self.name = name or getattr(stream, "port", "") or "the link"
        self.timeout = timeout      # compute allowance of a request (seconds), on top of its wire time
        self.retries = retries
        self.alive = alive          # callable raising if the far end died (e.g. QEMU exited)
        self.baud = baud if baud is not None else getattr(stream, "baudrate", None)
        self.reader = FrameReader()
        self.pending: list[Frame] = []
        self.seq = 0
        self.info: BoardInfo | None = None
        self.stats = LinkStats()
        self.last_rtt = 0.0         # send -> reply of the last request's answered attempt
        self.last_wire = 0.0        # wire time (seconds) of the last request and its reply
        self.last_deadline = 0.0    # wire time + compute allowance of the last request
        self.infer_count = 0        # the board's INFER count in its last RESULT
        self._pings: set[int] = set()  # seqs of the handshake's HELLOs: their extra replies are expected
        self._discard_old_input()

    @property
    def retransmits(self) -> int:
        return self.stats.retries

    def _discard_old_input(self) -> None:
        """Bytes the OS holds from before this link (an interrupted session) are not ours."""
        reset = getattr(self.stream, "reset_input_buffer", None)
        if reset is not None:
            try:
                reset()
            except PORT_ERRORS:
                pass

    def wire_seconds(self, payload_bytes: int) -> float:
        return wire_seconds(payload_bytes, self.baud)

    # -- low level
    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def send(self, ftype: int, seq: int, payload: bytes = b"", version: int = PROTO_VERSION, *,
             stall: float = 10.0) -> int:
        """Send one frame; returns its CRC (what the reply quotes).

        Full duplex: whenever the board has sent something, it is read into `pending` before
        more is written. A board that talks while we write (an ERROR, a late reply) would
        otherwise fill the port's buffers, stop reading its own input, and block our write for
        ever. `stall` seconds without the port taking or giving a byte end the send with a
        TinycError."""
        body = frame_body(ftype, seq, payload, version)
        wire = b"\x00" + cobs_encode(body) + b"\x00"
        try:
            fileno = getattr(self.stream, "fileno", None)
            if fileno is None or len(wire) <= SEND_CHUNK:
                self.stream.write(wire)
            else:
                self._write_full_duplex(fileno(), memoryview(wire), stall)
            flush = getattr(self.stream, "flush", None)
            if flush is not None:
                flush()
        except PORT_ERRORS as exc:
            if self.alive is not None:
                self.alive()
            raise TinycError(f"cannot write to {self.name}: {exc}") from None
        return struct.unpack_from("<I", body, len(body) - 4)[0]

    def _write_full_duplex(self, fd: int, data: memoryview, stall: float) -> None:
        while data:
            readable, writable, _ = select.select([fd], [fd], [], stall)
            if not readable and not writable:
                raise TimeoutError(f"the port took no byte for {stall:.3g} s")
            if readable:
                self._drain_input()
            if writable:
                try:
                    data = data[os.write(fd, data[:SEND_CHUNK]):]
                except BlockingIOError:
                    pass

    def _drain_input(self) -> None:
        """Read (without waiting) what the board has sent so far into `pending`."""
        waiting = getattr(self.stream, "in_waiting", 0) or 0
        if waiting:
            self._take(self.stream.read(waiting))

    def _take(self, data: bytes) -> None:
        """Feed bytes from the board to the frame reader; its frames join `pending`."""
        self.pending.extend(self.reader.feed(data))
        self.stats.resyncs = self.reader.dropped
        self.stats.crc_errors = self.reader.crc_errors

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
                self._take(data)
            elif self.alive is not None:
                self.alive()

    def _answers(self, frame: Frame, seq: int, crc: int, want: tuple[int, ...]) -> bool:
        """Is `frame` the reply to the request (seq, crc)? Raises BoardError for its ERROR."""
        if frame.version != PROTO_VERSION:
            return False
        if frame.type == T_ERROR:
            code, detail, request_crc, msg = parse_error(frame.payload)
            # a fault before any request is reported with seq 0 and no request CRC
            if (frame.seq == seq and request_crc == crc) or (frame.seq == 0 and request_crc == 0):
                raise BoardError(code, detail, msg, self.name)
            return False
        if frame.seq != seq or frame.type not in want:
            return False
        return frame.type != T_RESULT or (len(frame.payload) >= RESULT_HEAD.size
                                          and RESULT_HEAD.unpack_from(frame.payload)[4] == crc)

    def request(self, ftype: int, payload: bytes, want: tuple[int, ...], *, timeout: float | None = None,
                retries: int | None = None, reply_bytes: int = 0, what: str = "") -> Frame:
        """Send a request and wait for its reply (a frame of a type in `want`, or ERROR,
        naming the request by seq and CRC); resend when the deadline passes.

        The deadline of each try is the wire time of the request and of its reply
        (`reply_bytes` of payload) plus `timeout`, the compute allowance."""
        allowance = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        wire = self.wire_seconds(len(payload)) + self.wire_seconds(reply_bytes)
        limit = wire + allowance
        self.last_wire, self.last_deadline = wire, limit
        seq = self._next_seq()
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retries += 1
            sent = time.monotonic()
            crc = self.send(ftype, seq, payload, stall=limit)
            deadline = sent + limit
            while True:
                frame = self.receive(deadline)
                if frame is None:
                    break
                if not self._answers(frame, seq, crc, want):
                    if not (frame.type == T_HELLO_REPLY and frame.seq in self._pings):
                        self.stats.stale += 1
                    continue
                self.last_rtt = time.monotonic() - sent
                return frame
        name = what or f"{TYPE_NAMES.get(want[0], want[0])} reply"
        if wire:
            cost = (f"{len(payload):,} bytes out and {reply_bytes:,} back take {wire:.3g} s at {self.baud:,} baud, "
                    f"plus {allowance:g} s allowed for the board to compute")
        else:
            cost = f"{allowance:g} s allowed for the board to compute"
        raise LinkTimeout(
            f"no valid {name} from the board on {self.name} within {limit:.3g} s per try "
            f"({retries + 1} tries; {cost}): check that the board runs tinyc firmware on this port, "
            "then use a higher baud rate or allow more time (--timeout)")

    # -- protocol
    def handshake(self, *, timeout: float = 10.0, expect_hash: str | None = None,
                  ping_interval: float = 0.25) -> BoardInfo:
        """HELLO until a valid reply (the board may still be booting), then check the model.

        HELLO goes out as a v1 frame, which boards of every version answer, so a board
        running older firmware is named as such instead of staying silent. On a slow link
        the pings are spaced by the wire time of a HELLO reply of ~1 KB, and the
        handshake lasts at least a few of them."""
        ping_interval = max(ping_interval, 2 * self.wire_seconds(1024))
        timeout = max(timeout, 4 * ping_interval)
        deadline = time.monotonic() + timeout
        sent = self._pings = set()
        frame = None
        while frame is None:
            now = time.monotonic()
            if now >= deadline:
                raise LinkTimeout(f"no answer from a tinyc board on {self.name} within {timeout:g} s: "
                                  "check the port, the baud rate and that the firmware is flashed")
            seq = self._next_seq()
            sent.add(seq)
            self.send(T_HELLO, seq, version=HELLO_VERSION)
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
                self.stats.stale += 1       # a reply to a request of an earlier session
        if frame.version != PROTO_VERSION:
            raise TinycError(f"the board on {self.name} speaks protocol v{frame.version}, "
                             f"this tinyc speaks v{PROTO_VERSION}: rebuild and flash the firmware")
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
        """One inference; `timeout` is the compute allowance (wire time is added)."""
        if self.info is None:
            raise TinycError("handshake with the board before sending work")
        if len(data) != self.info.input_bytes_total:
            raise TinycError(f"input is {len(data)} bytes, the model takes {self.info.input_bytes_total}")
        reply = result_payload_bytes(self.info.num_layers, self.info.output_bytes_total)
        frame = self.request(T_INFER, bytes(data), (T_RESULT,), timeout=timeout, reply_bytes=reply,
                             what="RESULT")
        res = parse_result(frame.payload, self.info.output_bytes_total)
        if res.infer_count <= self.infer_count:
            self.stats.resets += 1      # the board started again since its last RESULT
        self.infer_count = res.infer_count
        return res

    def exit(self, *, timeout: float = 2.0) -> bool:
        """Ask the board's server to stop; True if it said BYE."""
        try:
            self.request(T_EXIT, b"", (T_BYE,), timeout=timeout, retries=1)
            return True
        except TinycError:
            return False
