"""Plain references of ``cpt parse``'s encoding, and random parse results to feed them.

The references are the slow, obvious ways the kernels replaced: one full-resolution mask
per item (``result.item_mask``), pycocotools on the Fortran-order mask, scikit-image's
``find_contours`` + ``approximate_polygon``, ``np.unique`` label counts, the overlay
evaluated in float32 over the whole image with ``find_boundaries``, the overlay's
drawing as it was before the caption canvas was built at the legend's size, and the
class-region boxes by scikit-image's ``label`` + ``regionprops``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from scipy.ndimage import gaussian_filter
from skimage.measure import approximate_polygon, find_contours, label, regionprops
from skimage.segmentation import find_boundaries

from clothparse.engines.base import Detections
from clothparse.parse.fusion import FusionParams, fuse, pixel_level
from clothparse.parse.outputs import OverlayOptions
from clothparse.parse.overlay import OverlayItem, _font, _ink
from clothparse.parse.pipeline import ParseResult
from clothparse.parse.views import MIN_BOX_AREA
from clothparse.taxonomy import MODANET_CLASSES, PALETTE, PARSING_LABELS

# ---------------------------------------------------------------- per-mask references


def ref_rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def ref_polygons(mask: np.ndarray) -> list[list[float]]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.pad(mask[y0:y1, x0:x1], 1).astype(np.float32)
    polys = []
    for contour in find_contours(crop, 0.5):
        contour = approximate_polygon(contour, 1.0)
        if len(contour) < 4:
            continue
        xy = np.stack([contour[:, 1] - 1 + x0, contour[:, 0] - 1 + y0], axis=1)
        polys.append([round(float(v), 2) for v in xy[:-1].reshape(-1)])
    return polys


def ref_bbox(mask: np.ndarray) -> list[float]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])]


# ---------------------------------------------------------------- overlay references


def ref_blend(
    image: np.ndarray, label_map: np.ndarray, sp_labels: np.ndarray | None, only: np.ndarray | None, alpha: float = 0.55
) -> np.ndarray:
    """The overlay's colouring, evaluated in float32 over the whole image."""
    colour = PALETTE[label_map].astype(np.float32)
    a = np.where(label_map == 0, 0.0, alpha).astype(np.float32)
    a[label_map == len(PARSING_LABELS) - 1] = alpha * 0.5
    if only is not None:
        a = a * only
    out = image.astype(np.float32) * (1 - a[..., None]) + colour * a[..., None]
    edges = find_boundaries(label_map, mode="inner") & (label_map > 0)
    if only is not None:
        edges &= only
    out[edges] = colour[edges] * 0.6
    if sp_labels is not None:
        b = find_boundaries(sp_labels, mode="inner")
        out[b] = out[b] * 0.4 + np.array((255.0, 255.0, 0.0), np.float32) * 0.6
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def ref_overlay(
    image: np.ndarray,
    label_map: np.ndarray,
    items: Sequence[OverlayItem] = (),
    show_boxes: bool = False,
    sp_labels: np.ndarray | None = None,
    only: np.ndarray | None = None,
    boxes: Sequence[tuple[Sequence[float], tuple[int, int, int]]] = (),
) -> np.ndarray:
    """The overlay drawn on a photo-sized canvas, then pasted onto a white legend panel;
    ``boxes`` (xyxy, colour) are outlined after the items' detector boxes."""
    h, w = label_map.shape
    canvas = Image.fromarray(ref_blend(image, label_map, sp_labels, only), mode="RGB")
    font_size = max(10, min(h, w) // 40)
    font = _font(font_size)
    draw = ImageDraw.Draw(canvas)
    if show_boxes:
        for it in items:
            rgb = tuple(int(c) for c in PALETTE[it.label])
            draw.rectangle(tuple(float(v) for v in it.box), outline=rgb, width=max(1, font_size // 6))
    for box, rgb in boxes:
        draw.rectangle(tuple(float(v) for v in box), outline=rgb, width=max(1, font_size // 6))
    placed: list[tuple[float, float, float, float]] = []
    for it in sorted(items, key=lambda i: -i.score):
        if it.mask_box[2] > 0:
            rect = _ref_place_caption(draw, f"{it.name} {it.score:.2f}", it.mask_box, (h, w), font, placed)
            if rect is not None:
                rgb = tuple(int(c) for c in PALETTE[it.label])
                draw.rectangle(rect, fill=rgb)
                draw.text((rect[0] + 1, rect[1] + 1), f"{it.name} {it.score:.2f}", fill=_ink(rgb), font=font, anchor="lt")
    shown = label_map.reshape(-1) if only is None else label_map[only]  # the legend names what is coloured
    labels = [int(v) for v in np.flatnonzero(np.bincount(shown, minlength=1)[1:]) + 1]
    row, pad = font_size + font_size // 2, font_size // 2 + 2
    names = [PARSING_LABELS[v] for v in labels] or ["(nothing detected)"]
    text_w = max(int(ImageDraw.Draw(canvas).textlength(n, font=font)) for n in names)
    out = Image.new("RGB", (canvas.width + pad * 3 + font_size + text_w, max(canvas.height, pad * 2 + row * len(names))), (255, 255, 255))
    out.paste(canvas, (0, 0))
    draw = ImageDraw.Draw(out)
    x0 = canvas.width + pad
    for k, name in enumerate(names):
        y = pad + k * row
        if labels:
            draw.rectangle((x0, y, x0 + font_size, y + font_size), fill=tuple(int(c) for c in PALETTE[labels[k]]), outline=(0, 0, 0))
        draw.text((x0 + font_size + pad, y), name, fill=(0, 0, 0), font=font)
    return np.asarray(out)


def _ref_place_caption(
    draw: ImageDraw.ImageDraw, text: str, mask_box: Sequence[float], shape: tuple[int, int], font: Any, placed: list[tuple[float, float, float, float]]
) -> tuple[float, float, float, float] | None:
    h, w = shape
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, anchor="lt")
    tw, th = right - left + 2.0, bottom - top + 2.0
    x = min(max(float(mask_box[0]), 0.0), max(0.0, w - tw))
    for step in range(4):
        y = min(max(float(mask_box[1]) + step * th, 0.0), max(0.0, h - th))
        rect = (x, y, x + tw, y + th)
        if not any(rect[0] < p[2] and p[0] < rect[2] and rect[1] < p[3] and p[1] < rect[3] for p in placed):
            placed.append(rect)
            return rect
    return None


# ---------------------------------------------------------------- the whole record


def ref_class_boxes(label_map: np.ndarray) -> list[tuple[list[float], tuple[int, int, int]]]:
    """(x1, y1, x2, y2 inclusive, class colour) of every 8-connected region of >= MIN_BOX_AREA
    pixels of each clothing class, by class then raster order."""
    out = []
    for c in range(1, 14):
        for r in regionprops(label(label_map == c, connectivity=2)):
            if r.area >= MIN_BOX_AREA:
                y0, x0, y1, x1 = r.bbox
                out.append(([float(x0), float(y0), float(x1 - 1), float(y1 - 1)], tuple(int(v) for v in PALETTE[c])))
    return out


def ref_grown_pixels(result: ParseResult) -> np.ndarray:
    """bool [H, W]: pixels of the superpixels growth assigned (none at pixel level)."""
    if result.fusion is None:
        return np.zeros((result.height, result.width), bool)
    grown_ids = np.flatnonzero(result.fusion.grown)
    return np.isin(result.sp_labels, grown_ids)


def ref_encode(result: ParseResult, image: np.ndarray, options: OverlayOptions) -> tuple[dict[str, Any], np.ndarray]:
    """(record without timings, overlay pixels) the full-mask way; the parse view only."""
    assert options.view == "parse"
    items, captions = [], []
    for item in result.items:
        mask = result.item_mask(item.index)
        mbox = ref_bbox(mask)
        items.append(
            {
                "id": item.index,
                "class_id": item.label,
                "class": item.name,
                "score": round(item.score, 6),
                "box": [round(float(v), 3) for v in item.box],
                "mask": ref_rle(mask),
                "polygons": ref_polygons(mask),
                "area": int(mask.sum()),
                "mask_box": mbox,
                "changed_by_superpixels": item.changed,
            }
        )
        captions.append(OverlayItem(item.label, item.name, item.score, item.box.tolist(), mbox))
    body = {
        "boxes": [[round(float(v), 3) for v in b] for b in result.body.boxes],
        "scores": [round(float(s), 6) for s in result.body.scores],
        "masks": [ref_rle(result.body_mask(i)) for i in range(len(result.body))],
    }
    overlay = ref_overlay(
        image,
        result.label_map,
        captions,
        show_boxes=options.detector_boxes,
        sp_labels=result.sp_labels if options.show_superpixels else None,
        only=ref_grown_pixels(result) if options.unpredicted_only else None,
        boxes=ref_class_boxes(result.label_map) if options.show_boxes else (),
    )
    record = {
        "image": {"file": "x.jpg", "width": result.width, "height": result.height},
        "superpixels": result.fusion is not None,
        "items": items,
        "body": body,
        "label_counts": {
            PARSING_LABELS[int(v)]: int(c) for v, c in zip(*np.unique(result.label_map, return_counts=True), strict=True)
        },
    }
    return record, overlay


# ---------------------------------------------------------------- random parse results


def smooth_masks(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 [n, 28, 28] smooth blobs in [0, 1]."""
    if n == 0:
        return np.zeros((0, 28, 28), np.float32)
    raw = np.stack([gaussian_filter(rng.normal(size=(28, 28)), rng.uniform(1, 4)) for _ in range(n)])
    return (1.0 / (1.0 + np.exp(-raw / (raw.std() + 1e-9) * 4 - 0.5))).astype(np.float32).reshape(n, 28, 28)


def random_dets(rng: np.random.Generator, n: int, h: int, w: int, names: tuple[str, ...], n_cls: int) -> Detections:
    """Boxes of any size, some past the image borders; some masks all zero or all one."""
    size = rng.uniform(1, 1.3, (n, 2)) * [w, h] * rng.uniform(0.05, 1.0, (n, 1))
    centre = rng.uniform(-0.1, 1.1, (n, 2)) * [w, h]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    masks = smooth_masks(rng, n)
    kind = rng.integers(0, 8, n)
    masks[kind == 0] = 0.0  # empty instance
    masks[kind == 1] = 1.0  # solid: spans its whole box (full width when the box does)
    return Detections(boxes, rng.uniform(0.05, 1.0, n), rng.integers(1, n_cls + 1, n), masks, names)


def voronoi(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    """int32 [h, w] labels 0..k'-1 of k random sites (nearest site, ids compacted)."""
    pts = rng.uniform(0, 1, (k, 2)) * [h, w]
    yy, xx = np.mgrid[0:h, 0:w]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    lab = d.argmin(-1)
    return np.unique(lab, return_inverse=True)[1].reshape(h, w).astype(np.int32)


def random_result(seed: int, h: int, w: int, superpixels: bool = True, thresh: float = 0.5) -> tuple[ParseResult, np.ndarray]:
    """A ``ParseResult`` of random detections on a random h x w photo, and the photo."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cloth = random_dets(rng, int(rng.integers(0, 25)), h, w, MODANET_CLASSES, 13)
    body = random_dets(rng, int(rng.integers(0, 3)), h, w, ("person",), 1)
    if superpixels:
        sp = voronoi(rng, h, w, int(rng.integers(1, 60)))
        f = fuse(image, sp, cloth, body, FusionParams(mask_thresh=thresh))
        return ParseResult(h, w, cloth, body, np.asarray(f.label_map, np.uint8), f, sp, thresh, {}), image
    lab = np.asarray(pixel_level((h, w), cloth, body, max(thresh, 1e-6)), np.uint8)
    return ParseResult(h, w, cloth, body, lab, None, None, thresh, {}), image
