"""The host board: the model compiled for this machine, run as a local process on a pipe.

Every reply has a deadline (`timeout` seconds from the request, or from the previous reply
when many records stream through one pipe): a harness that waits for bytes that never
come (built for another input size) or loops is ended by its PID with a clear error.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.outdir import Manifest, binary_path, load_manifest
from tinyc.progress import Progress, report
from tinyc.runners.session import InferResult, default_timeout


class HostSession:
    link_stats = None   # a pipe, not a serial link: nothing to count

    def __init__(self, board: Board, outdir: Path, timeout: float | None = None, manifest: Manifest | None = None,
                 **_):
        manifest = manifest if manifest is not None else load_manifest(outdir)
        self.in_bytes = sum(t.bytes for t in manifest.inputs)
        self.out_bytes = sum(t.bytes for t in manifest.outputs)
        self.binary = binary_path(outdir, board)
        if not self.binary.exists():
            raise TinycError(f"{self.binary} is missing: run `tinyc build {outdir} --board host`")
        self.timeout = float(timeout) if timeout is not None else default_timeout(manifest)
        self.proc = None  # started by the first infer(); infer_many() runs its own
        self._stderr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self) -> subprocess.Popen:
        self._stderr = tempfile.TemporaryFile()
        return subprocess.Popen([str(self.binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self._stderr)

    def _read(self, proc: subprocess.Popen, n: int, deadline: float, what: str) -> bytes:
        """n bytes of the harness's stdout before `deadline` (time.monotonic), else an error."""
        fd, buf = proc.stdout.fileno(), bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._kill(proc)
                raise TinycError(
                    f"the host model process gave no reply within {self.timeout:g} s ({what}): it may have been "
                    f"built for another input size than tinyc.json's {self.in_bytes} bytes (rebuild with "
                    f"`tinyc build OUTDIR --board host --force`), or needs longer: raise --timeout")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                break   # the process ended
            buf += chunk
        return bytes(buf)

    def _died(self, proc: subprocess.Popen) -> TinycError:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._kill(proc)
        err = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            err = lines[-1][:200] if lines else ""
        return TinycError(f"the host model process died (exit {proc.returncode}){': ' + err if err else ''}")

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def infer(self, data: bytes) -> InferResult:
        if len(data) != self.in_bytes:
            raise TinycError(f"input record has {len(data)} bytes, the model takes {self.in_bytes}")
        if self.proc is None:
            self.proc = self._start()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._died(self.proc) from None
        reply = self._read(self.proc, self.out_bytes + 8, time.monotonic() + self.timeout, "one inference")
        if len(reply) != self.out_bytes + 8:
            raise self._died(self.proc)
        return InferResult(reply[:self.out_bytes], int.from_bytes(reply[self.out_bytes:], "little"), "ns")

    def infer_many(self, records: list[bytes], progress: Progress | None = None,
                   stage: str = "infer") -> list[InferResult]:
        """All records through one pipe (fast for large validations); each reply must come
        within `timeout` of the one before."""
        self.close()
        for r in records:
            if len(r) != self.in_bytes:
                raise TinycError(f"input record has {len(r)} bytes, the model takes {self.in_bytes}")
        proc = self._start()
        payload = b"".join(records)

        def feed():
            try:
                proc.stdin.write(payload)
                proc.stdin.close()   # end of input: the harness exits after the last reply
            except (BrokenPipeError, OSError, ValueError):
                pass
        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        step, results = self.out_bytes + 8, []
        try:
            for k in range(len(records)):
                reply = self._read(proc, step, time.monotonic() + self.timeout,
                                   f"sample {k + 1} of {len(records)}")
                if len(reply) != step:
                    raise self._died(proc)
                results.append(InferResult(reply[:self.out_bytes], int.from_bytes(reply[self.out_bytes:], "little"),
                                           "ns"))
                report(progress, stage, k + 1, len(records))
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
        finally:
            self._kill(proc)
            writer.join(timeout=1)
            proc.stdout.close()
        return results

    def close(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # end of input: the harness exits
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        if proc is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def open_session(board: Board, outdir: Path, **options) -> HostSession:
    return HostSession(board, outdir, **options)
