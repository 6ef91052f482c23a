"""Superpixel backends: SLIC with the seed's parameters behind one small interface.

``get_backend("auto" | "skimage" | "native")`` returns an object with ``.name`` and
``.segment(image_rgb, n_segments, compactness, sigma)`` (checked, and defaulted, by
``SlicParams``). Every backend returns int32
[H, W] labels ``0 .. S-1`` with every label present (contiguous), computed on the
Lab conversion of the RGB photo like the seed (scikit-image ``slic`` with
``convert2lab=True``, ``start_label=0``, ``enforce_connectivity=True``).

The native backend is the C++ extension ``clothparse._slic`` (built from ``cpp_ext/``
by CMake during ``pip install .``). Contract for that module: a function
``slic(image: uint8 [H, W, 3] C-contiguous RGB, n_segments: int, compactness: float,
sigma: float) -> int32 [H, W]`` with the same meaning as scikit-image's. ``"auto"``
uses it when it imports and otherwise falls back to scikit-image, saying so once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from clothparse.errors import ConfigError, DataError, DependencyError

log = logging.getLogger(__name__)

BACKEND_NAMES = ("auto", "skimage", "native")
NATIVE_BUILD_HINT = (
    "the native SLIC extension clothparse._slic is not built; using scikit-image "
    "(several times slower). Build it with: pip install -e . (needs CMake and a C++17 compiler)"
)

_told_fallback = False


def check_int(name: str, value: int, low: int) -> int:
    """``value`` as an int ``>= low``; ``ConfigError`` for anything else (bools and floats too)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_number(name: str, value: float, low: float, *, strict: bool) -> float:
    """``value`` as a finite float ``>= low`` (``> low`` when ``strict``); ``ConfigError`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


@dataclass(frozen=True)
class SlicParams:
    """SLIC settings: the one home of their defaults (the seed's: about 900 segments,
    compactness 20, sigma 2) and of their validation.

    Every way in (``cpt parse --n-segments/--compactness/--sigma``, ``Parser``, each
    backend's ``segment``, ``slic_native.slic``) builds one of these, so every caller gets
    the same checks: ``ConfigError`` unless n_segments is an integer >= 1, compactness a
    finite number > 0 and sigma a finite number >= 0. Defaults elsewhere are read from the
    class (``SlicParams.n_segments``); the C++ core's ``Params`` carries the same numbers,
    which ``tests/test_slic_native.py`` checks against this class.
    """

    n_segments: int = 900
    compactness: float = 20.0
    sigma: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_segments", check_int("n_segments", self.n_segments, 1))
        object.__setattr__(self, "compactness", check_number("compactness", self.compactness, 0.0, strict=True))
        object.__setattr__(self, "sigma", check_number("sigma", self.sigma, 0.0, strict=False))


@runtime_checkable
class SuperpixelBackend(Protocol):
    """What every superpixel backend offers."""

    name: str

    def segment(
        self,
        image_rgb: np.ndarray,
        n_segments: int = SlicParams.n_segments,
        compactness: float = SlicParams.compactness,
        sigma: float = SlicParams.sigma,
    ) -> np.ndarray:
        """int32 [H, W] labels 0..S-1 (all present) of an RGB uint8 [H, W, 3] image."""
        ...


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous uint8 [H, W, 3] array; ``DataError`` for anything else."""
    img = np.asarray(image_rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise DataError(f"superpixels need an RGB uint8 [H, W, 3] image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)


def relabel_contiguous(labels: np.ndarray) -> np.ndarray:
    """int32 [H, W]: labels renumbered to 0..S-1 in increasing order of the old ids (no gaps)."""
    lab = np.asarray(labels)
    if lab.size == 0:
        return lab.astype(np.int32)
    if lab.min() < 0:
        raise ValueError("superpixel labels must be >= 0")
    counts = np.bincount(lab.ravel())
    if counts.all():
        return lab.astype(np.int32, copy=False)
    remap = np.cumsum(counts > 0, dtype=np.int64) - 1
    return remap[lab].astype(np.int32)


class SkimageSlic:
    """scikit-image ``slic`` with the seed's conversion to Lab."""

    name = "skimage"

    def segment(
        self,
        image_rgb: np.ndarray,
        n_segments: int = SlicParams.n_segments,
        compactness: float = SlicParams.compactness,
        sigma: float = SlicParams.sigma,
    ) -> np.ndarray:
        """int32 [H, W] labels 0..S-1 of an RGB uint8 [H, W, 3] image."""
        from skimage.segmentation import slic

        img = check_image(image_rgb)
        p = SlicParams(n_segments, compactness, sigma)
        labels = slic(
            img,
            n_segments=p.n_segments,
            compactness=p.compactness,
            sigma=p.sigma,
            convert2lab=True,
            start_label=0,
            channel_axis=-1,
        )
        return relabel_contiguous(labels)


class NativeSlic:
    """The C++ SLIC (``clothparse._slic``) through its validating Python layer ``slic_native``.

    Same parameters and output contract as ``SkimageSlic``.
    """

    name = "native"

    def segment(
        self,
        image_rgb: np.ndarray,
        n_segments: int = SlicParams.n_segments,
        compactness: float = SlicParams.compactness,
        sigma: float = SlicParams.sigma,
    ) -> np.ndarray:
        """int32 [H, W] labels 0..S-1 of an RGB uint8 [H, W, 3] image."""
        from clothparse.parse import slic_native

        return slic_native.slic(image_rgb, n_segments, compactness, sigma)


def _native_available() -> bool:
    from clothparse.parse import slic_native

    return slic_native.available()


def get_backend(name: str = "auto") -> SuperpixelBackend:
    """A superpixel backend by name: ``auto`` (native if built, else scikit-image), ``skimage``, ``native``.

    ``native`` raises ``DependencyError`` when the extension is not built; ``auto`` logs
    a one-time warning naming how to build it and uses scikit-image.
    """
    global _told_fallback
    if name not in BACKEND_NAMES:
        raise ConfigError(f"unknown superpixel backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if name == "skimage":
        return SkimageSlic()
    if _native_available():
        return NativeSlic()
    if name == "native":
        raise DependencyError(NATIVE_BUILD_HINT.split(";")[0] + "; build it with: pip install -e . (needs CMake and a C++17 compiler)")
    if not _told_fallback:
        log.warning(NATIVE_BUILD_HINT)
        _told_fallback = True
    return SkimageSlic()
