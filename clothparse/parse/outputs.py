"""Per-image outputs of ``cpt parse``: mask encodings, the palette label PNG and the overlay.

Every function here turns arrays into bytes or JSON-ready values; writing them to disk
(atomically, all-or-nothing per image) is ``clothparse.parse.batch``'s job.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pycocotools import mask as mask_utils

from clothparse.parse.pipeline import STAGES
from clothparse.taxonomy import PALETTE, PARSING_LABELS, palette_flat

if TYPE_CHECKING:
    from clothparse.parse.pipeline import ParseResult


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a bool/uint8 [H, W] mask: ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of ``encode_rle``: bool [H, W]."""
    r = {"size": rle["size"], "counts": rle["counts"].encode("ascii") if isinstance(rle["counts"], str) else rle["counts"]}
    return mask_utils.decode(r).astype(bool)


def mask_polygons(mask: np.ndarray, tolerance: float = 1.0) -> list[list[float]]:
    """Outer and hole contours of a bool [H, W] mask as COCO polygons ``[x1, y1, x2, y2, ...]``.

    Coordinates are pixel coordinates (x right, y down); contours follow the 0.5 level
    between pixel centres, simplified with Douglas-Peucker at ``tolerance`` px. Polygons
    with fewer than 3 points are dropped.
    """
    mask = mask.astype(bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Crop to the mask and pad by one so contours close around masks touching the border.
    crop = np.pad(mask[y0:y1, x0:x1], 1).astype(np.float32)
    # skimage.measure pulls in scipy.signal (~1.5 s): imported on use so `cpt` starts fast.
    from skimage.measure import approximate_polygon, find_contours

    polys: list[list[float]] = []
    for contour in find_contours(crop, 0.5):
        contour = approximate_polygon(contour, tolerance)
        if len(contour) < 4:  # closed contour: first point repeated, so 4 rows = 3 corners
            continue
        xy = np.stack([contour[:, 1] - 1 + x0, contour[:, 0] - 1 + y0], axis=1)
        polys.append([round(float(v), 2) for v in xy[:-1].reshape(-1)])
    return polys


def mask_bbox(mask: np.ndarray) -> list[float]:
    """Tight COCO box ``[x, y, w, h]`` of a bool [H, W] mask ([0, 0, 0, 0] when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])]


def label_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W] label map (values 0-14) in palette mode with the taxonomy colours."""
    if label_map.dtype != np.uint8 or label_map.ndim != 2:
        raise ValueError(f"label map must be uint8 [H, W], got {label_map.dtype} {label_map.shape}")
    img = Image.fromarray(label_map, mode="P")
    img.putpalette(palette_flat())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 [H, W, 3] image."""
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


@dataclass
class OverlayItem:
    """One instance to caption on the overlay: its class label (1-13), name, score and boxes.

    ``box`` is the detector's xyxy box in photo pixels; ``mask_box`` the xywh box of the
    refined mask (captions sit on the mask, which is where the viewer looks).
    """

    label: int
    name: str
    score: float
    box: Sequence[float]
    mask_box: Sequence[float]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def render_overlay(
    image: np.ndarray,
    label_map: np.ndarray,
    items: Sequence[OverlayItem] = (),
    show_boxes: bool = False,
    sp_labels: np.ndarray | None = None,
    only: np.ndarray | None = None,
    alpha: float = 0.55,
) -> np.ndarray:
    """The picture a person looks at: photo + coloured parsing + captions + legend.

    image:     RGB uint8 [H, W, 3].
    label_map: uint8 [H, W], 0 background, 1-13 clothing, 14 skin/body.
    items:     instances to caption (class name and score), boxes drawn when ``show_boxes``.
    sp_labels: int32 [H, W] superpixel ids; when given their boundaries are drawn.
    only:      bool [H, W]; when given, only these pixels are coloured (``--unpredicted-only``).
    Returns RGB uint8 [H, W + legend width, 3] (taller than H when the legend needs it).
    """
    h, w = label_map.shape
    colour = PALETTE[label_map].astype(np.float32)
    a = np.where(label_map == 0, 0.0, alpha).astype(np.float32)
    a[label_map == len(PARSING_LABELS) - 1] = alpha * 0.5  # skin/body: lighter, it is context
    if only is not None:
        a = a * only
    out = image.astype(np.float32) * (1 - a[..., None]) + colour * a[..., None]
    from skimage.segmentation import find_boundaries  # on use: see mask_polygons

    edges = find_boundaries(label_map, mode="inner") & (label_map > 0)
    if only is not None:
        edges &= only
    out[edges] = colour[edges] * 0.6
    if sp_labels is not None:
        # Half-transparent yellow: the boundaries stay visible without hiding the parsing.
        b = find_boundaries(sp_labels, mode="inner")
        out[b] = out[b] * 0.4 + np.array((255.0, 255.0, 0.0), np.float32) * 0.6
    canvas = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    font_size = max(10, min(h, w) // 40)
    font = _font(font_size)
    draw = ImageDraw.Draw(canvas)
    if show_boxes:
        for it in items:
            rgb = tuple(int(c) for c in PALETTE[it.label])
            draw.rectangle(tuple(float(v) for v in it.box), outline=rgb, width=max(1, font_size // 6))
    placed: list[tuple[float, float, float, float]] = []
    # Strongest first: when captions would collide, the weaker one moves or is dropped
    # (the legend still names every class present).
    for it in sorted(items, key=lambda i: -i.score):
        if it.mask_box[2] > 0:
            rect = _place_caption(draw, f"{it.name} {it.score:.2f}", it.mask_box, (h, w), font, placed)
            if rect is not None:
                rgb = tuple(int(c) for c in PALETTE[it.label])
                draw.rectangle(rect, fill=rgb)
                draw.text((rect[0] + 1, rect[1] + 1), f"{it.name} {it.score:.2f}", fill=_ink(rgb), font=font, anchor="lt")
    present = [int(v) for v in np.unique(label_map) if v != 0]
    return np.asarray(_with_legend(canvas, present, font, font_size))


def _place_caption(
    draw: ImageDraw.ImageDraw,
    text: str,
    mask_box: Sequence[float],
    shape: tuple[int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    placed: list[tuple[float, float, float, float]],
) -> tuple[float, float, float, float] | None:
    """A free rectangle (x1, y1, x2, y2) for ``text`` at the top-left of its mask, inside the
    photo, stepping down a line at a time past captions already placed; None if none fits."""
    h, w = shape
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, anchor="lt")
    tw, th = right - left + 2.0, bottom - top + 2.0
    x = min(max(float(mask_box[0]), 0.0), max(0.0, w - tw))
    y_first = float(mask_box[1])
    for step in range(4):
        y = min(max(y_first + step * th, 0.0), max(0.0, h - th))
        rect = (x, y, x + tw, y + th)
        if not any(rect[0] < p[2] and p[0] < rect[2] and rect[1] < p[3] and p[1] < rect[3] for p in placed):
            placed.append(rect)
            return rect
    return None


def _ink(rgb: tuple[int, ...]) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on ``rgb`` (Rec. 601 luma)."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def _with_legend(
    canvas: Image.Image, labels: list[int], font: ImageFont.FreeTypeFont | ImageFont.ImageFont, size: int
) -> Image.Image:
    """Append a white legend panel (swatch + name per label present) to the right of ``canvas``."""
    row = size + size // 2
    pad = size // 2 + 2
    names = [PARSING_LABELS[v] for v in labels] or ["(nothing detected)"]
    probe = ImageDraw.Draw(canvas)
    text_w = max(int(probe.textlength(n, font=font)) for n in names)
    panel_w = pad * 3 + size + text_w
    panel_h = pad * 2 + row * len(names)
    out = Image.new("RGB", (canvas.width + panel_w, max(canvas.height, panel_h)), (255, 255, 255))
    out.paste(canvas, (0, 0))
    draw = ImageDraw.Draw(out)
    x0 = canvas.width + pad
    for k, name in enumerate(names):
        y = pad + k * row
        if labels:
            rgb = tuple(int(c) for c in PALETTE[labels[k]])
            draw.rectangle((x0, y, x0 + size, y + size), fill=rgb, outline=(0, 0, 0))
        draw.text((x0 + size + pad, y), name, fill=(0, 0, 0), font=font)
    return out


@dataclass(frozen=True)
class OverlayOptions:
    """The seed app's three toggles: boxes, superpixel boundaries, unpredicted superpixels only."""

    show_boxes: bool = False
    show_superpixels: bool = False
    unpredicted_only: bool = False


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
    it is also stored into ``result.timings``).
    """
    t0 = time.perf_counter()
    items: list[dict[str, Any]] = []
    captions: list[OverlayItem] = []
    for item in result.items:
        mask = result.item_mask(item.index)
        mbox = mask_bbox(mask)
        items.append(
            {
                "id": item.index,
                "class_id": item.label,
                "class": item.name,
                "score": round(item.score, 6),
                "box": [round(float(v), 3) for v in item.box],
                "mask": encode_rle(mask),
                "polygons": mask_polygons(mask),
                "area": int(mask.sum()),
                "mask_box": mbox,
                "changed_by_superpixels": item.changed,
            }
        )
        captions.append(OverlayItem(item.label, item.name, item.score, item.box.tolist(), mbox))
    body = {
        "boxes": [[round(float(v), 3) for v in b] for b in result.body.boxes],
        "scores": [round(float(s), 6) for s in result.body.scores],
        "masks": [encode_rle(result.body_mask(i)) for i in range(len(result.body))],
    }
    only = unpredicted_pixels(result) if options.unpredicted_only else None
    overlay = render_overlay(
        image,
        result.label_map,
        captions,
        show_boxes=options.show_boxes,
        sp_labels=result.sp_labels if options.show_superpixels else None,
        only=only,
    )
    labels = label_png(result.label_map)
    overlay_bytes = png_bytes(overlay)
    result.timings["encode"] = time.perf_counter() - t0
    timings = result.timings
    record: dict[str, Any] = {
        "image": {"file": source, "width": result.width, "height": result.height},
        "superpixels": result.fusion is not None,
        "items": items,
        "body": body,
        "label_counts": {
            PARSING_LABELS[int(v)]: int(c) for v, c in zip(*np.unique(result.label_map, return_counts=True), strict=True)
        },
        "timings_ms": {k: round(timings.get(k, 0.0) * 1000.0, 3) for k in STAGES},
    }
    return EncodedImage(record, labels, overlay_bytes)


def unpredicted_pixels(result: ParseResult) -> np.ndarray | None:
    """bool [H, W]: pixels of superpixels that no mask claimed but the body covered
    (the seed's "unpredicted" superpixels, whatever growth made of them); None at pixel level."""
    if result.fusion is None or result.sp_labels is None:
        return None
    f = result.fusion
    per_sp = np.asarray(f.in_body, bool) & ((np.asarray(f.sp_instance) < 0) | np.asarray(f.grown, bool))
    return per_sp[result.sp_labels]
