"""Colour conversions of superpixel mean colours: Lab (for growth) and the seed's YCrCb skin rule.

Both work on a handful of colours (one per superpixel), never per pixel: the fusion
kernel sums RGB per superpixel and these functions convert the means. Since YCrCb is
affine in RGB, the YCrCb of the mean RGB equals the mean YCrCb of the pixels; Lab is
not affine, so ``mean_lab`` is defined as the Lab of the mean sRGB colour (documented
in ``clothparse.parse.fusion``).
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2lab

#: The seed's skin box in YCrCb (OpenCV 8-bit convention), inclusive: (Y, Cr, Cb) lower / upper.
SKIN_YCRCB_LOW = (0.0, 133.0, 77.0)
SKIN_YCRCB_HIGH = (235.0, 173.0, 127.0)


def rgb_to_ycrcb(rgb: np.ndarray) -> np.ndarray:
    """float64 [..., 3] (Y, Cr, Cb) from float or uint8 [..., 3] RGB in 0-255.

    OpenCV's ``COLOR_RGB2YCrCb`` formula (what the seed used), without its rounding
    to 8 bits: Y = 0.299 R + 0.587 G + 0.114 B, Cr = (R - Y) * 0.713 + 128,
    Cb = (B - Y) * 0.564 + 128.
    """
    c = np.asarray(rgb, dtype=np.float64)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 + 128.0
    cb = (b - y) * 0.564 + 128.0
    return np.stack([y, cr, cb], axis=-1)


def is_skin(rgb: np.ndarray) -> np.ndarray:
    """bool [...]: the seed's skin rule on RGB colours (float or uint8 [..., 3], 0-255).

    Skin iff Y in [0, 235], Cr in [133, 173] and Cb in [77, 127] (bounds inclusive).
    """
    ycc = rgb_to_ycrcb(rgb)
    lo = np.asarray(SKIN_YCRCB_LOW)
    hi = np.asarray(SKIN_YCRCB_HIGH)
    return np.all((ycc >= lo) & (ycc <= hi), axis=-1)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """float64 [..., 3] CIE Lab (D65; L in 0-100) of sRGB colours given as float or uint8 [..., 3] in 0-255."""
    c = np.asarray(rgb, dtype=np.float64)
    if c.size == 0:
        return np.zeros(c.shape, np.float64)
    flat = np.clip(c.reshape(-1, 1, 3) / 255.0, 0.0, 1.0)
    return np.asarray(rgb2lab(flat), dtype=np.float64).reshape(c.shape)
