"""The serial protocol: framing against independent vectors, and the real link (C server
<-> pyserial) through a fault-injecting pty relay.

The server here is firmware/linux built for this machine (the same C protocol server the
microcontrollers run), so these tests are fast; tests/test_firmware_qemu.py repeats the
noisy run against an emulated Cortex-M UART.
"""

from __future__ import annotations

import json
import random
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from faultrelay import TO_BOARD, TO_HOST, FaultRelay, Faults
from tinyc import link as L
from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.build.firmware import build_firmware
from tinyc.convert import convert
from tinyc.reference import Reference
from tinyc.runners import linux

# ---------------------------------------------------------------------------- COBS / frames

# Examples from the COBS paper / its Wikipedia article (independent of this code).
COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("raw,encoded", COBS_VECTORS)
def test_cobs_known_vectors(raw, encoded):
    assert L.cobs_encode(raw) == encoded
    assert L.cobs_decode(encoded) == raw


def test_cobs_roundtrip_random_and_no_zero_inside():
    rng = random.Random(1)
    for n in [0, 1, 253, 254, 255, 508, 509, 1000, 27648]:
        for zeros in (0.0, 0.01, 0.5):
            data = bytes(0 if rng.random() < zeros else rng.randrange(1, 256) for _ in range(n))
            enc = L.cobs_encode(data)
            assert 0 not in enc
            assert len(enc) <= n + n // 254 + 1
            assert L.cobs_decode(enc) == data


def test_frame_layout_and_crc():
    payload = bytes(range(0, 40))
    wire = L.encode_frame(L.T_INFER, 7, payload)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    body = L.cobs_decode(wire[1:-1])
    assert body[:8] == bytes([0x02, 7, 2, 0]) + struct.pack("<I", 40)   # protocol v2
    assert body[8:-4] == payload
    # CRC-32/IEEE: the standard check value of "123456789" is 0xCBF43926
    assert zlib.crc32(b"123456789") == 0xCBF43926
    crc = struct.unpack("<I", body[-4:])[0]
    assert crc == zlib.crc32(body[:-4])
    assert L.decode_frame(wire[1:-1]) == L.Frame(L.T_INFER, 7, payload, version=2, crc=crc)


def test_every_single_byte_error_is_detected():
    wire = L.encode_frame(L.T_RESULT, 3, bytes(range(1, 200)))[1:-1]
    for i in range(len(wire)):
        for bit in (0, 3, 7):
            bad = bytearray(wire)
            bad[i] ^= 1 << bit
            if bad[i] == 0:
                continue
            assert L.decode_frame(bytes(bad)) is None, (i, bit)
        assert L.decode_frame(wire[:i] + wire[i + 1:]) is None, i   # a dropped byte


def test_false_delimiter_splits_a_frame_into_two_rejected_chunks():
    """A byte corrupted into 0x00 cuts a frame in two: neither half is taken, the next
    frame is, and the reader counts two resyncs."""
    wire = L.encode_frame(L.T_RESULT, 9, bytes(range(1, 250)) * 3)
    nxt = L.encode_frame(L.T_RESULT, 10, b"next")
    for cut in (2, 100, len(wire) // 2, len(wire) - 3):
        bad = bytearray(wire)
        bad[cut] = 0
        reader = L.FrameReader()
        got = reader.feed(bytes(bad) + nxt)
        assert [(f.seq, f.payload) for f in got] == [(10, b"next")], cut
        assert reader.dropped == 2, cut


def test_reader_resyncs_on_garbage():
    rng = random.Random(2)
    frames = [L.encode_frame(L.T_RESULT, s, bytes(rng.randrange(256) for _ in range(rng.randrange(300))))
              for s in range(20)]
    stream = bytearray()
    for f in frames:
        stream += bytes(rng.randrange(256) for _ in range(rng.randrange(40)))  # noise between frames
        stream += f
    reader = L.FrameReader()
    got = []
    for i in range(0, len(stream), 17):  # arrives in small pieces
        got += reader.feed(bytes(stream[i:i + 17]))
    assert [f.seq for f in got] == list(range(20))
    assert [f.payload for f in got] == [L.decode_frame(f[1:-1]).payload for f in frames]


# ---------------------------------------------------------------------------- the real link

NATIVE = Board(name="linux-native", description="this machine, as a Linux board", kind="linux", runner="native",
               cc="cc", cflags=["-O2"], cycle_source="clock", raw={"arch": "native"})


@pytest.fixture(scope="module")
def ad01(tmp_path_factory, mlperf_dir):
    out = tmp_path_factory.mktemp("link") / "ad01"
    convert(mlperf_dir / "ad01_int8.tflite", out)
    build_firmware(out, NATIVE)
    return out


@pytest.fixture(scope="module")
def reference(ad01):
    return Reference(ad01 / "model.tflite")


def _expected(reference, x):
    return reference.run(x.reshape(1, 640))[0].astype(np.int8).tobytes()


class Relayed:
    """open a native-server session with a FaultRelay in the middle."""

    def __init__(self, outdir, **faults):
        self.outdir = outdir
        self.faults = faults
        self.relay = None

    def wrap(self, board_pty):
        self.relay = FaultRelay(board_pty, **self.faults)
        return self.relay.path

    def __enter__(self):
        self.session = linux.open_session(NATIVE, self.outdir, timeout=10.0, link_wrapper=self.wrap)
        return self

    def __exit__(self, *exc):
        self.session.close()
        if self.relay:
            self.relay.close()


def _inputs(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=640, dtype=np.int64).astype(np.int8) for _ in range(n)]


def test_clean_link_bit_exact(ad01, reference):
    with Relayed(ad01) as r:
        info = r.session.info
        assert info.model_hash == json.loads((ad01 / "tinyc.json").read_text())["model_hash"]
        assert (info.input_bytes, info.output_bytes, info.num_layers) == ([640], [640], 10)
        assert info.board == "linux-native"
        for x in _inputs(5, 0):
            res = r.session.infer(x.tobytes())
            assert res.output == _expected(reference, x)
            assert res.cycle_unit == "ns" and res.cycles > 0
            assert len(res.layer_cycles) == 10 and sum(res.layer_cycles) <= res.cycles
        assert r.session.link.retransmits == 0


@pytest.mark.parametrize("direction,kind", [
    (TO_BOARD, "garbage"), (TO_HOST, "garbage"),
    (TO_BOARD, "drop_byte"), (TO_HOST, "drop_byte"),
    (TO_BOARD, "corrupt"), (TO_HOST, "corrupt"),
    (TO_BOARD, "drop_frame"), (TO_HOST, "drop_frame"),
    (TO_BOARD, "split"), (TO_HOST, "split"),
])
def test_scripted_fault_is_survived(ad01, reference, direction, kind):
    xs = _inputs(3, 1)
    with Relayed(ad01) as r:
        s = r.session
        assert s.infer(xs[0].tobytes()).output == _expected(reference, xs[0])   # RTT known: short timeouts
        before = s.link.retransmits
        resyncs = s.link.stats.resyncs
        r.relay.inject(direction, kind)
        t0 = time.monotonic()
        assert s.infer(xs[1].tobytes()).output == _expected(reference, xs[1])
        elapsed = time.monotonic() - t0
        assert s.infer(xs[2].tobytes()).output == _expected(reference, xs[2])
        st = r.relay.stats
        if kind == "garbage":
            assert st.garbage_bytes[direction] > 0
            assert s.link.retransmits == before          # noise between frames costs nothing
        else:
            assert s.link.retransmits == before + 1      # the damaged exchange was retried once
            assert elapsed < 5.0
        counts = {"drop_byte": st.dropped_bytes, "corrupt": st.corrupted, "drop_frame": st.dropped_frames,
                  "split": st.split}
        if kind in counts:
            assert counts[kind][direction] == 1
        # what reached the host damaged is counted: a frame split by a false 0x00 is two bad chunks
        if kind == "garbage" and direction == TO_HOST:
            assert s.link.stats.resyncs >= resyncs        # a burst is one chunk or more (or none: all 0x00)
        else:
            damaged_chunks = {"drop_byte": 1, "corrupt": 1, "split": 2}.get(kind, 0) if direction == TO_HOST else 0
            assert s.link.stats.resyncs == resyncs + damaged_chunks
        assert s.link_stats["retries"] == s.link.retransmits


@pytest.mark.stress
def test_random_noise_many_samples(ad01, reference):
    faults = Faults(garbage_burst=0.2, drop_frame=0.02, drop_byte=0.02, corrupt=0.02)
    xs = _inputs(100, 3)
    with Relayed(ad01, to_board=faults, to_host=faults, seed=5) as r:
        for x in xs:
            assert r.session.infer(x.tobytes()).output == _expected(reference, x)
        st = r.relay.stats
        damaged = sum(st.dropped_frames.values()) + sum(st.dropped_bytes.values()) + sum(st.corrupted.values())
        assert damaged > 0 and sum(st.garbage_bytes.values()) > 0
        assert r.session.link.retransmits >= 1


def test_reply_from_256_requests_ago_is_not_taken(ad01, reference):
    """A reply held back for a full turn of the 8-bit seq arrives just before the answer to
    the request that reuses its seq: the request CRC it quotes gives it away."""
    with Relayed(ad01) as r:
        s = r.session
        xs = _inputs(2, 20)
        assert s.infer(xs[0].tobytes()).output == _expected(reference, xs[0])
        r.relay.hold(TO_HOST)                        # the first try's RESULT goes missing...
        assert s.infer(xs[1].tobytes()).output == _expected(reference, xs[1])
        held_seq = s.link.seq
        assert s.link.stats.retries == 1 and r.relay.stats.held[TO_HOST] == 1
        filler = bytes(640)
        while (s.link.seq + 1) & 0xFF != held_seq:   # ...for 255 more requests
            s.infer(filler)
        r.relay.release(TO_HOST)                     # ...and comes back now, with the same seq
        stale = s.link.stats.stale
        x = _inputs(1, 21)[0]
        got = s.infer(x.tobytes())
        assert s.link.seq == held_seq
        assert got.output == _expected(reference, x)
        assert s.link.stats.stale == stale + 1
        assert s.link.stats.retries == 1 and s.link.stats.resets == 0


def test_deadline_scales_with_the_baud_rate(ad01, reference):
    """A link paced at 9,600 baud: an inference's frames take ~1.4 s on the wire, more than
    the 0.5 s compute allowance; the deadline adds the wire time, so nothing is retried."""
    from tinyc.runners import serial_board
    server = linux.ServerProcess([str(_server_binary(ad01)), "--pty"])
    relay = FaultRelay(server.pty, baud=9600)
    try:
        with serial_board.open_session(NATIVE, ad01, port=relay.path, baud=9600, timeout=0.5) as s:
            for x in _inputs(2, 30):
                assert s.infer(x.tobytes()).output == _expected(reference, x)
            assert s.link.last_wire > 1.2 and s.link.last_rtt > 1.2   # really paced
            assert s.link_stats == {"retries": 0, "resyncs": 0, "crc_errors": 0, "stale": 0, "resets": 0}
    finally:
        relay.close()
        server.kill()


def test_deadline_expiry_names_what_and_how_to_mend(ad01):
    """The same slow link, but the host believes it runs at 115,200 baud: the deadline
    expires, and the error names the request, the time, the baud rate and the way out."""
    from tinyc.runners import serial_board
    server = linux.ServerProcess([str(_server_binary(ad01)), "--pty"])
    relay = FaultRelay(server.pty, baud=9600)
    try:
        s = serial_board.open_session(NATIVE, ad01, port=relay.path, baud=115200, timeout=0.3)
        s.link.retries = 0
        try:
            with pytest.raises(L.LinkTimeout) as exc:
                s.infer(bytes(640))
        finally:
            s.close()
        msg = str(exc.value)
        assert "no valid RESULT" in msg and relay.path in msg and "115,200 baud" in msg
        assert "higher baud rate" in msg and "--timeout" in msg
    finally:
        relay.close()
        server.kill()


def test_silent_board_times_out_naming_the_port(ad01):
    with Relayed(ad01) as r:
        r.relay.blackhole[TO_HOST] = True
        r.session.max_compute = 0.05  # later requests allow MIN_TIMEOUT (1 s) each
        r.session.link.retries = 2
        t0 = time.monotonic()
        with pytest.raises(TinycError) as exc:
            r.session.infer(bytes(640))
        elapsed = time.monotonic() - t0
        assert r.relay.path in str(exc.value)
        assert "no valid RESULT" in str(exc.value)
        assert elapsed < (r.session.link.retries + 1) * 1.0 + 2.0


def test_handshake_timeout_when_nothing_answers(tmp_path):
    import os
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        import serial
        path = os.ttyname(slave)
        s = serial.Serial(path, 115200, timeout=0.1)
        t0 = time.monotonic()
        with pytest.raises(TinycError) as exc:
            L.Link(s, name=path).handshake(timeout=1.5)
        assert time.monotonic() - t0 < 4.0
        assert path in str(exc.value)
        s.close()
    finally:
        os.close(master)
        os.close(slave)


def test_wrong_model_is_refused_with_both_hashes(ad01):
    with pytest.raises(TinycError) as exc:
        linux.open_session(NATIVE, ad01, model_hash="0123456789abcdef", timeout=5.0)
    real = json.loads((ad01 / "tinyc.json").read_text())["model_hash"]
    assert "0123456789abcdef" in str(exc.value) and real in str(exc.value)


def test_board_process_dying_midrun_is_reported(ad01):
    s = linux.open_session(NATIVE, ad01, timeout=5.0)
    try:
        s.infer(bytes(640))
        s.server.proc.kill()
        s.server.proc.wait()
        with pytest.raises(TinycError) as exc:
            s.infer(bytes(640))
        assert "killed by SIGKILL mid-run" in str(exc.value)   # the signal named, not "exited"
    finally:
        s.close()


def test_bad_infer_length_gets_error_frame(ad01):
    with Relayed(ad01) as r:
        link = r.session.link
        with pytest.raises(L.BoardError) as exc:
            link.request(L.T_INFER, bytes(10), (L.T_RESULT,), timeout=5.0)
        assert exc.value.code == 1 and exc.value.detail == 10
        # the server is still serving
        assert r.session.infer(bytes(640)).output is not None


class FdStream:
    """pyserial's read/write/timeout over plain file descriptors (pipes, a pty master)."""

    def __init__(self, rfd: int, wfd: int, name: str):
        self.rfd, self.wfd, self.port, self.timeout = rfd, wfd, name, 0.2

    def read(self, n: int) -> bytes:
        import select
        ready, _, _ = select.select([self.rfd], [], [], self.timeout)
        if not ready:
            return b""
        import os
        return os.read(self.rfd, n)

    def write(self, data: bytes) -> None:
        import os
        view = memoryview(data)
        while view:
            view = view[os.write(self.wfd, view):]

    def close(self) -> None:
        pass


def _server_binary(ad01):
    return ad01 / "build" / "linux-native" / "tinyc_server"


def test_linux_server_over_stdin_stdout(ad01, reference):
    import subprocess
    proc = subprocess.Popen([str(_server_binary(ad01))], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        link = L.Link(FdStream(proc.stdout.fileno(), proc.stdin.fileno(), "stdio"), timeout=5.0)
        link.handshake(timeout=5.0)
        x = _inputs(1, 9)[0]
        assert link.infer(x.tobytes()).output == _expected(reference, x)
        assert link.exit()
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()


def test_linux_server_on_a_serial_device(ad01, reference):
    """--port DEV: the server opens a tty itself (here the slave of a pty pair)."""
    import os
    import subprocess
    import tty
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    proc = subprocess.Popen([str(_server_binary(ad01)), "--port", path, "--baud", "115200"])
    try:
        link = L.Link(FdStream(master, master, path), timeout=5.0)
        link.handshake(timeout=5.0)
        x = _inputs(1, 10)[0]
        assert link.infer(x.tobytes()).output == _expected(reference, x)
        assert link.exit()
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)


def test_serial_board_runner_on_a_port(ad01, reference):
    """The real-board runner (`--port`): here the port is the native server's pty."""
    from tinyc.runners import serial_board
    server = linux.ServerProcess([str(_server_binary(ad01)), "--pty"])
    try:
        with serial_board.open_session(NATIVE, ad01, port=server.pty, timeout=5.0) as s:
            x = _inputs(1, 12)[0]
            r = s.infer(x.tobytes())
            assert r.output == _expected(reference, x) and r.cycle_unit == "ns"
        assert server.proc.wait(timeout=5) == 0   # EXIT ended the server
    finally:
        server.kill()


def test_serial_board_runner_names_a_dead_port(ad01):
    from tinyc.runners import serial_board
    with pytest.raises(TinycError) as exc:
        serial_board.open_session(NATIVE, ad01, port="/dev/ttyNOPE0", timeout=1.0)
    assert "/dev/ttyNOPE0" in str(exc.value)


def test_a_port_failing_with_termios_errors_is_one_line_and_close_swallows_it():
    """pyserial's flush (tcdrain) and buffer reset (tcflush) raise termios.error, not OSError,
    when the far end of a port is gone (QEMU exited first, under load). A write then fails with
    one TinycError, and closing a session whose results are in does not fail the run."""
    import os
    import termios
    import tty

    import serial

    from tinyc.runners.serial_board import BoardSession

    class DyingPort(serial.Serial):      # a real pty; the fault is injected where the OS reports it
        def flush(self):
            raise termios.error(5, "Input/output error")

        def reset_input_buffer(self):
            raise termios.error(5, "Input/output error")

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        port = DyingPort(os.ttyname(slave), 115200, timeout=0.1)
        link = L.Link(port, name="dying", retries=0)
        with pytest.raises(TinycError, match="cannot write to dying: .*Input/output error"):
            link.send(L.T_EXIT, 1)
        closed = []
        session = BoardSession(link, NATIVE, emulated=True, on_close=lambda: closed.append(1))
        session.close()
        assert closed == [1] and session.closed
    finally:
        os.close(master)
        os.close(slave)


def test_a_large_frame_goes_out_while_the_board_talks():
    """Full duplex: the far end writes 64 KiB before it reads anything (a board sending while
    our 32 KiB INFER goes out). Unless the sender reads between its chunks, both ends block in
    write for ever (seen on mps2-an386 with a two-input 16 KiB model under load)."""
    import os
    import threading
    import tty

    import serial

    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    port = serial.Serial(os.ttyname(slave), 115200, timeout=0.1)
    chatter = L.encode_frame(L.T_HELLO_REPLY, 7, bytes(200)) * 300            # ~64 KiB of valid frames
    payload = bytes(range(256)) * 128                                        # 32 KiB
    received = bytearray()

    def board():
        for i in range(0, len(chatter), 4096):
            os.write(master, chatter[i:i + 4096])
        want = len(L.encode_frame(L.T_INFER, 1, payload))
        while len(received) < want:
            received.extend(os.read(master, 65536))

    t = threading.Thread(target=board, daemon=True)
    t.start()
    try:
        link = L.Link(port, name="busy")
        link.send(L.T_INFER, 1, payload, stall=20.0)
        t.join(timeout=30)
        assert not t.is_alive(), "the far end never got the whole frame"
        assert bytes(received) == L.encode_frame(L.T_INFER, 1, payload)      # the frame, whole
        assert len(link.pending) > 0                                         # the chatter, read meanwhile
    finally:
        port.close()
        os.close(master)
        os.close(slave)
