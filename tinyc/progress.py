"""The one progress convention of the library: `progress(stage, done, total, note="")`.

Library code calls it as work advances and never prints; the CLI draws the only bar
(tinyc/cli/progress.py). `total` 0 means a stage without a count (a one-off step).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, note: str = "") -> None: ...


def report(progress: Progress | None, stage: str, done: int, total: int, note: str = "") -> None:
    """Call `progress` when there is one."""
    if progress is not None:
        progress(stage, done, total, note)
