"""The CLI's one progress bar: a `tinyc.progress.Progress` that draws on stderr."""

from __future__ import annotations

import click

WIDTH = 30


def bar(stage: str, done: int, total: int, note: str = "") -> None:
    """One line per stage, redrawn in place about 20 times and ended when done == total."""
    if not total:
        click.echo(f"{stage}{': ' + note if note else ''}", err=True)
        return
    if done == total or done % max(1, total // 20) == 0:
        filled = WIDTH * done // total
        click.echo(f"\r  {stage}: [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}"
                   + (f"  {note}" if note else "") + ("\n" if done == total else ""), err=True, nl=False)
