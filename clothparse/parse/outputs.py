"""Per-image outputs of ``cpt parse``: the JSON record, the palette label PNG and the overlay.

Every function here turns arrays into bytes or JSON-ready values; writing them to disk
(atomically, all-or-nothing per image) is ``clothparse.parse.batch``'s job. The mask
encodings (RLE, polygons, boxes, on full masks or crops) are ``clothparse.parse.mask_codec``'s.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clothparse.parse.mask_codec import Crop, crop_box, crop_polygons, crop_rle, tight_crop
from clothparse.parse.paste import paste_mask_region
from clothparse.parse.pipeline import STAGES
from clothparse.taxonomy import PALETTE, PARSING_LABELS, palette_flat

if TYPE_CHECKING:
    from clothparse.parse.pipeline import ParseResult



def label_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W] label map (values 0-14) in palette mode with the taxonomy colours."""
    if label_map.dtype != np.uint8 or label_map.ndim != 2:
        raise ValueError(f"label map must be uint8 [H, W], got {label_map.dtype} {label_map.shape}")
    img = Image.fromarray(label_map, mode="P")
    img.putpalette(palette_flat())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def png_bytes(image: np.ndarray, fast: bool = False) -> bytes:
    """PNG bytes of an RGB uint8 [H, W, 3] image, lossless either way.

    ``fast``: for previews (the overlay). Pillow picks a filter per row by trying all five
    (~40 ms on a 1 Mpx image before any compression); here every row gets the "Up" filter
    (one vectorised subtraction) and zlib's run-length strategy: ~4x faster than Pillow
    at its default level, within a few per cent of its size on photos.
    """
    if not fast:
        buf = io.BytesIO()
        Image.fromarray(image, mode="RGB").save(buf, format="PNG", compress_level=6)
        return buf.getvalue()
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 [H, W, 3], got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    rows = image.reshape(h, w * 3)
    scan = np.empty((h, w * 3 + 1), np.uint8)
    scan[:, 0] = 2  # filter type Up: byte minus the byte above (mod 256); none above row 0
    scan[:1, 1:] = rows[:1]
    np.subtract(rows[1:], rows[:-1], out=scan[1:, 1:])
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = z.compress(scan.tobytes()) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type + data (all big-endian)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


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
    canvas = Image.fromarray(blend_parsing(image, label_map, sp_labels, only, alpha), mode="RGB")
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
    present = [int(v) for v in np.flatnonzero(np.bincount(label_map.reshape(-1), minlength=1)[1:]) + 1]
    return np.asarray(_with_legend(canvas, present, font, font_size))


def blend_parsing(
    image: np.ndarray,
    label_map: np.ndarray,
    sp_labels: np.ndarray | None = None,
    only: np.ndarray | None = None,
    alpha: float = 0.55,
) -> np.ndarray:
    """The coloured part of the overlay: RGB uint8 [H, W, 3] (arguments as ``render_overlay``).

    Each pixel is ``photo * (1 - a) + colour * a`` in float32, rounded half up: ``a`` is
    ``alpha`` for clothing, ``alpha / 2`` for skin/body, 0 for background and outside
    ``only``; parsing edges take ``colour * 0.6``; superpixel edges are then mixed 60%
    with yellow. The blend depends on the label and one photo byte only, so it is
    tabulated (15 x 256 x 3, the same float32 operations) and looked up per byte,
    instead of being evaluated over 3 x H x W floats.
    """
    pal = PALETTE.astype(np.float32)  # [L, 3]
    a = np.full(len(pal), alpha)
    a[0] = 0.0
    a[len(PARSING_LABELS) - 1] = alpha * 0.5  # skin/body: lighter, it is context
    a32 = a.astype(np.float32)[:, None, None]
    table = np.arange(256, dtype=np.float32)[None, :, None] * (1 - a32) + pal[:, None, :] * a32  # [L, 256, 3]
    edge_colour = pal * 0.6
    labels = label_map if only is None else np.where(only, label_map, 0)  # label 0: the photo as is
    idx = labels.astype(np.uint16)[..., None] * np.uint16(256 * 3) + image * np.uint16(3)
    idx += np.arange(3, dtype=np.uint16)
    out = _round_u8(table).reshape(-1)[idx]
    edges = inner_boundaries(label_map)
    if only is not None:
        edges &= only
    out[edges] = _round_u8(edge_colour)[label_map[edges]]
    if sp_labels is not None:
        # Half-transparent yellow: the boundaries stay visible without hiding the parsing.
        b = inner_boundaries(sp_labels)
        under = np.where(edges[b][:, None], edge_colour[label_map[b]], table[labels[b][:, None], image[b], np.arange(3)])
        out[b] = _round_u8(under * 0.4 + np.array((255.0, 255.0, 0.0), np.float32) * 0.6)
    return out


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """bool [H, W]: non-zero pixels of integer [H, W] ``labels`` with a 4-neighbour of another
    label; ``skimage.segmentation.find_boundaries(labels, mode="inner")`` (the image edge is no
    boundary), from four shifted comparisons instead of a grey dilation and erosion."""
    edges = np.zeros(labels.shape, bool)
    diff = labels[:, 1:] != labels[:, :-1]
    edges[:, 1:] |= diff
    edges[:, :-1] |= diff
    diff = labels[1:, :] != labels[:-1, :]
    edges[1:, :] |= diff
    edges[:-1, :] |= diff
    edges &= labels != 0
    return edges


def _round_u8(x: np.ndarray) -> np.ndarray:
    """float32 0-255 -> uint8, rounding half up (clip, then truncate)."""
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


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
    it is also stored into ``result.timings``). Masks are handled as tight crops, never
    as full-resolution [H, W] arrays; the outputs equal those of the per-mask functions
    above (``encode_rle``, ``mask_polygons``, ``mask_bbox``) on ``result.item_mask(i)``.
    """
    t0 = time.perf_counter()
    shape = (result.height, result.width)
    parse_items = result.items
    crops = item_crops(result)
    polygons = crop_polygons(crops)
    items: list[dict[str, Any]] = []
    captions: list[OverlayItem] = []
    for item, (crop, y0, x0), polys in zip(parse_items, crops, polygons, strict=True):
        mbox = crop_box(crop, y0, x0)
        items.append(
            {
                "id": item.index,
                "class_id": item.label,
                "class": item.name,
                "score": round(item.score, 6),
                "box": [round(float(v), 3) for v in item.box],
                "mask": crop_rle(crop, y0, x0, shape),
                "polygons": polys,
                "area": int(np.count_nonzero(crop)),
                "mask_box": mbox,
                "changed_by_superpixels": item.changed,
            }
        )
        captions.append(OverlayItem(item.label, item.name, item.score, item.box.tolist(), mbox))
    body = {
        "boxes": [[round(float(v), 3) for v in b] for b in result.body.boxes],
        "scores": [round(float(s), 6) for s in result.body.scores],
        "masks": [crop_rle(*_pasted_crop(result, result.body, i), shape) for i in range(len(result.body))],
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
    overlay_bytes = png_bytes(overlay, fast=True)
    counts = np.bincount(result.label_map.reshape(-1), minlength=len(PARSING_LABELS))
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


def item_crops(result: ParseResult) -> list[Crop]:
    """Each item's mask (``result.item_mask(i)``) as a tight crop (bool [h, w], y0, x0);
    an empty mask is a bool [0, 0] crop at (0, 0). One pass over the image for all items."""
    n = len(result.clothing)
    if result.fusion is None:
        return [_pasted_crop(result, result.clothing, i) for i in range(n)]
    from scipy.ndimage import find_objects

    # Pixel -> instance id + 1 (0 = none); find_objects gives every instance's box in one pass.
    inst = (np.asarray(result.fusion.sp_instance, np.int32) + 1)[result.sp_labels]
    crops: list[Crop] = []
    for i, sl in enumerate(find_objects(inst, max_label=n)):
        if sl is None:
            crops.append((np.zeros((0, 0), bool), 0, 0))
        else:
            crops.append((inst[sl] == i + 1, int(sl[0].start), int(sl[1].start)))
    return crops


def _pasted_crop(result: ParseResult, dets: Any, i: int) -> Crop:
    """``result.pasted_mask(dets, i)`` as a tight crop (see ``item_crops``)."""
    if result.mask_thresh <= 0:  # the zeros outside the paste region pass too: full mask
        return tight_crop(result.pasted_mask(dets, i), 0, 0)
    y0, _, x0, _, region = paste_mask_region(dets.masks[i], dets.boxes[i], (result.height, result.width))
    return tight_crop(region >= np.float32(result.mask_thresh), y0, x0)


def unpredicted_pixels(result: ParseResult) -> np.ndarray | None:
    """bool [H, W]: pixels of superpixels that no mask claimed but the body covered
    (the seed's "unpredicted" superpixels, whatever growth made of them); None at pixel level."""
    if result.fusion is None or result.sp_labels is None:
        return None
    f = result.fusion
    per_sp = np.asarray(f.in_body, bool) & ((np.asarray(f.sp_instance) < 0) | np.asarray(f.grown, bool))
    return per_sp[result.sp_labels]
