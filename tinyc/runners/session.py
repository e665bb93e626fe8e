"""What every runner's session is (`Session`), and what one inference returns (`InferResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tinyc.progress import Progress, report


@dataclass
class InferResult:
    output: bytes                      # the output tensors' bytes, concatenated in order
    cycles: int | None = None          # per-inference count, in `cycle_unit`
    cycle_unit: str = "cycles"         # "cycles" | "instructions" | "ns"
    layer_cycles: list[int] | None = None
    stack_bytes: int | None = None     # stack high-water mark of the inference (None: not measured)


class Session(Protocol):
    """A board running one model: `open_session` returns one; use it as a context manager."""

    def infer(self, data: bytes) -> InferResult:
        """One input record (the input tensors' bytes, concatenated) -> its result."""

    def infer_many(self, records: list[bytes], progress: Progress | None = None,
                   stage: str = "infer") -> list[InferResult]:
        """Many records, in order; a runner may send them all at once."""

    def close(self) -> None: ...

    def __enter__(self) -> "Session": ...

    def __exit__(self, *exc) -> None: ...


BASE_TIMEOUT = 60.0          # seconds an inference may compute when nothing better is known...
SECONDS_PER_MAC = 1e-6       # ...plus this per MAC: a slow emulated core still finishes well inside


def default_timeout(manifest=None) -> float:
    """The compute allowance of one inference: scaled to the model's work (its MACs). The
    serial link adds each request's wire time at its baud rate on top (tinyc.link)."""
    macs = int(getattr(manifest, "macs", 0) or 0)
    return BASE_TIMEOUT + SECONDS_PER_MAC * macs


def infer_each(session: Session, records: list[bytes], progress: Progress | None = None,
               stage: str = "infer") -> list[InferResult]:
    """infer_many for runners that send one record at a time."""
    results = []
    for k, r in enumerate(records):
        results.append(session.infer(r))
        report(progress, stage, k + 1, len(records))
    return results
