"""torchvision's mask-paste geometry as plain numpy, bit-for-bit in float32.

A Mask R-CNN mask head gives an M x M probability map (M = 28) covering its box.
torchvision (``roi_heads.paste_masks_in_image``) puts it into the image like this:

1. pad the mask by one zero pixel on every side -> (M+2) x (M+2);
2. expand the box about its centre by ``scale = (M+2)/M`` (float32 arithmetic) and
   truncate the corners to integers toward zero (``Tensor.to(int64)``);
3. resize the padded mask with bilinear interpolation (``align_corners=False``) to
   ``h = max(y2 - y1 + 1, 1)`` rows and ``w = max(x2 - x1 + 1, 1)`` columns;
4. copy the part that falls inside the image to rows ``max(y1,0) .. min(y2+1,H)-1``
   and columns ``max(x1,0) .. min(x2+1,W)-1``; everything else is 0.

This module reproduces those steps with the same float32 operations in the same
order (``expand_boxes``, ``axis_weights``) so that the Numba fusion kernel, which
re-implements them per pixel without ever allocating a full-resolution mask, can be
checked against it exactly. ``paste_mask_region`` returns only the box-sized part
inside the image; ``paste_masks`` builds full-resolution masks and exists for tests
and references only (never N full-resolution masks in the pipeline).
"""

from __future__ import annotations

import numpy as np

_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def expand_scale(mask_size: int, padding: int = 1) -> np.float32:
    """The box expansion factor (M + 2*padding) / M, rounded to float32 as torch does."""
    return np.float32(float(mask_size + 2 * padding) / mask_size)


def expand_boxes(boxes: np.ndarray, mask_size: int, padding: int = 1) -> np.ndarray:
    """Integer paste boxes, int64 [N, 4] (x1, y1, x2, y2), inclusive pixel corners.

    boxes: float32 [N, 4] xyxy in image pixels (any values; may lie outside the image).
    Same float32 operation order as torchvision's ``expand_boxes``; the cast truncates
    toward zero like ``Tensor.to(torch.int64)``.
    """
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scale = expand_scale(mask_size, padding)
    w_half = (b[:, 2] - b[:, 0]) * _HALF * scale
    h_half = (b[:, 3] - b[:, 1]) * _HALF * scale
    x_c = (b[:, 2] + b[:, 0]) * _HALF
    y_c = (b[:, 3] + b[:, 1]) * _HALF
    out = np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)
    return np.trunc(out).astype(np.int64)


def axis_weights(out_size: int, in_size: int, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear (align_corners=False) source indices and weights along one axis.

    For output positions ``start .. stop-1`` of a resize from ``in_size`` to ``out_size``:
    returns (i0 int64, i1 int64, l0 float32, l1 float32), each [stop - start], so that
    ``out[d] = in[i0[d]] * l0[d] + in[i1[d]] * l1[d]``. Mirrors ATen's
    ``area_pixel_compute_source_index`` + ``guard_index_and_lambda`` in float32.
    """
    stop = out_size if stop is None else stop
    scale = np.float32(in_size) / np.float32(out_size)
    d = np.arange(start, stop, dtype=np.int64).astype(np.float32)
    src = np.maximum(scale * (d + _HALF) - _HALF, _ZERO)
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    l1 = np.minimum(np.maximum(src - i0.astype(np.float32), _ZERO), _ONE)
    i1 = i0 + (i0 < in_size - 1)
    l0 = _ONE - l1
    return i0, i1, l0.astype(np.float32), l1.astype(np.float32)


def pad_mask(mask: np.ndarray, padding: int = 1) -> np.ndarray:
    """float32 [M+2p, M+2p]: the mask with ``padding`` zero pixels on every side."""
    return np.pad(np.asarray(mask, dtype=np.float32), padding)


def paste_mask_region(mask: np.ndarray, box: np.ndarray, image_shape: tuple[int, int], padding: int = 1) -> tuple[int, int, int, int, np.ndarray]:
    """Paste one mask, returning only the part inside the image.

    mask: float32 [M, M] probabilities in [0, 1]; box: float32 [4] xyxy image pixels;
    image_shape: (H, W). Returns (y0, y1, x0, x1, region) with region float32
    [y1 - y0, x1 - x0] holding the pasted probabilities of image rows y0..y1-1 and
    columns x0..x1-1 (possibly empty). Pixels outside the region are 0.
    """
    y0, y1, x0, x1, m, ys, xs = region_weights(mask, box, image_shape, padding)
    if y1 <= y0 or x1 <= x0:
        return y0, y1, x0, x1, np.zeros((y1 - y0, x1 - x0), np.float32)
    yi0, yi1, yl0, yl1 = ys
    xi0, xi1, xl0, xl1 = xs
    # Horizontal pass first, then vertical: ATen's order of float32 operations.
    t0 = m[yi0][:, xi0] * xl0 + m[yi0][:, xi1] * xl1
    t1 = m[yi1][:, xi0] * xl0 + m[yi1][:, xi1] * xl1
    region = t0 * yl0[:, None] + t1 * yl1[:, None]
    return y0, y1, x0, x1, region.astype(np.float32)


Weights = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def region_weights(
    mask: np.ndarray, box: np.ndarray, image_shape: tuple[int, int], padding: int = 1
) -> tuple[int, int, int, int, np.ndarray, Weights, Weights]:
    """The geometry of ``paste_mask_region``: (y0, y1, x0, x1, padded float32 mask,
    ``axis_weights`` of the rows y0..y1-1, of the columns x0..x1-1). An empty region has
    y1 <= y0 or x1 <= x0 (clamped to y1 >= y0, x1 >= x0) and empty weights."""
    m = pad_mask(mask, padding)
    size_in = m.shape[0]
    bx1, by1, bx2, by2 = (int(v) for v in expand_boxes(np.asarray(box)[None], mask.shape[-1], padding)[0])
    h, w = max(by2 - by1 + 1, 1), max(bx2 - bx1 + 1, 1)
    im_h, im_w = image_shape
    y0, y1 = max(by1, 0), min(by2 + 1, im_h)
    x0, x1 = max(bx1, 0), min(bx2 + 1, im_w)
    if y1 <= y0 or x1 <= x0:
        none = axis_weights(1, size_in, 0, 0)
        return y0, max(y0, y1), x0, max(x0, x1), m, none, none
    return y0, y1, x0, x1, m, axis_weights(h, size_in, y0 - by1, y1 - by1), axis_weights(w, size_in, x0 - bx1, x1 - bx1)


def paste_mask(mask: np.ndarray, box: np.ndarray, image_shape: tuple[int, int], padding: int = 1) -> np.ndarray:
    """One full-resolution pasted mask, float32 [H, W] probabilities in [0, 1]."""
    out = np.zeros(image_shape, np.float32)
    y0, y1, x0, x1, region = paste_mask_region(mask, box, image_shape, padding)
    out[y0:y1, x0:x1] = region
    return out


def paste_masks(masks: np.ndarray, boxes: np.ndarray, image_shape: tuple[int, int], padding: int = 1) -> np.ndarray:
    """float32 [N, H, W]: every mask pasted. For tests and references only (memory N*H*W)."""
    out = np.zeros((len(masks), *image_shape), np.float32)
    for i, (m, b) in enumerate(zip(masks, boxes, strict=True)):
        out[i] = paste_mask(m, b, image_shape, padding)
    return out
