"""Where templates/, firmware/ and boards/ are: the repo's top level in a checkout, or the
copies shipped inside the wheel (tinyc/_data/...)."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Path of the top-level folder `name` (templates, firmware or boards)."""
    for candidate in (_PKG.parent / name, _PKG / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinyc installation is missing its {name}/ folder")


def templates_dir() -> Path:
    return data_dir("templates")


def firmware_dir() -> Path:
    return data_dir("firmware")


def boards_dir() -> Path:
    return data_dir("boards")
