"""Run a function that may abort the process (LiteRT's interpreter on a user's model) in a
child process, so that a native crash becomes a one-line TinycError instead of killing tinyc.

LiteRT's kernels check their constants with hard asserts (TFLITE_CHECK -> abort()) while an
interpreter allocates tensors: a SOFTMAX whose beta * input scale is tiny, for instance,
ends the process with SIGABRT and no message. `run_isolated(fn, *args, what=...)` calls
`fn(*args, **kwargs)` in one child Python (one child for a whole batch: start-up costs
about half a second) and returns its result; the child's own output goes to a log whose
last line, if any, is quoted when it dies.

The child is a plain `python -m tinyc.isolated` (not multiprocessing's spawn, which
re-runs the caller's main script and so breaks scripts without a main guard); the call
and its result travel as pickles, the result through a file so that native chatter on the
child's stdout cannot corrupt it.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
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
    with tempfile.TemporaryDirectory(prefix="tinyc-child-") as tmp:
        call, result, log = Path(tmp) / "call.pkl", Path(tmp) / "result.pkl", Path(tmp) / "log.txt"
        call.write_bytes(pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL))
        with log.open("wb") as log_fh:
            proc = subprocess.Popen([sys.executable, "-m", "tinyc.isolated", str(call), str(result)],
                                    stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                                    env=_child_env())
            try:
                code = proc.wait()
            except BaseException:   # interrupted: the child goes with us
                proc.kill()
                proc.wait()
                raise
        if code == 0 and result.is_file():
            kind, value = pickle.loads(result.read_bytes())
            if kind == "ok":
                return value
            if kind == "tinyc":
                cls, msg = value
                raise cls(msg)
            raise TinycError(f"{what} failed: {value}")
        how = f"was killed by {_signal_name(code)}" if code < 0 else f"exited with code {code}"
        last = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()]
        said = f" ({last[-1][:200]})" if last else " (no message)"
        hint = hint() if callable(hint) else hint
        raise TinycError(f"LiteRT {how} while {what}{said}" + (f"; {hint}" if hint else ""))


def _main(call_path: str, result_path: str) -> None:
    fn, args, kwargs = pickle.loads(Path(call_path).read_bytes())
    try:
        out = ("ok", fn(*args, **kwargs))
    except TinycError as exc:
        out = ("tinyc", (type(exc), str(exc)))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which words it
        out = ("error", f"{type(exc).__name__}: {exc}")
    tmp = Path(result_path + ".tmp")
    tmp.write_bytes(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(result_path)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
