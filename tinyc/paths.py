"""Checks of the paths a user gives for what tinyc writes (-o OUTDIR, --output, --report),
made before any work so that a bad one costs nothing and leaves nothing behind, and the one
way tinyc writes a result file (atomically: a reader never sees half of it)."""

from __future__ import annotations

import os
from pathlib import Path

from tinyc.errors import TinycError


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable_dir(path: Path, flag: str) -> None:
    """`path` can become a folder tinyc writes into (it may not exist yet)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TinycError(f"{flag} {path} is a file, not a folder: choose another {flag}")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise TinycError(f"{flag} {path} is under {base}, which is a file: choose another {flag}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise TinycError(f"{flag} {path}: {base} is not writable for you; choose another {flag}")


def check_writable_file(path: Path, flag: str, *, make_parents: bool = False) -> None:
    """`path` can be written as a file: not a folder, its folder there (or creatable) and writable."""
    path = Path(path)
    if path.is_dir():
        raise TinycError(f"{flag} {path} is a folder; give a file name (e.g. {path / ('out' + (path.suffix or '.npy'))})")
    parent = path.absolute().parent
    if not parent.exists() and not make_parents:
        raise TinycError(f"{flag} {path}: the folder {path.parent} does not exist; create it or choose another {flag}")
    check_writable_dir(parent, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise TinycError(f"{flag} {path} is not writable for you; choose another {flag}")


def write_atomically(path: Path, write) -> None:
    """write(tmp_path) makes the file beside `path`; it replaces `path` only when complete,
    and is removed when writing fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as exc:
        raise TinycError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
