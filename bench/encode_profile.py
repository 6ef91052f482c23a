"""Where encoding spends its time: a cProfile breakdown of ``outputs.encode_result``.

Input: ``fusion_bench.make_input()`` (1024x768 synthetic photo, 100 clothing items, 2 bodies,
scikit-image SLIC labels) through ``fuse`` with the default parameters, as ``cpt parse`` would
encode it (JSON record with RLE + polygons per item, palette label PNG, overlay PNG). One
warm-up call (Numba compilation or cache load), then ``--runs`` calls under cProfile.

Prints ms per image: the plain wall time of ``encode_result`` (outside the profiler, median
of ``--runs``), the total under cProfile, and the cumulative time of its named parts
(polygons, RLE, overlay, overlay PNG, label PNG, ...), then the ``--top`` functions by
cumulative time. cProfile adds overhead to Python-heavy parts, so the parts sum to more than
the plain time; their proportions are the point.

Run: ``python -m clothparse.bench.encode_profile [--runs 5] [--top 15] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from typing import Any

import numpy as np

# (row label, module suffix, function name): the parts of encode_result worth naming.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("encode_result (total)", "parse/outputs.py", "encode_result"),
    ("item crops (paste masks)", "parse/outputs.py", "item_crops"),
    ("polygons", "parse/mask_codec.py", "crop_polygons"),
    ("  contours (binary_contours)", "parse/contours.py", "binary_contours"),
    ("  simplification", "parse/mask_codec.py", "simplify_polygons"),
    ("RLE", "parse/mask_codec.py", "crop_rle"),
    ("overlay", "parse/outputs.py", "render_overlay"),
    ("  label boundaries", "parse/outputs.py", "inner_boundaries"),
    ("PNG encoding (overlay)", "parse/outputs.py", "png_bytes"),
    ("label PNG", "parse/outputs.py", "label_png"),
)


def make_result() -> tuple[Any, np.ndarray]:
    """(ParseResult, image) of ``fusion_bench.make_input()`` with superpixel fusion."""
    from clothparse.bench.fusion_bench import make_input

    from clothparse.parse.fusion import fuse
    from clothparse.parse.pipeline import ParseResult

    image, labels, cloth, body = make_input()
    f = fuse(image, labels, cloth, body)
    h, w = image.shape[:2]
    result = ParseResult(h, w, cloth, body, np.asarray(f.label_map, np.uint8), f, labels)
    return result, image


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    """Cumulative seconds of every profiled function ``name`` defined in a file ending ``suffix``."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return sum(
        v[3]
        for (path, _, fn), v in raw.items()
        if fn == name and path.replace("\\", "/").endswith(suffix)
    )


def profile(runs: int = 5, top: int = 15) -> dict[str, Any]:
    """Wall time and the cProfile breakdown (ms per image) of ``runs`` encodings."""
    import io

    from clothparse.parse.outputs import encode_result

    result, image = make_result()
    encode_result(result, image, "bench.png")  # warm-up: JIT compile or cache load
    wall = []
    for _ in range(runs):
        t0 = time.perf_counter()
        encode_result(result, image, "bench.png")
        wall.append(time.perf_counter() - t0)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        encode_result(result, image, "bench.png")
    prof.disable()
    stats = pstats.Stats(prof)
    parts = {label: _cumulative(stats, sfx, fn) * 1e3 / runs for label, sfx, fn in PARTS}
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    return {
        "image": f"{image.shape[1]}x{image.shape[0]}",
        "items": len(result.clothing),
        "runs": runs,
        "wall_ms_median": float(np.median(wall)) * 1e3,
        "profiled_ms": parts,
        "top": buf.getvalue(),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="profiled encodings (and timed ones)")
    parser.add_argument("--top", type=int, default=15, help="functions listed by cumulative time")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    out = profile(args.runs, args.top)
    print(
        f"encode_result on {out['image']}, {out['items']} items: "
        f"{out['wall_ms_median']:.1f} ms per image (median of {out['runs']}, no profiler)"
    )
    print("under cProfile, cumulative ms per image:")
    for label, ms in out["profiled_ms"].items():
        print(f"  {label:<32} {ms:8.1f}")
    if args.top > 0:
        print(out["top"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
