"""Model files in: `.tflite` flatbuffers <-> the IR (tflite.py), and which kind of file a
model path is (`model_format`, the one place that looks at a path to decide)."""

from __future__ import annotations

from pathlib import Path

from tinyc.errors import TinycError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def model_format(path) -> str:
    """"keras" (.keras/.h5 file), "saved_model" (a folder with saved_model.pb) or "tflite"."""
    p = Path(path)
    if p.is_dir():
        if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise TinycError(f"{p} is a folder but not a SavedModel (no saved_model.pb)")
    if p.suffix.lower() in KERAS_SUFFIXES:
        return "keras"
    if not p.is_file():
        raise TinycError(f"{p}: no such file")
    if p.suffix.lower() != ".tflite":
        try:
            with p.open("rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise TinycError(f"cannot read {p}: {exc.strerror or exc}") from None
        if head[4:8] != b"TFL3":
            raise TinycError(f"{p}: unknown model format; tinyc reads .tflite, .keras, .h5 and SavedModel folders")
    return "tflite"
