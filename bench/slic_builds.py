"""Do two builds of the native SLIC give the same labels? 50 cases, label for label.

Compares the installed ``clothparse._slic`` (or ``--build PATH``) with another build of it
(``--other-build PATH``: say, a wheel built for AVX2 with
``-Ccmake.define.CLOTHPARSE_SLIC_MARCH=x86-64-v3``, or for baseline x86-64 with an empty value)
on 25 images at sigma 0 and sigma 2, the seed's 900 segments and compactness 20: the two
``slic_bench`` images (``coffee`` at 600x400 and 1024x768), three photos (grace_hopper,
astronaut, chelsea) and 20 random images (smoothed noise, sizes 64..512, fixed seed).
Prints one line per case that differs (share of pixels) and a summary line
``identical: N of 50 cases``.

Run: ``python -m clothparse.bench.slic_builds --other-build OTHER/_slic.so [--build A/_slic.so]
[--threads 2] [--json OUT.json]``. Exits 1 when any case differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

N_SEGMENTS = 900
COMPACTNESS = 20.0
SIGMAS = (0.0, 2.0)
N_RANDOM = 20


def random_image(rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 [H, W, 3], H and W in 64..512: noise smoothed at a random scale, so the image
    has regions for SLIC to find rather than pure per-pixel noise."""
    from scipy import ndimage

    h, w = (int(v) for v in rng.integers(64, 513, size=2))
    noise = rng.random((h, w, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(float(rng.uniform(1.0, 8.0)),) * 2 + (0.0,))
    lo, hi = smooth.min(), smooth.max()
    return np.ascontiguousarray(((smooth - lo) / max(hi - lo, 1e-12) * 255.0).astype(np.uint8))


def images(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """(name, RGB uint8 C-contiguous image): the 25 images of the comparison."""
    from clothparse.bench.slic_bench import SIZES, test_image
    from clothparse.bench.slic_quality import photo_images

    for w, h in SIZES:
        yield f"coffee {w}x{h}", test_image(w, h)
    for name, img, _ in photo_images():
        if name in ("grace_hopper", "astronaut", "chelsea"):
            yield name, img
    rng = np.random.default_rng(seed)
    for i in range(N_RANDOM):
        img = random_image(rng)
        yield f"random{i} {img.shape[1]}x{img.shape[0]}", img


def installed_build() -> Any:
    """The installed ``clothparse._slic`` module; ``DependencyError`` when it is not built."""
    from clothparse.parse import slic_native

    return slic_native._require()


def labels(module: Any, image: np.ndarray, sigma: float, threads: int) -> np.ndarray:
    """Labels of one build, with the arguments ``slic_native.slic`` passes by default."""
    out = module.slic(image, N_SEGMENTS, COMPACTNESS, sigma, True, 0.5, 3.0, 10, threads)
    return np.asarray(out, dtype=np.int32)


def compare(a: Any, b: Any, threads: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (image, sigma): name, sigma, shape, identical, differing pixel share."""
    rows: list[dict[str, Any]] = []
    for name, img in images(seed):
        for sigma in SIGMAS:
            la = labels(a, img, sigma, threads)
            lb = labels(b, img, sigma, threads)
            differ = float(np.mean(la != lb)) if la.shape == lb.shape else 1.0
            rows.append(
                {
                    "image": name,
                    "sigma": sigma,
                    "identical": bool(la.shape == lb.shape and np.array_equal(la, lb)),
                    "differing_pixels": differ,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    """CLI entry point (see the module docstring)."""
    from clothparse.bench.slic_bench import load_other_build

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--other-build", required=True, help="the other clothparse._slic .so")
    parser.add_argument("--build", help="the first build (default: the installed one)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both builds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random images")
    parser.add_argument("--json", help="write the rows to this JSON file")
    args = parser.parse_args(argv)

    a = load_other_build(args.build) if args.build else installed_build()
    b = load_other_build(args.other_build)
    rows = compare(a, b, args.threads, args.seed)
    for r in rows:
        if not r["identical"]:
            print(f"differs: {r['image']}, sigma {r['sigma']:g}: {r['differing_pixels']:.4%} of pixels")
    same = sum(r["identical"] for r in rows)
    worst = max(r["differing_pixels"] for r in rows)
    print(f"identical: {same} of {len(rows)} cases (most pixels differing in one case: {worst:.4%})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    if same != len(rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
