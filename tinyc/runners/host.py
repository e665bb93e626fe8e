"""The host board: the model compiled for this machine, run as a local process on a pipe."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.outdir import Manifest, binary_path, load_manifest
from tinyc.progress import Progress, report
from tinyc.runners.session import InferResult


class HostSession:
    def __init__(self, board: Board, outdir: Path, timeout: float = 60.0, manifest: Manifest | None = None, **_):
        manifest = manifest if manifest is not None else load_manifest(outdir)
        self.in_bytes = sum(t.bytes for t in manifest.inputs)
        self.out_bytes = sum(t.bytes for t in manifest.outputs)
        self.binary = binary_path(outdir, board)
        if not self.binary.exists():
            raise TinycError(f"{self.binary} is missing: run `tinyc build {outdir} --board host`")
        self.timeout = timeout
        self.proc = None  # started by the first infer(); infer_many() needs none

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def infer(self, data: bytes) -> InferResult:
        if len(data) != self.in_bytes:
            raise TinycError(f"input record has {len(data)} bytes, the model takes {self.in_bytes}")
        if self.proc is None:
            self.proc = subprocess.Popen([str(self.binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            reply = self.proc.stdout.read(self.out_bytes + 8)
        except BrokenPipeError:
            reply = b""
        if len(reply) != self.out_bytes + 8:
            err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.poll() is not None else ""
            raise TinycError(f"the host model process died (exit {self.proc.poll()}){': ' + err if err else ''}")
        return InferResult(reply[:self.out_bytes], int.from_bytes(reply[self.out_bytes:], "little"), "ns")

    def infer_many(self, records: list[bytes], progress: Progress | None = None,
                   stage: str = "infer") -> list[InferResult]:
        """All records through one pipe at once: fast for large validations."""
        self.close()
        proc = subprocess.run([str(self.binary)], input=b"".join(records), capture_output=True, timeout=self.timeout)
        step = self.out_bytes + 8
        if proc.returncode != 0 or len(proc.stdout) != step * len(records):
            raise TinycError(f"the host model process failed (exit {proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace').strip()[:200]}")
        out = proc.stdout
        report(progress, stage, len(records), len(records))
        return [InferResult(out[i * step:i * step + self.out_bytes],
                            int.from_bytes(out[i * step + self.out_bytes:(i + 1) * step], "little"), "ns")
                for i in range(len(records))]

    def close(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # end of input: the harness exits
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()


def open_session(board: Board, outdir: Path, **options) -> HostSession:
    return HostSession(board, outdir, **options)
