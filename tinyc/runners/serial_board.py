"""A board on a serial port (a real Nucleo, a Pi's UART, ...), and the session every
protocol runner shares (QEMU and Linux runners open a port, then use BoardSession).

Flashing real boards is tinyc.flashing's job; finding their port, tinyc.probes'.
"""

from __future__ import annotations

from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.link import Link, LinkTimeout
from tinyc.outdir import load_manifest
from tinyc.probes import resolve_port
from tinyc.progress import Progress
from tinyc.runners.session import BASE_TIMEOUT, InferResult, default_timeout, infer_each

DEFAULT_TIMEOUT = BASE_TIMEOUT  # compute allowance of the first inference (and the ceiling for later ones), s
MIN_TIMEOUT = 1.0           # later inferences allow at least this long for compute before a retry


def cycle_unit(board: Board, emulated: bool) -> tuple[str, float]:
    """(unit, factor): what the board's counter ticks mean here, and ticks -> unit."""
    if board.cycle_source == "clock":
        return "ns", 1.0
    if board.cycle_source == "systick" and emulated:
        # QEMU -icount shift=0: 1 ns of virtual time per instruction; SysTick ticks at clock_hz
        return "instructions", 1e9 / board.clock_hz
    if board.cycle_source == "pmccntr" and emulated:
        return "instructions", 1.0  # PMCCNTR under QEMU -icount shift=0: one per instruction
    return "cycles", 1.0


def serial_open(port: str, baud: int):
    import termios

    import serial  # pyserial
    try:
        return serial.Serial(port, baud, timeout=0.2, write_timeout=None)
    except (serial.SerialException, OSError, termios.error) as exc:
        raise TinycError(f"cannot open serial port {port}: {exc}; check --port and permissions "
                         "(the dialout group)") from None


class BoardSession:
    """infer() over a Link; close() says EXIT and then lets `on_close` end the board.

    Each request's deadline is its wire time at the link's baud rate (tinyc.link adds it)
    plus a compute allowance: `timeout` for the first inference, then a few times the
    slowest compute time seen (reply time less wire time), at least MIN_TIMEOUT.
    `link_stats` counts what the link survived (retries, resyncs, CRC errors, stale
    replies, board resets)."""

    def __init__(self, link: Link, board: Board, *, emulated: bool, timeout: float = DEFAULT_TIMEOUT,
                 on_close=None, expect_inputs: int | None = None, say_exit: bool = True):
        self.link = link
        self.say_exit = say_exit    # False: the board is ended by on_close alone (a labgrid driver)
        self.board = board
        self.timeout = timeout
        self.on_close = on_close
        self.unit, self.factor = cycle_unit(board, emulated)
        self.max_compute = None     # slowest reply time less its wire time, seconds
        self.closed = False
        self.info = link.info
        if expect_inputs is not None and self.info is not None and self.info.input_bytes_total != expect_inputs:
            raise TinycError(f"the board on {link.name} takes {self.info.input_bytes_total} input bytes, "
                             f"the model {expect_inputs}: flash the firmware built for this model")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def link_stats(self) -> dict:
        """{"retries", "resyncs", "crc_errors", "stale", "resets"} so far."""
        return self.link.stats.as_dict()

    def compute_allowance(self) -> float:
        """Seconds the next inference may compute (the wire time comes on top)."""
        if self.max_compute is None:
            return self.timeout
        # a lost frame costs one deadline: keep it a few times the slowest compute seen so far
        return min(self.timeout, max(MIN_TIMEOUT, 4.0 * self.max_compute))

    def infer(self, data: bytes) -> InferResult:
        if self.closed:
            raise TinycError("the board session is closed")
        raw = self.link.infer(bytes(data), timeout=self.compute_allowance())
        # the answered try only (retries excluded): no escalation
        compute = max(0.0, self.link.last_rtt - self.link.last_wire)
        self.max_compute = compute if self.max_compute is None else max(self.max_compute, compute)
        f = self.factor
        cycles = int(round(raw.ticks * f))
        layers = [int(round(t * f)) for t in raw.layer_ticks] if raw.layer_ticks else None
        return InferResult(output=raw.output, cycles=cycles, cycle_unit=self.unit, layer_cycles=layers,
                           stack_bytes=raw.stack_bytes)

    def infer_many(self, records: list[bytes], progress: Progress | None = None,
                   stage: str = "infer") -> list[InferResult]:
        return infer_each(self, records, progress, stage)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            try:
                if self.say_exit:
                    self.link.exit()
            except Exception:  # noqa: BLE001 - the results are in; a port the board (or QEMU) already
                pass           # closed fails here with termios.error or OSError under load: harmless
            try:
                self.link.stream.close()
            except Exception:  # noqa: BLE001 - closing a dead port is fine
                pass
        finally:
            if self.on_close is not None:
                self.on_close()


def open_session(board: Board, outdir: Path, *, port: str | None = None, timeout: float | None = None,
                 model_hash: str | None = None, io=None, baud: int | None = None, handshake_timeout: float = 10.0,
                 **_):
    """A real board already flashed with this model's firmware, on `port`."""
    manifest = load_manifest(outdir)
    timeout = timeout if timeout is not None else default_timeout(manifest)
    serial_cfg = board.raw.get("serial", {})
    port, _ = resolve_port(board, port)
    if not port:
        raise TinycError(f"board {board.name} has no serial port: give --port")
    baud = baud or int(serial_cfg.get("baud", board.raw.get("uart", {}).get("baud", 115200)))
    stream = serial_open(port, baud)
    link = Link(stream, name=port, timeout=timeout, baud=baud)
    expect = model_hash or manifest.model_hash
    try:
        link.handshake(timeout=handshake_timeout, expect_hash=expect)
    except LinkTimeout:
        stream.close()
        raise TinycError(f"no answer from a tinyc board on {port} within {handshake_timeout:g} s: check the "
                         f"cable, --port and that the firmware is flashed (`tinyc flash {outdir} --board {board.name}`)")
    except BaseException:
        stream.close()
        raise
    return BoardSession(link, board, emulated=False, timeout=timeout, expect_inputs=manifest.input_bytes_total)

