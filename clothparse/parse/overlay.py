"""The overlay of ``cpt parse``: photo + coloured parsing + captions + legend, as RGB pixels.

``blend_parsing`` colours the photo in one Numba pass (``overlay_kernel``) straight into
the canvas, which already has the legend's size. Caption backgrounds and legend swatches
are array fills; text is Pillow's coverage mask of the string (rendered once per string
and font size, then cached) blended with Pillow's own arithmetic, so the pixels are those
Pillow's drawing would give without a Pillow image of the canvas. Boxes and captions off
the pixel grid are drawn by Pillow itself. Encoding the pixels as PNG is
``clothparse.parse.png_codec``'s job. Which map, colours, boxes and legend a view shows
(parse, clothing, body) is ``clothparse.parse.views``' choice; this module only draws.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clothparse.taxonomy import PALETTE, PARSING_LABELS

_YELLOW = np.array((255.0, 255.0, 0.0), np.float32)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]
#: A rectangle to outline: (x1, y1, x2, y2) photo pixels (Pillow's inclusive corners) and its colour.
Box = tuple[Sequence[float], RGB]


@dataclass
class OverlayItem:
    """One instance to caption on the overlay: its class label (1-13), name, score and boxes.

    ``box`` is the detector's xyxy box in photo pixels; ``mask_box`` the xywh box of the
    refined mask (captions sit on the mask, which is where the viewer looks); ``colour``
    the caption's (and box's) RGB, None for the class colour ``PALETTE[label]``.
    """

    label: int
    name: str
    score: float
    box: Sequence[float]
    mask_box: Sequence[float]
    colour: RGB | None = None

    @property
    def rgb(self) -> RGB:
        if self.colour is not None:
            return self.colour
        c = PALETTE[self.label]
        return (int(c[0]), int(c[1]), int(c[2]))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Font:
    """Pillow's default font at ``size`` px, loaded once per size (not once per photo)."""
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
    *,
    boxes: Sequence[Box] = (),
    palette: np.ndarray | None = None,
    legend: Sequence[tuple[str, RGB]] | None = None,
) -> np.ndarray:
    """The picture a person looks at: photo + coloured map + boxes + captions + legend.

    image:     RGB uint8 [H, W, 3].
    label_map: uint8 [H, W], 0 background, 1-13 clothing, 14 skin/body (or, with
               ``palette``, indices into it).
    items:     instances to caption (class name and score); their detector boxes are
               drawn when ``show_boxes``.
    sp_labels: int32 [H, W] superpixel ids; when given their boundaries are drawn.
    only:      bool [H, W]; when given, only these pixels are coloured (``--unpredicted-only``).
    boxes:     more rectangles to outline (after the items' boxes, before the captions).
    palette:   uint8 [L <= 256, 3]: colours of the map's values (0 is never coloured, the
               others at ``alpha``); None: the taxonomy's (skin/body at ``alpha / 2``).
    legend:    (name, colour) rows of the legend; None: the taxonomy classes coloured
               (present in the map, inside ``only`` when given).
    Returns RGB uint8 [H', W + legend width, 3], H' = max(H, legend height): the photo
    part at the top left, white elsewhere but for the legend.
    """
    h, w = label_map.shape
    font_size = max(10, min(h, w) // 40)
    if legend is None:
        counts = label_counts(label_map) if only is None else np.bincount(label_map[np.asarray(only, bool)], minlength=256)
        present = np.flatnonzero(counts[1:]) + 1
        legend = [(PARSING_LABELS[v], _rgb(PALETTE[v])) for v in present.tolist()]
    names = [name for name, _ in legend] or ["(nothing detected)"]
    row, pad = font_size + font_size // 2, font_size // 2 + 2
    panel_w = pad * 3 + font_size + max(int(_text_length(n, font_size)) for n in names)
    full = np.full((max(h, pad * 2 + row * len(names)), w + panel_w, 3), 255, np.uint8)
    photo = full[:h, :w]
    blend_parsing(image, label_map, sp_labels, only, alpha, out=full, palette=palette)
    captions = _place_captions(items, (h, w), font_size)
    rects = [(it.box, it.rgb) for it in items] if show_boxes else []
    rects += boxes
    if rects or not all(float(v).is_integer() for rect, _, _ in captions for v in rect):
        _draw_with_pillow(photo, rects, captions, font_size)
    else:
        for rect, text, rgb in captions:
            x0, y0, x1, y1 = (int(v) for v in rect)
            photo[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = rgb  # Pillow's filled rectangle: corners included
            _paint_text(photo, (x0 + 1, y0 + 1), text, _ink(rgb), font_size, "lt")
    x0 = w + pad
    for k, name in enumerate(names):
        y = pad + k * row
        if legend:
            full[y : y + font_size + 1, x0 : x0 + font_size + 1] = 0  # 1-pixel black outline
            full[y + 1 : y + font_size, x0 + 1 : x0 + font_size] = legend[k][1]
        _paint_text(full, (x0 + font_size + pad, y), name, (0, 0, 0), font_size, "la")
    return full


Caption = tuple[tuple[float, float, float, float], str, tuple[int, int, int]]


def _place_captions(items: Sequence[OverlayItem], shape: tuple[int, int], font_size: int) -> list[Caption]:
    """(rectangle x1, y1, x2, y2, text, background colour) of the caption of each item that
    gets one. Strongest first: when captions would collide, the weaker one moves or is
    dropped (the legend still names every class present)."""
    placed: list[tuple[float, float, float, float]] = []
    out: list[Caption] = []
    for it in sorted(items, key=lambda i: -i.score):
        if it.mask_box[2] > 0:
            text = f"{it.name} {it.score:.2f}"
            rect = _place_caption(_text_mask(text, font_size, "lt")[0], it.mask_box, shape, placed)
            if rect is not None:
                out.append((rect, text, it.rgb))
    return out


def _rgb(c: np.ndarray) -> RGB:
    return (int(c[0]), int(c[1]), int(c[2]))


def _draw_with_pillow(photo: np.ndarray, boxes: Sequence[Box], captions: list[Caption], font_size: int) -> None:
    """``boxes`` (outlines ``max(1, font_size // 6)`` px wide, inside the rectangle) and
    ``captions`` drawn by Pillow on the photo part uint8 [H, W, 3] (in place): for
    outlines of any width and positions off the pixel grid."""
    canvas = Image.fromarray(photo, mode="RGB")
    draw = ImageDraw.Draw(canvas)
    for box, rgb in boxes:
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle((x0, y0, x1, y1), outline=rgb, width=max(1, font_size // 6))
    for rect, text, rgb in captions:
        draw.rectangle(rect, fill=rgb)
        draw.text((rect[0] + 1, rect[1] + 1), text, fill=_ink(rgb), font=_font(font_size), anchor="lt")
    photo[:] = np.asarray(canvas)


def _paint_text(target: np.ndarray, xy: tuple[int, int], text: str, ink: tuple[int, int, int], font_size: int, anchor: str) -> None:
    """``ImageDraw.text(xy, text, fill=ink, font=_font(font_size), anchor=anchor)`` on uint8
    [H, W, 3] ``target`` at integer ``xy``, pixel for pixel, without a Pillow image.

    FreeType renders a caption in ~0.2 ms and a photo has up to 100; the strings repeat
    across photos (13 names x 96 scores), so each coverage mask is rendered once and
    cached, then blended in the ink colour with Pillow's own rounding (its ``BLEND``:
    ``t = in * (255 - m) + ink * m + 128; out = (t + (t >> 8)) >> 8``), which is what
    Pillow's text drawing ends with. Parts outside ``target`` are clipped, as Pillow does.
    """
    _, mask, (dx, dy) = _text_mask(text, font_size, anchor)
    x0, y0 = xy[0] + dx, xy[1] + dy
    h, w = target.shape[:2]
    mh, mw = mask.shape
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + mw, w), min(y0 + mh, h)
    if xb <= xa or yb <= ya:
        return
    m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0, None].astype(np.int32)
    region = target[ya:yb, xa:xb]
    t = region * (255 - m) + np.asarray(ink, np.int32) * m + 128
    region[:] = (t + (t >> 8)) >> 8


@functools.lru_cache(maxsize=4096)
def _text_mask(text: str, font_size: int, anchor: str) -> tuple[tuple[float, float, float, float], np.ndarray, tuple[int, int]]:
    """(``textbbox`` of ``text`` at (0, 0), uint8 [h, w] coverage mask of the text drawn
    at (0, 0), where the mask's top-left corner lies) for ``_font(font_size)`` and
    ``anchor``; the mask is drawn on a zero image with a ``font_size`` margin all round,
    then cut to its non-zero pixels."""
    font = _font(font_size)
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font, anchor=anchor)
    m = font_size
    mask = Image.new("L", (int(max(box[2], 0)) + 2 * m + 1, int(max(box[3], 0)) + 2 * m + 1), 0)
    ImageDraw.Draw(mask).text((m, m), text, fill=255, font=font, anchor=anchor)
    cut = mask.getbbox() or (0, 0, 1, 1)
    pixels = np.asarray(mask.crop(cut)).copy()
    pixels.flags.writeable = False
    return box, pixels, (cut[0] - m, cut[1] - m)


@functools.lru_cache(maxsize=256)
def _text_length(text: str, font_size: int) -> float:
    return ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font=_font(font_size))


def blend_parsing(
    image: np.ndarray,
    label_map: np.ndarray,
    sp_labels: np.ndarray | None = None,
    only: np.ndarray | None = None,
    alpha: float = 0.55,
    out: np.ndarray | None = None,
    palette: np.ndarray | None = None,
) -> np.ndarray:
    """The coloured part of the overlay: RGB uint8 [H, W, 3] (arguments as ``render_overlay``).

    Each pixel is ``photo * (1 - a) + colour * a`` in float32, rounded half up: ``a`` is
    ``alpha`` for clothing, ``alpha / 2`` for skin/body, 0 for background and outside
    ``only``; parsing edges (non-zero labels with a 4-neighbour of another label, inside
    ``only``) take ``colour * 0.6``; superpixel edges (non-zero ids with a 4-neighbour of
    another id) are then mixed 40 / 60 with yellow. Every result depends on the label and
    one photo byte only, so it is tabulated (15 x 256 x 3, float32, rounded once) and
    looked up per pixel by the kernel. ``out``: uint8 [>= H, >= W, 3] to write into
    (its top-left part); returns that part. ``palette``: uint8 [L <= 256, 3] colours of
    the map's values instead of the taxonomy's, every value but 0 at ``alpha`` (values
    past L take black).
    """
    h, w = label_map.shape
    if image.shape != (h, w, 3) or image.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 [{h}, {w}, 3], got {image.dtype} {image.shape}")
    if out is None:
        out = np.empty((h, w, 3), np.uint8)
    pal = None if palette is None else np.ascontiguousarray(palette, np.uint8).tobytes()
    tab, edge, sp_tab, sp_edge = _blend_tables(float(alpha), pal)
    dummy_only = np.zeros((1, 1), np.bool_)
    dummy_sp = np.zeros((1, 1), np.int32)
    _kernel().blend(
        np.ascontiguousarray(image),
        np.ascontiguousarray(label_map, np.uint8),
        dummy_only if only is None else np.ascontiguousarray(only, np.bool_),
        only is not None,
        dummy_sp if sp_labels is None else np.ascontiguousarray(sp_labels, np.int32),
        sp_labels is not None,
        tab,
        edge,
        sp_tab,
        sp_edge,
        out,
    )
    return out[:h, :w]


def label_counts(label_map: np.ndarray) -> np.ndarray:
    """int64 [256]: how many pixels of uint8 [H, W] ``label_map`` hold each value."""
    return _kernel().label_counts(np.ascontiguousarray(label_map, np.uint8))


@functools.lru_cache(maxsize=16)
def _blend_tables(alpha: float, palette: bytes | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 tables of ``blend_parsing`` for ``alpha`` (and ``palette``, flat RGB bytes, or
    None for the taxonomy's): blend [L, 256, 3], edge [L, 3], and both mixed with yellow
    for superpixel edges; float32 operations as numpy evaluates them per pixel, so the
    pixels equal the unrolled float computation. A given palette is padded with black to
    256 entries, so that no uint8 map value reads past the tables (the kernel does not check)."""
    if palette is None:
        pal = PALETTE.astype(np.float32)  # [L, 3]
        a = np.full(len(pal), alpha)
        a[len(PARSING_LABELS) - 1] = alpha * 0.5  # skin/body: lighter, it is context
    else:
        pal = np.zeros((256, 3), np.float32)
        given = np.frombuffer(palette, np.uint8).reshape(-1, 3)[:256]
        pal[: len(given)] = given
        a = np.full(len(pal), alpha)
    a[0] = 0.0
    a32 = a.astype(np.float32)[:, None, None]
    table = np.arange(256, dtype=np.float32)[None, :, None] * (1 - a32) + pal[:, None, :] * a32  # [L, 256, 3]
    edge = pal * 0.6
    # Half-transparent yellow: superpixel boundaries stay visible without hiding the parsing.
    yellow = _YELLOW * 0.6
    tables = (_round_u8(table), _round_u8(edge), _round_u8(table * 0.4 + yellow), _round_u8(edge * 0.4 + yellow))
    for t in tables:
        t.flags.writeable = False
    return tables


def _round_u8(x: np.ndarray) -> np.ndarray:
    """float32 0-255 -> uint8, rounding half up (clip, then truncate)."""
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _place_caption(
    text_box: tuple[float, float, float, float],
    mask_box: Sequence[float],
    shape: tuple[int, int],
    placed: list[tuple[float, float, float, float]],
) -> tuple[float, float, float, float] | None:
    """A free rectangle (x1, y1, x2, y2) for a text of bounding box ``text_box`` (at (0, 0),
    anchor "lt") at the top-left of its mask, inside the photo, stepping down a line at a
    time past captions already placed; None if none fits."""
    h, w = shape
    left, top, right, bottom = text_box
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


@functools.cache
def _kernel() -> Any:
    """``clothparse.parse.overlay_kernel`` (Numba imported on first use: `cpt` starts fast)."""
    from clothparse.parse import overlay_kernel

    return overlay_kernel
