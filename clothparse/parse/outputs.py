"""Per-image outputs of ``cpt parse``: the JSON record, the palette label PNG and the overlay.

Every function here turns arrays into bytes or JSON-ready values; writing them to disk
(atomically, all-or-nothing per image) is ``clothparse.parse.batch``'s job. The mask
encodings (RLE, polygons, boxes, on full masks or crops) are ``clothparse.parse.mask_codec``'s;
what the overlay shows (views and toggles, ``OverlayOptions``) is ``clothparse.parse.views``'.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from clothparse.parse.mask_codec import (
    Crop,
    PackedCrops,
    pack_crops,
    packed_polygons,
    packed_rles,
    tight_crop,
)
from clothparse.parse.overlay import label_counts, render_overlay
from clothparse.parse.paste import region_weights
from clothparse.parse.pipeline import STAGES
from clothparse.parse.png_codec import palette_png, rgb_png
from clothparse.parse.views import OverlayOptions, render_view, unpredicted_pixels
from clothparse.taxonomy import PARSING_LABELS, palette_flat

if TYPE_CHECKING:
    from clothparse.parse.pipeline import ParseResult

# Re-exported: callers import the options and the renderers from here.
__all__ = [
    "EncodedImage",
    "OverlayOptions",
    "encode_result",
    "item_crops",
    "label_png",
    "render_overlay",
    "render_view",
    "unpredicted_pixels",
]


def label_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W] label map (values 0-14) in palette mode with the taxonomy colours."""
    return palette_png(label_map, bytes(palette_flat()))


@dataclass
class EncodedImage:
    """The three outputs of one photo, encoded in memory (nothing written yet)."""

    record: dict[str, Any]
    labels_png: bytes
    overlay_png: bytes


def encode_result(
    result: ParseResult, image: np.ndarray, source: str, options: OverlayOptions = OverlayOptions()
) -> EncodedImage:
    """Encode a ``ParseResult`` of RGB uint8 [H, W, 3] ``image`` into the JSON record and two PNGs.

    The record holds the image size, every item (class, score, xyxy box, RLE of its refined
    mask, polygons, area, ``changed_by_superpixels``), the body (boxes, scores, RLE), and
    per-stage timings in milliseconds (``encode`` = this function, before JSON serialisation;
    it is also stored into ``result.timings``). Masks are handled as tight crops, never
    as full-resolution [H, W] arrays; the outputs equal those of the per-mask functions of
    ``mask_codec`` (``encode_rle``, ``mask_polygons``, ``mask_bbox``) on ``result.item_mask(i)``.
    The overlay is ``views.render_view(result, image, options)``; the view and toggles of
    ``options`` change it alone, never the record or the label PNG.
    """
    t0 = time.perf_counter()
    shape = (result.height, result.width)
    parse_items = result.items
    crops = item_crops(result)
    polygons = packed_polygons(crops)
    rles = packed_rles(crops, shape)
    items: list[dict[str, Any]] = []
    mask_boxes = crops.boxes()
    for item, polys, rle, area, mbox in zip(parse_items, polygons, rles, crops.areas(), mask_boxes, strict=True):
        items.append(
            {
                "id": item.index,
                "class_id": item.label,
                "class": item.name,
                "score": round(item.score, 6),
                "box": [round(float(v), 3) for v in item.box],
                "mask": rle,
                "polygons": polys,
                "area": area,
                "mask_box": mbox,
                "changed_by_superpixels": item.changed,
            }
        )
    body = {
        "boxes": [[round(float(v), 3) for v in b] for b in result.body.boxes],
        "scores": [round(float(s), 6) for s in result.body.scores],
        "masks": packed_rles(pack_crops([_pasted_crop(result, result.body, i) for i in range(len(result.body))]), shape),
    }
    overlay = render_view(result, image, options, item_boxes=mask_boxes)
    labels = label_png(result.label_map)
    overlay_bytes = rgb_png(overlay, options.png_level)
    counts = label_counts(result.label_map)
    result.timings["encode"] = time.perf_counter() - t0
    timings = result.timings
    record: dict[str, Any] = {
        "image": {"file": source, "width": result.width, "height": result.height},
        "superpixels": result.fusion is not None,
        "items": items,
        "body": body,
        "label_counts": {PARSING_LABELS[v]: int(counts[v]) for v in np.flatnonzero(counts).tolist()},
        "timings_ms": {k: round(timings.get(k, 0.0) * 1000.0, 3) for k in STAGES},
    }
    return EncodedImage(record, labels, overlay_bytes)


def item_crops(result: ParseResult) -> PackedCrops:
    """Each item's mask (``result.item_mask(i)``) as a tight crop, all packed; an empty
    mask is a (0, 0) crop at (0, 0). With superpixels one kernel makes them all in two
    passes over the superpixel map (boxes, then pixels)."""
    n = len(result.clothing)
    if result.fusion is None or result.sp_labels is None:
        return pack_crops([_pasted_crop(result, result.clothing, i) for i in range(n)])
    from clothparse.parse.mask_kernels import instance_crops

    sp_instance = np.ascontiguousarray(result.fusion.sp_instance, np.int64)
    return PackedCrops(*instance_crops(np.ascontiguousarray(result.sp_labels), sp_instance, n))


def _pasted_crop(result: ParseResult, dets: Any, i: int) -> Crop:
    """``result.pasted_mask(dets, i)`` as a tight crop (see ``item_crops``): the pasted
    probabilities thresholded pixel by pixel in a kernel, never a float region array."""
    if result.mask_thresh <= 0:  # the zeros outside the paste region pass too: full mask
        return tight_crop(result.pasted_mask(dets, i), 0, 0)
    from clothparse.parse.mask_kernels import threshold_paste

    y0, y1, x0, x1, m, ys, xs = region_weights(dets.masks[i], dets.boxes[i], (result.height, result.width))
    if y1 <= y0 or x1 <= x0:
        return np.zeros((0, 0), bool), 0, 0
    return tight_crop(threshold_paste(m, *ys, *xs, np.float32(result.mask_thresh)), y0, x0)
