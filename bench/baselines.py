"""Baselines measured in the same run as the suite, so every figure is a same-machine ratio.

- ``seed``: the seed's superpixel stage done its way (scikit-image SLIC, then
  ``clothparse.bench.seed_baseline.seed_parse``: full-resolution masks, regionprops and
  Python loops) against ours (the configured superpixel backend + ``fuse``), on the same
  image and the same detections.
- ``fast-slic``: the peer anchor for superpixels (``SlicAvx2``, same segment count and
  compactness) against our backend, when ``fast_slic`` is importable; the two alternate.
- ``skimage-vs-native``: scikit-image SLIC against the native SLIC, when both exist.

Each baseline row: {name, size, ours, ours_ms, theirs, theirs_ms, ratio} where ratio =
theirs_ms / ours_ms (> 1: ours is faster), or {name, status: "skipped", reason}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from clothparse.bench.timing import summarize, time_alternating, time_fn

from clothparse.engines.base import Detections


def _row(name: str, size: str, ours: str, ours_s: list[float], theirs: str, theirs_s: list[float]) -> dict[str, Any]:
    o = summarize(ours_s).median_ms
    t = summarize(theirs_s).median_ms
    return {
        "name": name, "size": size, "status": "ok", "ours": ours, "ours_ms": round(o, 3),
        "theirs": theirs, "theirs_ms": round(t, 3), "ratio": round(t / o, 3) if o > 0 else None,
    }


def skipped(name: str, size: str, reason: str) -> dict[str, Any]:
    return {"name": name, "size": size, "status": "skipped", "reason": reason}


def fast_slic_segmenter(n_segments: int, compactness: float) -> Callable[[np.ndarray], np.ndarray] | None:
    """fast-slic's AVX2 SLIC as ``f(RGB uint8 [H, W, 3]) -> int labels [H, W]``, or None if not installed."""
    try:
        from fast_slic.avx2 import SlicAvx2
    except ImportError:
        return None
    slic = SlicAvx2(num_components=int(n_segments), compactness=float(compactness))
    return lambda img: slic.iterate(np.ascontiguousarray(img))


def run_baselines(
    image: np.ndarray,
    clothing: Detections,
    bodies: Detections,
    backend: Any,
    slic: Any,
    params: Any,
    warmup: int,
    repeat: int,
    seed_repeat: int,
) -> list[dict[str, Any]]:
    """All baselines on one RGB uint8 [H, W, 3] ``image`` with the pipeline's detections.

    backend: our superpixel backend; slic: ``SlicParams``; params: ``FusionParams``.
    ``seed_repeat`` caps the repeats of the (slow) seed way.
    """
    from clothparse.bench.seed_baseline import seed_parse

    from clothparse.parse.fusion import fuse
    from clothparse.parse.superpixels import get_backend

    h, w = image.shape[:2]
    size = f"{h}x{w}"
    kw = dict(n_segments=slic.n_segments, compactness=slic.compactness, sigma=slic.sigma)
    skimage = get_backend("skimage")
    sp_ours = backend.segment(image, **kw)
    sp_seed = skimage.segment(image, **kw)
    rows: list[dict[str, Any]] = []

    ours = time_fn(lambda: fuse(image, backend.segment(image, **kw), clothing, bodies, params), warmup, repeat)
    theirs = time_fn(lambda: seed_parse(image, skimage.segment(image, **kw), clothing, bodies), min(warmup, 1), seed_repeat)
    rows.append(_row("seed superpixel stage (SLIC + fusion)", size, f"{backend.name} SLIC + fuse", ours, "skimage SLIC + regionprops + loops", theirs))
    ours_f = time_fn(lambda: fuse(image, sp_ours, clothing, bodies, params), warmup, repeat)
    theirs_f = time_fn(lambda: seed_parse(image, sp_seed, clothing, bodies), min(warmup, 1), seed_repeat)
    rows.append(_row("seed fusion only (same SLIC labels)", size, "fuse", ours_f, "seed rules", theirs_f))

    # SLIC alone takes milliseconds: more runs than the grid's for a stable median, and ours
    # alternating with fast-slic so both see the same machine.
    sp_repeat = max(repeat, 15)
    fast = fast_slic_segmenter(slic.n_segments, slic.compactness)
    if fast is None:
        ours_sp = time_fn(lambda: backend.segment(image, **kw), warmup, sp_repeat)
        rows.append(skipped("fast-slic (peer)", size, "fast_slic is not installed (pip install cython wheel setuptools && pip install --no-build-isolation fast-slic)"))
    else:
        pair = time_alternating({"ours": lambda: backend.segment(image, **kw), "fast": lambda: fast(image)}, max(warmup, 1), sp_repeat)
        ours_sp = pair["ours"]
        rows.append(_row("fast-slic (peer)", size, f"{backend.name} SLIC", ours_sp, "fast-slic AVX2", pair["fast"]))

    if backend.name == "native":
        sk = time_fn(lambda: skimage.segment(image, **kw), warmup, repeat)
        rows.append(_row("scikit-image SLIC vs native", size, "native SLIC", ours_sp, "skimage SLIC", sk))
    else:
        try:
            native = get_backend("native")
        except Exception as exc:  # DependencyError: not built
            rows.append(skipped("scikit-image SLIC vs native", size, str(exc)))
        else:
            nat = time_fn(lambda: native.segment(image, **kw), warmup, repeat)
            rows.append(_row("scikit-image SLIC vs native", size, "native SLIC", nat, "skimage SLIC", ours_sp))
    return rows
