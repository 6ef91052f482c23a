"""The overlay's views of one ``ParseResult``: the seed app's three buttons and its toggles.

``render_view(result, image, options)`` is the one renderer: it reads a finished
``ParseResult`` (no model runs), so a server can keep results and draw any view of them
on request; ``outputs.encode_result`` calls it for ``NAME_overlay.png``. A view changes
the overlay only: the label map and the record are always the parse result.

Views (``OverlayOptions.view``):

- ``parse`` (default): the refined parsing map (clothing classes, skin/body lighter),
  captions on the refined items.
- ``clothing``: the clothing detections alone, at pixel level: each detection's pasted
  mask binarised at ``result.mask_thresh``, one colour per *instance* (``instance_colours``,
  by score rank: the strongest first and on top where masks overlap), captions
  "class score" in that colour, a legend of the instances; no body layer.
- ``body``: the union of the person masks (pasted, binarised) in the skin/body colour,
  at full ``alpha`` (here it is the subject, not context); no clothing, no captions.

Toggles: ``show_boxes`` outlines each 8-connected region of each clothing class of the
label map (regions under ``MIN_BOX_AREA`` pixels are specks and get none) in the class
colour, on the region's outermost pixels; in the clothing and body views it draws the
detector boxes (clothing instances, persons). ``detector_boxes`` draws the detector boxes
(clothing, or persons in the body view) in every view. ``show_superpixels`` draws the
SLIC boundaries in every view (they belong to the photo, and show how the raw masks sit
on them). ``unpredicted_only`` (parse view only) colours only the superpixels growth
turned from unpredicted into clothing (``FusionResult.grown``); at pixel level nothing.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clothparse.errors import ConfigError
from clothparse.parse.overlay import Box, OverlayItem, render_overlay
from clothparse.parse.png_codec import check_level
from clothparse.taxonomy import BODY_LABEL, MODANET_CLASSES, NUM_CLOTHING_CLASSES, PALETTE

if TYPE_CHECKING:
    from clothparse.parse.pipeline import ParseResult

#: The overlay's views; ``parse`` is the default.
VIEWS: tuple[str, ...] = ("parse", "clothing", "body")
#: Regions of a class smaller than this many pixels get no ``show_boxes`` box (specks
#: along mask edges at pixel level; a superpixel is hundreds of pixels).
MIN_BOX_AREA = 16


@dataclass(frozen=True)
class OverlayOptions:
    """What the overlay shows (see the module doc) and ``png_level``, the overlay PNG's
    compression level: zlib's 0-9, 1 (the fastest, the default) by the built-in encoder
    (``clothparse.parse.png_codec``). ConfigError for an unknown view or
    ``unpredicted_only`` outside the parse view."""

    show_boxes: bool = False
    show_superpixels: bool = False
    unpredicted_only: bool = False
    png_level: int = 1
    view: str = "parse"
    detector_boxes: bool = False

    def __post_init__(self) -> None:
        check_level(self.png_level)
        if self.view not in VIEWS:
            raise ConfigError(f"unknown overlay view {self.view!r}; choose {', '.join(VIEWS)}")
        if self.unpredicted_only and self.view != "parse":
            raise ConfigError(f"unpredicted-only colours the parse view's grown superpixels, not the {self.view} view")


def render_view(
    result: ParseResult,
    image: np.ndarray,
    options: OverlayOptions = OverlayOptions(),
    *,
    item_boxes: Sequence[Sequence[float]] | None = None,
    captions: bool = True,
) -> np.ndarray:
    """The overlay of ``result`` on its RGB uint8 [H, W, 3] ``image`` for ``options``:
    RGB uint8 [H', W + legend width, 3] (see ``overlay.render_overlay``).

    item_boxes: the xywh boxes of the refined items (``item_crops(result).boxes()``),
    where the parse view's captions sit; computed when None (``encode_result`` has them).
    captions: False draws none (the map, boxes and legend alone).
    """
    sp = result.sp_labels if options.show_superpixels else None
    if options.view == "clothing":
        return _clothing_view(result, image, options, sp, captions)
    if options.view == "body":
        return _body_view(result, image, options, sp)
    items = _parse_items(result, item_boxes) if captions or options.detector_boxes else []
    boxes: list[Box] = [(it.box, it.rgb) for it in items] if options.detector_boxes else []
    if options.show_boxes:
        boxes += [(b, _rgb(PALETTE[c])) for b, c in class_boxes(result.label_map)]
    only = unpredicted_pixels(result) if options.unpredicted_only else None
    return render_overlay(image, result.label_map, items if captions else (), sp_labels=sp, only=only, boxes=boxes)


def _parse_items(result: ParseResult, item_boxes: Sequence[Sequence[float]] | None) -> list[OverlayItem]:
    if item_boxes is None:
        from clothparse.parse.outputs import item_crops

        item_boxes = item_crops(result).boxes()
    dets = result.clothing
    return [
        OverlayItem(int(c), MODANET_CLASSES[int(c) - 1], s, b, mbox)
        for c, s, b, mbox in zip(dets.classes.tolist(), dets.scores.tolist(), dets.boxes.tolist(), item_boxes, strict=True)
    ]


def _clothing_view(
    result: ParseResult, image: np.ndarray, options: OverlayOptions, sp: np.ndarray | None, captions: bool
) -> np.ndarray:
    from clothparse.parse.outputs import _pasted_crop

    dets = result.clothing
    order = np.argsort(-np.asarray(dets.scores, np.float64), kind="stable").tolist()  # strongest first
    colours = instance_colours(len(order))
    crops = [_pasted_crop(result, dets, i) for i in order]
    index = np.zeros((result.height, result.width), np.uint8)
    for k in reversed(range(len(order))):  # weakest first: the strongest ends on top
        crop, y0, x0 = crops[k]
        index[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]][crop] = k % 255 + 1
    items, legend, boxes = [], [], []
    for k, i in enumerate(order):
        crop, y0, x0 = crops[k]
        label, score, rgb = int(dets.classes[i]), float(dets.scores[i]), colours[k]
        name = MODANET_CLASSES[label - 1]
        if crop.size:
            legend.append((f"{name} {score:.2f}", rgb))
            items.append(OverlayItem(label, name, score, dets.boxes[i].tolist(), [x0, y0, crop.shape[1], crop.shape[0]], rgb))
        if options.show_boxes or options.detector_boxes:
            boxes.append((dets.boxes[i].tolist(), rgb))
    palette = np.array([(0, 0, 0), *instance_colours(255)], np.uint8)  # one palette: its tables are cached once
    return render_overlay(
        image, index, items if captions else (), sp_labels=sp, boxes=boxes, palette=palette, legend=legend
    )


def _body_view(result: ParseResult, image: np.ndarray, options: OverlayOptions, sp: np.ndarray | None) -> np.ndarray:
    from clothparse.parse.outputs import _pasted_crop

    union = np.zeros((result.height, result.width), np.uint8)
    for i in range(len(result.body)):
        crop, y0, x0 = _pasted_crop(result, result.body, i)
        union[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]][crop] = 1
    rgb = _rgb(PALETTE[BODY_LABEL])
    boxes = [(b.tolist(), rgb) for b in result.body.boxes] if options.show_boxes or options.detector_boxes else []
    legend = [("person", rgb)] if union.any() else []
    palette = np.array([(0, 0, 0), rgb], np.uint8)
    return render_overlay(image, union, sp_labels=sp, boxes=boxes, palette=palette, legend=legend)


def unpredicted_pixels(result: ParseResult) -> np.ndarray:
    """bool [H, W]: pixels of the superpixels that growth turned from unpredicted (no mask
    claimed them) into clothing, ``FusionResult.grown``; all False at pixel level (no growth)."""
    if result.fusion is None or result.sp_labels is None:
        return np.zeros((result.height, result.width), bool)
    return np.asarray(result.fusion.grown, bool)[result.sp_labels]


def class_boxes(label_map: np.ndarray, min_area: int = MIN_BOX_AREA) -> list[tuple[list[float], int]]:
    """(x1, y1, x2, y2) inclusive pixel corners and class of each 8-connected region of
    each clothing class (1-13) of uint8 [H, W] ``label_map`` with >= ``min_area`` pixels;
    by class, then in raster order of the regions' first pixels. One labelling pass over
    the map (regions of equal values), not one per class: ~20 ms at 1024 x 768."""
    from scipy import ndimage
    from skimage.measure import label

    clothing = np.where(label_map <= NUM_CLOTHING_CLASSES, label_map, 0)
    regions = label(clothing, connectivity=2, background=0)
    n = int(regions.max())
    if n == 0:
        return []
    flat = regions.reshape(-1)
    areas = np.bincount(flat, minlength=n + 1)
    cls = np.zeros(n + 1, np.int64)
    cls[flat] = clothing.reshape(-1)
    found = [
        (int(cls[k]), k, sl)
        for k, sl in enumerate(ndimage.find_objects(regions), start=1)
        if sl is not None and areas[k] >= min_area
    ]
    return [
        ([float(sl[1].start), float(sl[0].start), float(sl[1].stop - 1), float(sl[0].stop - 1)], c)
        for c, _, sl in sorted(found, key=lambda t: (t[0], t[1]))
    ]


@functools.lru_cache(maxsize=8)
def _instance_colours(n: int) -> tuple[tuple[int, int, int], ...]:
    out = []
    for k in range(n):
        hue = (0.02 + k * 0.6180339887498949) % 1.0  # golden-ratio steps: neighbours in rank far apart
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85 if k % 2 == 0 else 0.6, 0.95 if k % 3 != 2 else 0.75)
        out.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(out)


def instance_colours(n: int) -> list[tuple[int, int, int]]:
    """``n`` RGB colours of the clothing view, for score ranks 0..n-1: fixed, and
    distinct for the first 255 (they repeat after that; the view's map has 255 values)."""
    base = _instance_colours(min(n, 255))
    return [base[k % 255] for k in range(n)]


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]))
