"""Where encoding spends its time: plain timings and a cProfile breakdown of ``outputs.encode_result``.

Input: ``fusion_bench.make_input()`` (1024x768 synthetic photo, 100 clothing items, 2 bodies,
scikit-image SLIC labels) through ``fuse`` with the default parameters, as ``cpt parse`` would
encode it (JSON record with RLE + polygons per item, palette label PNG, overlay PNG). One
warm-up call (Numba compilation or cache load, caption masks cached), then ``--runs`` calls.

Prints ms per image:
1. the plain wall time of ``encode_result`` (median of ``--runs``);
2. plain wall time of each part called alone (median of ``--runs``): item crops, polygons,
   RLE (items and bodies), the overlay (and again with the caption cache emptied before
   every call: the cost on a photo whose captions were never drawn), the overlay PNG, the
   label PNG;
3. the cumulative time of the named parts under cProfile (which adds overhead to
   Python-heavy parts, so they sum to more than the plain time) and the ``--top`` functions;
4. per PNG level in ``--png-levels``: size and time of the overlay PNG, for this overlay and
   for one of a real photo (scikit-image's astronaut resized to 1024x768, bilinear) under
   the same parsing.

Run: ``python -m clothparse.bench.encode_profile [--runs 5] [--top 15] [--png-levels 1,6,9] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# (row label, module suffix, function name): the parts of encode_result worth naming.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("encode_result (total)", "parse/outputs.py", "encode_result"),
    ("item crops (instance masks)", "parse/outputs.py", "item_crops"),
    ("polygons", "parse/mask_codec.py", "packed_polygons"),
    ("  contours (contours_batch)", "parse/contours_kernel.py", "contours_batch"),
    ("  simplification", "parse/mask_codec.py", "_simplified"),
    ("RLE", "parse/mask_codec.py", "packed_rles"),
    ("overlay", "parse/overlay.py", "render_overlay"),
    ("  blend (kernel)", "parse/overlay.py", "blend_parsing"),
    ("  caption and legend text", "parse/overlay.py", "_paint_text"),
    ("PNG encoding (overlay)", "parse/png_codec.py", "rgb_png"),
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


def _median_ms(fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None) -> float:
    """Median wall ms of ``runs`` calls of ``fn`` (``before`` runs untimed ahead of each)."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def plain_parts(result: Any, image: np.ndarray, runs: int) -> dict[str, float]:
    """Median wall ms of each part of ``encode_result`` called on its own (no profiler)."""
    from clothparse.parse import overlay
    from clothparse.parse.mask_codec import pack_crops, packed_polygons, packed_rles
    from clothparse.parse.outputs import _pasted_crop, item_crops, label_png
    from clothparse.parse.png_codec import rgb_png

    shape = (result.height, result.width)
    crops = item_crops(result)
    captions = _captions(result, crops)

    def rles() -> None:
        packed_rles(crops, shape)
        packed_rles(pack_crops([_pasted_crop(result, result.body, i) for i in range(len(result.body))]), shape)

    def draw() -> np.ndarray:
        return overlay.render_overlay(image, result.label_map, captions)

    pixels = draw()
    return {
        "item crops": _median_ms(lambda: item_crops(result), runs),
        "polygons": _median_ms(lambda: packed_polygons(crops), runs),
        "RLE (items + bodies)": _median_ms(rles, runs),
        "overlay (captions cached)": _median_ms(draw, runs),
        "overlay (captions never drawn before)": _median_ms(draw, runs, overlay._text_mask.cache_clear),
        "overlay PNG (level 1)": _median_ms(lambda: rgb_png(pixels), runs),
        "label PNG": _median_ms(lambda: label_png(result.label_map), runs),
    }


def _captions(result: Any, crops: Any) -> list[Any]:
    from clothparse.parse.overlay import OverlayItem

    return [OverlayItem(it.label, it.name, it.score, it.box.tolist(), box) for it, box in zip(result.items, crops.boxes(), strict=True)]


def png_levels(result: Any, image: np.ndarray, levels: list[int], runs: int) -> list[dict[str, Any]]:
    """Size (bytes) and median ms of the overlay PNG per level, on the bench photo and on
    scikit-image's astronaut resized to the same size under the same parsing."""
    from PIL import Image
    from skimage.data import astronaut

    from clothparse.parse.outputs import item_crops
    from clothparse.parse.overlay import render_overlay
    from clothparse.parse.png_codec import rgb_png

    h, w = image.shape[:2]
    photo = np.asarray(Image.fromarray(astronaut()).resize((w, h), Image.Resampling.BILINEAR))
    captions = _captions(result, item_crops(result))
    rows = []
    for name, img in (("bench photo", image), ("astronaut", photo)):
        pixels = render_overlay(img, result.label_map, captions)
        for level in levels:
            rows.append({"photo": name, "level": level, "bytes": len(rgb_png(pixels, level)), "ms": _png_ms(pixels, level, runs)})
    return rows


def _png_ms(pixels: np.ndarray, level: int, runs: int) -> float:
    from clothparse.parse.png_codec import rgb_png

    return _median_ms(lambda: rgb_png(pixels, level), runs)


def profile(runs: int = 5, top: int = 15, levels: tuple[int, ...] = (1, 6, 9)) -> dict[str, Any]:
    """Wall times, plain per-part times, the cProfile breakdown (ms per image) and the PNG levels."""
    import io

    from clothparse.parse.outputs import encode_result

    result, image = make_result()
    encode_result(result, image, "bench.png")  # warm-up: JIT compile or cache load
    wall = _median_ms(lambda: encode_result(result, image, "bench.png"), runs)
    plain = plain_parts(result, image, runs)
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
        "wall_ms_median": wall,
        "plain_ms": plain,
        "profiled_ms": parts,
        "png_levels": png_levels(result, image, list(levels), runs),
        "top": buf.getvalue(),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed calls per figure (and profiled encodings)")
    parser.add_argument("--top", type=int, default=15, help="functions listed by cumulative time")
    parser.add_argument("--png-levels", default="1,6,9", help="overlay PNG levels to size and time (comma-separated)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    levels = tuple(int(v) for v in args.png_levels.split(",") if v.strip())
    out = profile(args.runs, args.top, levels)
    print(
        f"encode_result on {out['image']}, {out['items']} items: "
        f"{out['wall_ms_median']:.1f} ms per image (median of {out['runs']}, no profiler)"
    )
    print("parts called alone, median ms per image:")
    for label, ms in out["plain_ms"].items():
        print(f"  {label:<40} {ms:8.1f}")
    print("under cProfile, cumulative ms per image:")
    for label, ms in out["profiled_ms"].items():
        print(f"  {label:<40} {ms:8.1f}")
    print("overlay PNG per level (median ms, bytes):")
    for row in out["png_levels"]:
        print(f"  {row['photo']:<12} level {row['level']}  {row['ms']:8.1f} ms  {row['bytes']:>9} bytes")
    if args.top > 0:
        print(out["top"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
