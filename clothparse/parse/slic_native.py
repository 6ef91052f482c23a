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
from types import ModuleType

import numpy as np

from clothparse.errors import DataError, DependencyError
from clothparse.parse.superpixels import SlicParams, check_int, check_number

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


def slic(
    image: np.ndarray,
    n_segments: int = SlicParams.n_segments,
    compactness: float = SlicParams.compactness,
    sigma: float = SlicParams.sigma,
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
    ``n_segments``, ``compactness`` and ``sigma`` are checked (and defaulted) by ``SlicParams``.
    Raises ``DataError`` for a bad image, ``ConfigError`` for a bad parameter and
    ``DependencyError`` when the extension is not built.
    """
    mod = _require()
    img = _check_image(image)
    p = SlicParams(n_segments, compactness, sigma)
    lo = check_number("min_size_factor", min_size_factor, 0.0, strict=False)
    hi = check_number("max_size_factor", max_size_factor, lo, strict=False)
    iters = check_int("max_iter", max_iter, 1)
    threads = check_int("num_threads", num_threads, 0)
    labels = mod.slic(img, p.n_segments, p.compactness, p.sigma, bool(enforce_connectivity), lo, hi, iters, threads)
    return np.asarray(labels, dtype=np.int32)


def lab_planes(image: np.ndarray, sigma: float = 0.0, *, num_threads: int = 0) -> np.ndarray:
    """float32 [3, H, W] L, a, b planes SLIC clusters on: byte range stretched to [0, 1],
    sRGB (D65) to Lab (L in [0, 100]), Gaussian of ``sigma`` pixels with 'reflect' borders,
    rounded to multiples of 2^-12. Exposed for tests and diagnostics."""
    mod = _require()
    img = _check_image(image)
    s = check_number("sigma", sigma, 0.0, strict=False)
    threads = check_int("num_threads", num_threads, 0)
    return np.asarray(mod.lab_planes(img, s, threads), dtype=np.float32)
