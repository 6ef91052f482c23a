"""Backgrounds: a gradient, an optional floor and clutter shapes.

Clutter uses the same colour and pattern generator as the garments (and sometimes
skin tones), so a model cannot tell clothing from background by colour or texture
alone; it has to use shape and position on the body.
"""

from __future__ import annotations

import functools

import numpy as np

from clothparse.data.synth import raster
from clothparse.data.synth.textures import random_colour, random_texture, skin_colour, solid


@functools.lru_cache(maxsize=8)
def _coords(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every pixel, float32 [height, width] each (read-only, cached)."""
    yy, xx = np.indices((height, width), dtype=np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def _clutter_shape(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One random background shape: rectangle, pole, ellipse or irregular polygon; float [N, 2] (x, y).

    Sizes scale with the image height (the scale people are drawn at)."""
    cx, cy = rng.uniform(-0.1, 1.1, 2) * np.array([width, height], dtype=np.float64)
    r = height * rng.uniform(0.04, 0.3)
    kind = rng.random()
    if kind < 0.3:
        return raster.rect(
            cx - r, cy - r * rng.uniform(0.3, 1.5), cx + r, cy + r * rng.uniform(0.3, 1.5)
        )
    if kind < 0.45:  # poles, door frames, table legs: long thin bars
        w = r * rng.uniform(0.05, 0.2)
        return raster.capsule(
            np.array([cx, -10.0]),
            np.array([cx + rng.normal(0, r), height + 10.0]),
            w,
            w,
            False,
            False,
        )
    if kind < 0.7:
        return raster.ellipse(cx, cy, r, r * rng.uniform(0.3, 1.2), angle=rng.uniform(0, np.pi))
    n = int(rng.integers(3, 9))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.4, 1.0, n)
    return np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], axis=1)


def render_background(rng: np.random.Generator, size: raster.Size) -> np.ndarray:
    """A cluttered background, float32 [H * W, 3] RGB in [0, 255] (flat, row-major) for an
    image of ``size`` (side, or (H, W))."""
    height, width = raster.hw(size)
    side = max(height, width)  # the noise lattice of a texture must cover the longer side
    c1, c2 = random_colour(rng, 0.45), random_colour(rng, 0.45)
    a = rng.uniform(0, 2 * np.pi)
    # A linear gradient is separable: colour(y, x) = (c1 + ty[y] d) + tx[x] d.
    span = (abs(np.cos(a)) + abs(np.sin(a))) * (side - 1) + 1.0
    tx = np.arange(width, dtype=np.float32) * np.float32(np.cos(a) / span)
    ty = np.arange(height, dtype=np.float32) * np.float32(np.sin(a) / span)
    offset = -min(0.0, float(tx[-1])) - min(0.0, float(ty[-1]))
    d = c2 - c1
    img = ((c1 + (ty + offset)[:, None] * d)[:, None, :] + (tx[:, None] * d)[None, :, :]).reshape(
        -1, 3
    )
    if rng.random() < 0.5:  # a floor (tiles, carpet, pavement) below a horizon
        horizon = int(height * rng.uniform(0.45, 0.9))
        tex = random_texture(
            rng, height * rng.uniform(0.5, 2.0), side, weights=(0.3, 0.1, 0.3, 0.0, 0.3)
        )
        yy, xx = _coords(height, width)
        img[horizon * width :] = tex.paint(yy[horizon:].ravel(), xx[horizon:].ravel())
    shapes = [_clutter_shape(rng, height, width) for _ in range(int(rng.integers(2, 11)))]
    for idx in raster.fill_polygons(shapes, (height, width)):
        if rng.random() < 0.1:  # skin-toned objects: skin colour alone must not mean "person"
            tex = solid(skin_colour(rng))
        else:
            tex = random_texture(rng, height * rng.uniform(0.3, 1.5), side)
        if idx.size:
            img[idx] = tex.paint(idx // width, idx % width)
    return img
