"""Run a function that may abort the process (LiteRT's interpreter on a user's model) in a
child process, so that a native crash becomes a one-line TinycError instead of killing tinyc.

LiteRT's kernels check their constants with hard asserts (TFLITE_CHECK -> abort()) while an
interpreter allocates tensors: a SOFTMAX whose beta * input scale is tiny, for instance,
ends the process with SIGABRT and no message. `run_isolated(fn, *args, what=...)` calls
`fn(*args, **kwargs)` in one child Python (one child for a whole batch: start-up costs
about half a second) and returns its result; the child's own output goes to a log whose
last line, if any, is quoted when it dies.

The child is a plain `python -m tinyc.isolated --serve FD` (not multiprocessing's spawn,
which re-runs the caller's main script and so breaks scripts without a main guard), a
`Worker`: calls and results travel as pickles over a socket pair, so native chatter on the
child's stdout (sent to its log) cannot corrupt them. `run_isolated` is a Worker for one
call; a Worker kept open serves a child whose imports are dear (TensorFlow's converter:
3-5 s to import) call after call, streams `progress(stage, done, total)` back while it
works, and is started again after it dies, so one model that crashes the converter costs
that model only.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Callable

from tinyc.errors import TinycError


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _child_env() -> dict:
    """This process's environment, with the folder of this tinyc first on the path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_isolated(fn, *args, what: str, hint: str | Callable[[], str] = "", **kwargs):
    """fn(*args, **kwargs) in a child process; its return value (picklable) here.

    A TinycError raised in the child is raised again here; a child killed by a signal or
    exiting without a result becomes a TinycError naming `what` it was doing, the signal
    and `hint` (what the user can do; a callable is asked only then)."""
    worker = Worker("LiteRT")      # one child for this call alone
    try:
        return worker.call(fn, *args, what=what, hint=hint, **kwargs)
    finally:
        worker.close()


def _died(who: str, code: int, log: Path, what: str, hint: str | Callable[[], str]) -> TinycError:
    """The one-line error for a child that ended without an answer."""
    how = f"was killed by {_signal_name(code)}" if code < 0 else f"exited with code {code}"
    last = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.is_file() else []
    said = f" ({last[-1][:200]})" if last else " (no message)"
    hint = hint() if callable(hint) else hint
    return TinycError(f"{who} {how} while {what}{said}" + (f"; {hint}" if hint else ""))


def _answer(kind: str, value, what: str):
    """A child's ("ok" | "tinyc" | "error", value) as a return value or a raised error."""
    if kind == "ok":
        return value
    if kind == "tinyc":
        cls, msg = value
        raise cls(msg)
    raise TinycError(f"{what} failed: {value}")


def _call(fn, args, kwargs) -> tuple:
    try:
        return ("ok", fn(*args, **kwargs))
    except TinycError as exc:
        return ("tinyc", (type(exc), str(exc)))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which words it
        return ("error", f"{type(exc).__name__}: {exc}")


class Worker:
    """A child Python that runs calls one after another; see the module docstring.

    worker.call(fn, *args, what="quantizing the model", hint=..., progress=cb, **kwargs)
    returns fn(*args, **kwargs) as computed in the child. With `progress`, fn is called
    with a `progress` keyword that sends (stage, done, total) back to `cb`."""

    def __init__(self, who: str):
        self.who = who                    # names the child in errors ("TensorFlow's converter")
        self._proc: subprocess.Popen | None = None
        self._conn = None
        self._log: Path | None = None
        _WORKERS.add(self)

    def _start(self) -> None:
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        fd, log = tempfile.mkstemp(prefix="tinyc-worker-", suffix=".log")
        self._log = Path(log)
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "tinyc.isolated", "--serve", str(theirs.fileno())],
                                          stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                          env=_child_env(), pass_fds=(theirs.fileno(),))
        finally:
            os.close(fd)
            theirs.close()
        self._conn = Connection(mine.detach())

    def call(self, fn, *args, what: str, hint: str | Callable[[], str] = "", progress=None, **kwargs):
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self._start()
        try:
            self._conn.send((os.getcwd(), fn, args, kwargs, progress is not None))
            while True:
                message = self._conn.recv()
                if message[0] != "progress":
                    return _answer(*message, what)
                progress(*message[1:])
        except (EOFError, OSError):    # the child died mid-call
            code = self._proc.wait()
            error = _died(self.who, code, self._log, what, hint)
            self.close()
            raise error from None
        except BaseException:          # interrupted, or progress raised: the child goes with us
            self.close(kill=True)
            raise

    def close(self, kill: bool = False) -> None:
        """End the child (it exits when its socket closes) and remove its log."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            if kill:
                self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None


_WORKERS: "weakref.WeakSet[Worker]" = weakref.WeakSet()


@atexit.register
def _close_workers() -> None:
    for worker in list(_WORKERS):
        worker.close()


def _serve(fd: int) -> None:
    """The child side of Worker: answer calls until the parent closes the socket."""
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    while True:
        try:
            cwd, fn, args, kwargs, wants_progress = conn.recv()
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - a call this child cannot unpickle
            conn.send(("error", f"the call cannot be read in the child ({type(exc).__name__}: {exc})"))
            continue
        os.chdir(cwd)   # relative paths in the call mean what they mean to the caller
        if wants_progress:
            kwargs["progress"] = lambda stage, done, total: conn.send(("progress", stage, done, total))
        answer = _call(fn, args, kwargs)
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send(("error", f"the result of {getattr(fn, '__name__', fn)} cannot be sent back: {exc}"))


if __name__ == "__main__":
    _serve(int(sys.argv[2]))   # python -m tinyc.isolated --serve FD
