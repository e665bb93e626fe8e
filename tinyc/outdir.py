"""OUTDIR, the folder `tinyc convert` writes, and its manifest `tinyc.json`.

    OUTDIR/model.h model.c weights.h weights.c tinyc_kernels.h tinyc_fixedpoint.h   (codegen)
    OUTDIR/model.tflite        the exact int8 graph compiled (what the reference runs)
    OUTDIR/tinyc.json          the manifest: a `Manifest`, read once and passed along
    OUTDIR/build/<board>/      builds (tinyc_host, firmware.elf or tinyc_server)

Build, runners and validate read OUTDIR through this module only; it knows nothing of the
generator. Nothing half-written is left behind: a new OUTDIR is made in a temporary folder
beside it (`staging`) and moved into place only when complete.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from tinyc.errors import TinycError
from tinyc.ir import DTYPES
from tinyc.paths import check_writable_dir

MANIFEST = "tinyc.json"
MODEL_TFLITE = "model.tflite"
MODEL_SOURCES = ["model.c", "weights.c"]
MODEL_HEADERS = ["model.h", "weights.h", "tinyc_kernels.h", "tinyc_types.h", "tinyc_fixedpoint.h"]


@dataclass
class TensorInfo:
    """One model input or output as the generated C sees it."""

    name: str
    shape: list[int]
    dtype: str
    bytes: int
    scale: float | None
    zero_point: int | None


@dataclass
class LayerInfo:
    index: int
    name: str
    op: str
    macs: int


@dataclass
class Manifest:
    """tinyc.json. The fixed fields come first, in this order; `sections` holds the optional
    ones (quantization_report, keras_pruning, compression, evaluation, build, speed) in the
    order they were added."""

    tinyc_version: str
    board: str
    model_hash: str
    source: str | None
    ops: list[str]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    arena_bytes: int
    arena_order: str                  # the planner's order that gave the smallest arena
    weight_bytes: int
    code_bytes: int | None
    macs: int
    layers: list[LayerInfo]
    sections: dict = field(default_factory=dict)

    @property
    def input_bytes_total(self) -> int | None:
        """The bytes of one INFER payload (None when the model has no inputs)."""
        return sum(int(t.bytes) for t in self.inputs) or None

    def section(self, name: str):
        return self.sections.get(name)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sections"}
        d["inputs"] = [dataclasses.asdict(t) for t in self.inputs]
        d["outputs"] = [dataclasses.asdict(t) for t in self.outputs]
        d["layers"] = [dataclasses.asdict(l) for l in self.layers]
        d.update(self.sections)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        """The manifest of a parsed tinyc.json; a TinycError naming the first field that is
        missing or of the wrong type or shape (a hand-edited or corrupted file)."""
        if not isinstance(d, dict):
            raise ManifestError(f"holds a JSON {type(d).__name__}, not an object")
        fixed = {f.name for f in dataclasses.fields(cls)} - {"sections"}
        missing = fixed - set(d)
        if missing:
            raise ManifestError(f"lacks {', '.join(sorted(missing))}")
        values = {k: _typed(d[k], hint, k) for k, hint in _hints(cls).items() if k in fixed}
        for key in ("inputs", "outputs"):
            values[key] = [_tensor_info(t, f"{key}[{i}]") for i, t in enumerate(values[key])]
        values["layers"] = [LayerInfo(**_typed_fields(l, LayerInfo, f"layers[{i}]"))
                            for i, l in enumerate(values["layers"])]
        for k in ("arena_bytes", "weight_bytes", "code_bytes", "macs"):
            if values[k] is not None and values[k] < 0:
                raise ManifestError(f"'{k}' is {values[k]}, below 0")
        return cls(**values, sections={k: v for k, v in d.items() if k not in fixed})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n"


class ManifestError(TinycError):
    """tinyc.json is not what this tinyc wrote: the message names the field."""


def _hints(cls) -> dict:
    import typing

    return {k: v for k, v in typing.get_type_hints(cls).items() if k != "sections"}


def _typed(value, hint, where: str):
    """value checked against a field's type hint (int, float, str, None, list[...], a dataclass)."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        for alt in others[:-1]:
            try:
                return _typed(value, alt, where)
            except ManifestError:
                pass
        return _typed(value, others[-1], where)
    if origin is list:
        if not isinstance(value, list):
            raise ManifestError(f"'{where}' is {type(value).__name__}, not a list")
        return [_typed(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, dict) else _typed(value, dict, where)
    if hint in _KINDS:
        name, ok = _KINDS[hint]
        if not ok(value):
            raise ManifestError(f"'{where}' is {json.dumps(value)[:40]}, not {name}")
    return value


_KINDS = {   # JSON kinds of the manifest's plain fields: (what to call it, test)
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    dict: ("an object", lambda v: isinstance(v, dict)),
    list: ("a list", lambda v: isinstance(v, list)),
}


def _typed_fields(d, cls, where: str) -> dict:
    if not isinstance(d, dict):
        raise ManifestError(f"'{where}' is {type(d).__name__}, not an object")
    hints = _hints(cls)
    missing = set(hints) - set(d)
    if missing:
        raise ManifestError(f"'{where}' lacks {', '.join(sorted(missing))}")
    return {k: _typed(d[k], hints[k], f"{where}.{k}") for k in hints}


def _tensor_info(d, where: str) -> TensorInfo:
    t = TensorInfo(**_typed_fields(d, TensorInfo, where))
    if t.dtype not in DTYPES:
        raise ManifestError(f"'{where}.dtype' is '{t.dtype}', not a tensor type ({', '.join(DTYPES)})")
    itemsize = np.dtype(t.dtype).itemsize
    if any(n < 0 for n in t.shape):
        raise ManifestError(f"'{where}.shape' {t.shape} has a negative dimension")
    if t.bytes != int(np.prod(t.shape, dtype=np.int64)) * itemsize:
        raise ManifestError(f"'{where}.bytes' is {t.bytes}, but shape {t.shape} of {t.dtype} takes "
                            f"{int(np.prod(t.shape, dtype=np.int64)) * itemsize}")
    return t


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


# ----------------------------------------------------------------------------- paths

def generated_files(outdir: Path) -> list[Path]:
    """The C files codegen writes (what a build depends on)."""
    return [Path(outdir) / n for n in (*MODEL_SOURCES, *MODEL_HEADERS)]


def build_dir(outdir: Path, board) -> Path:
    return Path(outdir) / "build" / board.name


def binary_path(outdir: Path, board) -> Path:
    """The program a build for `board` makes: host harness, Linux server or MCU firmware."""
    if board.runner == "host":
        name = "tinyc_host"
    else:
        name = "tinyc_server" if board.kind == "linux" else "firmware.elf"
    return build_dir(outdir, board) / name


def require_sources(outdir: Path) -> None:
    if not (Path(outdir) / "model.c").exists():
        raise TinycError(f"{outdir} has no generated sources: run `tinyc convert MODEL -o {outdir}` first")


# ----------------------------------------------------------------------------- manifest I/O

def load_manifest(outdir: Path) -> Manifest:
    path = Path(outdir) / MANIFEST
    if not path.is_file():
        raise TinycError(f"{outdir} has no {MANIFEST}: run `tinyc convert MODEL -o {outdir}` first")
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise TinycError(f"{path} is not a tinyc manifest (not text); convert the model again") from None
    except ValueError as exc:
        why = "empty" if not path.read_bytes().strip() else f"not JSON: {exc}"
        raise TinycError(f"{path} is not a tinyc manifest ({why}); convert the model again") from None
    except OSError as exc:
        raise TinycError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return Manifest.from_dict(data)
    except ManifestError as exc:
        raise TinycError(f"{path} is damaged or from another tinyc: {exc}; convert the model again") from None


def save_manifest(outdir: Path, manifest: Manifest) -> None:
    """Write tinyc.json atomically (a reader never sees half a file)."""
    path = Path(outdir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.to_json())
    tmp.replace(path)


def update_manifest(outdir: Path, manifest: Manifest | None = None, **fields) -> Manifest:
    """Set fixed fields or sections of OUTDIR's manifest (loaded unless given) and save it."""
    manifest = manifest if manifest is not None else load_manifest(outdir)
    names = {f.name for f in dataclasses.fields(Manifest)} - {"sections"}
    for k, v in fields.items():
        if k in names:
            setattr(manifest, k, v)
        else:
            manifest.sections[k] = v
    save_manifest(outdir, manifest)
    return manifest


# ----------------------------------------------------------------------------- writing a new OUTDIR

def check_outdir(outdir: Path) -> None:
    """Refuse, before any work, an OUTDIR that cannot be written or is someone else's folder."""
    outdir = Path(outdir)
    check_writable_dir(outdir, "-o")
    if outdir.is_dir() and any(outdir.iterdir()) and not (outdir / MANIFEST).exists():
        raise TinycError(f"-o {outdir} is a non-empty folder that tinyc did not make; choose another -o or empty it")


@contextmanager
def staging(outdir: Path) -> Iterator[Path]:
    """A temporary folder beside outdir to write a new OUTDIR into; it replaces outdir when
    the block ends without error, and is removed otherwise."""
    outdir = Path(outdir)
    check_outdir(outdir)
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=outdir.parent))
    except OSError as exc:
        raise TinycError(f"cannot write -o {outdir}: {exc.strerror or exc}; choose another -o") from None
    try:
        yield tmp
        _replace_dir(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(new: Path, target: Path) -> None:
    if target.exists():
        if not target.is_dir():
            raise TinycError(f"{target} exists and is not a folder; choose another -o")
        if any(target.iterdir()) and not (target / MANIFEST).exists():
            raise TinycError(f"{target} is a non-empty folder that tinyc did not make; choose another -o or empty it")
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)
