"""Runners: start a built model on a board and run inferences on it.

`open_session(board, outdir, ...)` returns a `Session` (runners/session.py): a context manager
with `infer(bytes) -> InferResult`, `infer_many(records)` and `close()`. Pass `manifest=` to
spare a runner reading OUTDIR's tinyc.json again. The host runner is a local process on a
pipe; the others (QEMU, serial boards, Linux targets) speak the framed serial protocol of
tinyc.link.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.runners.session import InferResult, Session

_MODULES = {
    "host": "tinyc.runners.host",
    "qemu-system": "tinyc.runners.qemu",
    "qemu-user": "tinyc.runners.linux",
    "linux": "tinyc.runners.linux",
    "ssh": "tinyc.runners.linux",
    "openocd": "tinyc.runners.serial_board",
    "st-flash": "tinyc.runners.serial_board",
    "pyocd": "tinyc.runners.serial_board",
    "serial": "tinyc.runners.serial_board",
}


SERIAL_RUNNERS = ("openocd", "st-flash", "pyocd", "serial")   # real boards on a serial device


def session_options(board: Board, *, port: str | None = None, baud: int | None = None,
                    timeout: float | None = None) -> dict:
    """--port, --baud and --timeout as `open_session` options; refuses the ones `board`
    cannot use instead of ignoring them."""
    real = board.runner in SERIAL_RUNNERS or (board.kind == "linux" and port)
    if port and not (board.runner in SERIAL_RUNNERS or board.kind == "linux"):
        raise TinycError(f"--port selects a real board's serial device; {board.name} runs here as "
                         f"{'a local process' if board.runner == 'host' else 'an emulator with its own serial link'}: "
                         "drop --port (or choose a real board, `tinyc boards`)")
    if baud is not None and not real:
        raise TinycError(f"--baud sets the speed of a real board's serial link; {board.name} "
                         f"{'takes no serial link here' if not port else 'is not on one'}: drop --baud "
                         "(or give --port of a real board)")
    if timeout is not None and not timeout > 0:
        raise TinycError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    return {k: v for k, v in (("port", port), ("baud", baud), ("timeout", timeout)) if v is not None}


def open_session(board: Board, outdir: Path, **options) -> Session:
    """Start `board` running the build in outdir (built already) and return a session.
    With `labgrid=ENV.yaml` the board is the labgrid target of that environment."""
    module_name = "tinyc.runners.labgrid" if options.get("labgrid") else _MODULES.get(board.runner)
    if module_name is None:
        raise TinycError(f"board {board.name} has runner '{board.runner}', which tinyc cannot drive")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # a bug inside the runner, not a missing runner
        raise TinycError(f"runner '{board.runner}' for board {board.name} is not available in this tinyc") from None
    return module.open_session(board, Path(outdir), **options)


__all__ = ["open_session", "session_options", "InferResult", "Session"]
