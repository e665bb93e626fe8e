"""Calibration data: float32 samples checked against the model input, from a file or random."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.errors import TinycError


def load_samples(path, input_shape: tuple, what: str = "calibration data", key: str = "x",
                 integer: bool = False) -> tuple[np.ndarray, list[str]]:
    """Float32 samples shaped (N, *input_shape[1:]) from a .npy, or a .npz holding `key`
    (integer: the model input is int32 indices, see check_samples)."""
    p = Path(path)
    if not p.is_file():
        raise TinycError(f"{what} {p}: no such file")
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise TinycError(f"{what} {p} cannot be read without pickle ({str(e).splitlines()[0][:120]}); save plain "
                         "numeric arrays with np.save / np.savez") from None
    except Exception as e:
        raise TinycError(f"{what} {p} is not a .npy or .npz file ({type(e).__name__})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if not names:
                raise TinycError(f"{what} {p} is an empty .npz; save the samples with np.savez(path, {key}=samples)")
            if key not in names:
                raise TinycError(f"{what} {p} has no array '{key}' (it has: {', '.join(names)}); "
                                 f"save the samples with np.savez(path, {key}=samples)")
            x = loaded[key]
    else:
        x = loaded
    return check_samples(x, input_shape, f"{what} {p.name}", integer=integer)


def check_samples(x: np.ndarray, input_shape: tuple, what: str, integer: bool = False) -> tuple[np.ndarray, list[str]]:
    """Validate dtype, shape and values; returns (float32 samples, warnings). integer: the
    model input is int32 indices (an Embedding's); the samples must be whole numbers below
    2^24 in magnitude, which float32 holds exactly."""
    warnings: list[str] = []
    x = np.asarray(x)
    want = tuple(int(d) for d in input_shape[1:])
    if x.dtype.kind not in "fiu":
        raise TinycError(f"{what} has dtype {x.dtype}, the model input is {'int32' if integer else 'float32'}: "
                         "give numeric samples")
    if integer:
        xf = x.astype(np.float64)
        if not np.all(np.isfinite(xf)) or np.any(xf != np.round(xf)) or np.any(np.abs(xf) >= 2 ** 24):
            raise TinycError(f"{what} holds values that are not whole numbers below 2^24; the model input is int32 "
                             "(indices): give integer samples")
    elif x.dtype.kind in "iu":
        warnings.append(f"{what} is {x.dtype}; its values are used as float32")
    if x.size == 0 or x.ndim == 0:
        raise TinycError(f"{what} holds no samples (shape {x.shape}); give an array of shape (N, {_dims(want)})")
    shape = tuple(x.shape)
    if shape[1:] == want:
        pass
    elif shape == tuple(input_shape) and len(input_shape) > len(want):
        pass  # one sample with its batch dimension
    elif shape[1:] == tuple(input_shape):
        x = x.reshape((shape[0],) + want)  # (N, 1, ...) samples with a batch dimension each
    elif shape == want:
        x = x.reshape((1,) + want)
        warnings.append(f"{what} is one sample of shape {shape}; calibrating with 1 sample")
    elif _squeezed(shape[1:]) == _squeezed(want) and int(np.prod(shape[1:])) == int(np.prod(want)):
        x = x.reshape((shape[0],) + want)
        warnings.append(f"{what} samples of shape {shape[1:]} reshaped to the model input {want}")
    else:
        raise TinycError(f"{what} has samples of shape {shape[1:]} (array {shape}) but the model input is "
                         f"{tuple(input_shape)}: give an array of shape (N, {_dims(want)})")
    x = x.reshape((-1,) + want)
    xf = x.astype(np.float32)
    bad = ~np.isfinite(xf)
    if bad.any():
        first = int(np.argmax(bad.reshape(len(xf), -1).any(axis=1)))
        raise TinycError(f"{what} has {int(bad.sum())} NaN/Inf values (first in sample {first}); "
                         "clean or drop those samples")
    return xf, warnings


def _dims(shape: tuple) -> str:
    return ", ".join(str(d) for d in shape)


def _squeezed(shape) -> tuple:
    return tuple(d for d in shape if d != 1)


def random_samples(n: int, input_shape: tuple, seed: int = 0, index_count: int | None = None) -> np.ndarray:
    """`--calib-random N`: uniform samples in [0, 1) for smoke tests only (scales meaningless);
    for an index input (index_count rows), whole numbers in [0, index_count)."""
    if n <= 0:
        raise TinycError("--calib-random needs a positive number of samples")
    rng = np.random.default_rng(seed)
    if index_count is not None:
        return rng.integers(0, index_count, (n,) + tuple(input_shape[1:])).astype(np.float32)
    return rng.random((n,) + tuple(input_shape[1:]), dtype=np.float32)
