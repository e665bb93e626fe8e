"""A fault-injecting relay between the host and a board's serial port.

The relay makes a new pty pair; the host opens its slave path (with pyserial, like any
serial port) and the relay copies bytes to and from the board's own port (QEMU's pty, or
the Linux server's), breaking them on the way: garbage between frames, dropped bytes,
dropped frames, corrupted bytes (so the CRC fails). It knows only that frames end at a
0x00 byte, nothing else of the protocol.

Random faults: probabilities per frame and direction. Scripted faults: `inject(direction,
kind)` applies one fault to the next frame going that way ('split' turns one byte inside
the frame into 0x00, cutting it in two). `hold(direction)` keeps the next frame back until
`release(direction)` puts it on the wire in front of the following one (a very late
reply). `after_frames(n, callback)` runs a callback (e.g. kill the emulator) once n frames
have gone to the host. `baud` paces both directions like a UART at that rate (10 bits a
byte), so a slow link can be tested for real.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass, field

TO_BOARD = "to_board"
TO_HOST = "to_host"


@dataclass
class Faults:
    garbage_burst: float = 0.0     # chance of a burst of random bytes between two frames
    burst_max: int = 48
    drop_frame: float = 0.0        # chance a frame is swallowed whole
    drop_byte: float = 0.0         # chance one byte of a frame is lost
    corrupt: float = 0.0           # chance one byte of a frame is changed (CRC fails)


@dataclass
class Stats:
    frames: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})
    garbage_bytes: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})
    dropped_frames: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})
    dropped_bytes: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})
    corrupted: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})
    split: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})
    held: dict = field(default_factory=lambda: {TO_BOARD: 0, TO_HOST: 0})


def _raw_fd(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


class FaultRelay:
    def __init__(self, board_path: str, *, to_board: Faults | None = None, to_host: Faults | None = None,
                 seed: int = 0, min_frame: int = 2, baud: int | None = None):
        self.faults = {TO_BOARD: to_board or Faults(), TO_HOST: to_host or Faults()}
        self.rng = random.Random(seed)
        self.min_frame = min_frame          # frames shorter than this (bare syncs) pass untouched
        self.stats = Stats()
        self.scripted: dict[str, list[str]] = {TO_BOARD: [], TO_HOST: []}
        self.blackhole = {TO_BOARD: False, TO_HOST: False}
        self.baud = baud
        self._hold = {TO_BOARD: False, TO_HOST: False}
        self._held: dict[str, list[bytes]] = {TO_BOARD: [], TO_HOST: []}
        self._release = {TO_BOARD: False, TO_HOST: False}
        self._after: tuple[int, callable] | None = None
        self._lock = threading.Lock()
        self.board_fd = _raw_fd(board_path)
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)           # no echo before the host opens its end
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self.slave_fd)
        self._buf = {TO_BOARD: bytearray(), TO_HOST: bytearray()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # -- control
    def inject(self, direction: str, kind: str) -> None:
        """One fault on the next frame that way: 'garbage', 'drop_frame', 'drop_byte', 'corrupt'."""
        with self._lock:
            self.scripted[direction].append(kind)

    def hold(self, direction: str) -> None:
        """Keep the next frame going that way back (until release)."""
        with self._lock:
            self._hold[direction] = True

    def release(self, direction: str) -> None:
        """Send the held frame(s) just before the next frame going that way."""
        with self._lock:
            self._release[direction] = True

    def after_frames(self, n: int, callback, match=None) -> None:
        """callback() once n more frames (those for which match(frame_bytes) is true, if
        given) have been passed to the host."""
        with self._lock:
            self._after = [n, callback, match]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.board_fd, self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- pump
    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        chunk = max(1, self.baud // 200) if self.baud else len(view)   # ~5 ms of bytes at a time
        while view and not self._stop.is_set():
            try:
                n = os.write(fd, view[:chunk])
                view = view[n:]
                if self.baud:
                    time.sleep(n * 10 / self.baud)
            except BlockingIOError:
                select.select([], [fd], [], 0.05)
            except OSError:
                return

    def _garbage(self, direction: str) -> bytes:
        n = self.rng.randint(1, self.faults[direction].burst_max)
        self.stats.garbage_bytes[direction] += n
        return bytes(self.rng.randrange(256) for _ in range(n))

    def _take_script(self, direction: str, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            queue = self.scripted[direction]
            if queue and queue[0] in kinds:
                return queue.pop(0)
        return None

    def _frame(self, direction: str, unit: bytes) -> bytes:
        """A unit ending in 0x00 -> what goes on the wire. A bare sync byte may get a
        burst of garbage in front (noise between frames, ended by that sync); a frame
        may be held back, dropped, split, lose a byte or get a byte changed."""
        f = self.faults[direction]
        if len(unit) < self.min_frame:
            script = self._take_script(direction, ("garbage",))
            if script or self.rng.random() < f.garbage_burst:
                return self._garbage(direction) + unit
            return unit
        with self._lock:
            if self._hold[direction]:
                self._hold[direction] = False
                self._held[direction].append(unit)
                self.stats.held[direction] += 1
                return b""
            late = b""
            if self._release[direction]:
                self._release[direction] = False
                late = b"\x00" + b"".join(self._held[direction])
                self._held[direction].clear()
        return late + self._damage(direction, unit)

    def _damage(self, direction: str, unit: bytes) -> bytes:
        f = self.faults[direction]
        script = self._take_script(direction, ("drop_frame", "drop_byte", "corrupt", "split"))
        self.stats.frames[direction] += 1
        if self.blackhole[direction]:
            self.stats.dropped_frames[direction] += 1
            return b""
        if script == "split":
            body = bytearray(unit)
            body[self.rng.randrange(1, len(body) - 2)] = 0   # inside the frame, not next to its sync
            self.stats.split[direction] += 1
            return bytes(body)
        if script == "drop_frame" or (script is None and self.rng.random() < f.drop_frame):
            self.stats.dropped_frames[direction] += 1
            return b""
        body = bytearray(unit)
        if script == "drop_byte" or (script is None and self.rng.random() < f.drop_byte):
            i = self.rng.randrange(len(body) - 1)      # not the closing sync
            del body[i]
            self.stats.dropped_bytes[direction] += 1
        if script == "corrupt" or (script is None and self.rng.random() < f.corrupt):
            i = self.rng.randrange(len(body) - 1)
            body[i] = (body[i] ^ (1 << self.rng.randrange(8))) or 0x55   # never a new 0x00
            self.stats.corrupted[direction] += 1
        return bytes(body)

    def _pass(self, direction: str, data: bytes, dst: int) -> None:
        buf = self._buf[direction]
        buf += data
        out = bytearray()
        fire = False
        while True:
            i = buf.find(0)
            if i < 0:
                break
            unit = bytes(buf[:i + 1])
            sent = self._frame(direction, unit)
            out += sent
            del buf[:i + 1]
            after = self._after
            if direction == TO_HOST and after is not None and len(unit) >= self.min_frame and sent:
                if after[2] is None or after[2](unit):
                    after[0] -= 1
                    fire = fire or after[0] <= 0
        if out:
            self._write(dst, bytes(out))
        if fire:
            callback = self._after[1]
            self._after = None
            callback()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master_fd, self.board_fd], [], [], 0.05)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    if fd == self.board_fd:   # the board side is gone (emulator exited)
                        return
                    continue
                if fd == self.master_fd:
                    self._pass(TO_BOARD, data, self.board_fd)
                else:
                    self._pass(TO_HOST, data, self.master_fd)
