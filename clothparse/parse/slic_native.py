"""Python API of the native SLIC (``clothparse._slic``, built from ``cpp_ext/`` by CMake).

Checks arguments, then calls the C++ core, which releases the GIL and runs on OpenMP threads.
Parameters mean what they mean in ``skimage.segmentation.slic(image, n_segments, compactness,
sigma, convert2lab=True, enforce_connectivity=..., start_label=0)``: the image's byte range is
stretched to [0, 1], converted to CIE Lab (D65), blurred with a Gaussian of ``sigma`` pixels,
seeded on skimage's regular grid and clustered with distance
``|Lab - Lab_k|^2 / compactness^2 + |yx - yx_k|^2 / step^2``. Two deliberate differences:
each centre searches the 2*step x 2*step window [centre - step, centre + step) of Achanta's
SLIC instead of skimage's (4*step+1)^2, and a too-small piece joins the segment left of (or above) its first pixel.
Results are deterministic and do not depend on the thread count.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType

import numpy as np

from clothparse.errors import ConfigError, DataError, DependencyError

BUILD_HINT = (
    "the native SLIC extension clothparse._slic is not built; build it with "
    "`pip install -e .` (needs CMake >= 3.18 and a C++17 compiler)"
)

#: Largest image the C++ core accepts (pixels).
MAX_PIXELS = 1 << 30


def _module() -> ModuleType | None:
    # import_module keeps mypy independent of whether the extension is built.
    try:
        return importlib.import_module("clothparse._slic")
    except ImportError:
        return None


def available() -> bool:
    """True when the compiled extension ``clothparse._slic`` imports."""
    return _module() is not None


def _require() -> ModuleType:
    mod = _module()
    if mod is None:
        raise DependencyError(BUILD_HINT)
    return mod


def default_threads() -> int:
    """Most threads the native SLIC uses when ``num_threads`` is 0 (1 without OpenMP)."""
    return int(_require().default_threads())


def _check_image(image: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous uint8 [H, W, 3] RGB array (copied only when it is not one)."""
    if not isinstance(image, np.ndarray):
        raise DataError(f"SLIC needs a numpy RGB uint8 [H, W, 3] image, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"SLIC needs an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise DataError(f"SLIC needs an image of 1 to {MAX_PIXELS} pixels, got {h}x{w}")
    return np.ascontiguousarray(image)


def _check_number(name: str, value: float, low: float, *, strict: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


def _check_int(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return int(value)


def slic(
    image: np.ndarray,
    n_segments: int = 900,
    compactness: float = 20.0,
    sigma: float = 2.0,
    enforce_connectivity: bool = True,
    min_size_factor: float = 0.5,
    max_size_factor: float = 3,
    max_iter: int = 10,
    *,
    num_threads: int = 0,
) -> np.ndarray:
    """SLIC superpixels of an RGB uint8 [H, W, 3] image (any strides; copied if not C-contiguous).

    Returns int32 [H, W] labels 0..S-1, every value present, in raster order of first
    appearance when ``enforce_connectivity`` (then each label is one 4-connected region);
    S is about ``n_segments`` (at most H*W). ``num_threads`` 0 uses the OpenMP default (all
    cores, or ``OMP_NUM_THREADS``); a positive value is used as given.
    Raises ``DataError`` for a bad image, ``ConfigError`` for a bad parameter and
    ``DependencyError`` when the extension is not built.
    """
    mod = _require()
    img = _check_image(image)
    n = _check_int("n_segments", n_segments, 1)
    c = _check_number("compactness", compactness, 0.0, strict=True)
    s = _check_number("sigma", sigma, 0.0, strict=False)
    lo = _check_number("min_size_factor", min_size_factor, 0.0, strict=False)
    hi = _check_number("max_size_factor", max_size_factor, lo, strict=False)
    iters = _check_int("max_iter", max_iter, 1)
    threads = _check_int("num_threads", num_threads, 0)
    labels = mod.slic(img, n, c, s, bool(enforce_connectivity), lo, hi, iters, threads)
    return np.asarray(labels, dtype=np.int32)


def lab_planes(image: np.ndarray, sigma: float = 0.0, *, num_threads: int = 0) -> np.ndarray:
    """float32 [3, H, W] L, a, b planes SLIC clusters on: byte range stretched to [0, 1],
    sRGB (D65) to Lab (L in [0, 100]), Gaussian of ``sigma`` pixels with 'reflect' borders,
    rounded to multiples of 2^-12. Exposed for tests and diagnostics."""
    mod = _require()
    img = _check_image(image)
    s = _check_number("sigma", sigma, 0.0, strict=False)
    threads = _check_int("num_threads", num_threads, 0)
    return np.asarray(mod.lab_planes(img, s, threads), dtype=np.float32)
