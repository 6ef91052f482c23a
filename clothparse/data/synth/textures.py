"""Colours and textures: what a garment, a body part or a background shape looks like.

A ``Texture`` is evaluated only at the pixels that end up visible, given as row and
column index arrays, and returns float32 [K, 3] RGB values in [0, 255]. Patterns are
defined in image coordinates, so one garment made of several polygons (body and
sleeves) shows one continuous pattern.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from clothparse.data.synth.raster import Size, hw

# Skin tones from light to dark (RGB); a person's tone is interpolated between two
# neighbours so the whole range is covered, not six fixed colours.
SKIN_TONES = np.array(
    [
        (255, 224, 196),
        (241, 194, 167),
        (224, 172, 135),
        (198, 134, 96),
        (141, 85, 56),
        (92, 56, 40),
    ],
    dtype=np.float32,
)
HAIR_COLOURS = np.array(
    [(25, 20, 20), (60, 40, 30), (110, 75, 45), (200, 165, 105), (150, 65, 35), (165, 160, 155)],
    dtype=np.float32,
)
# Neutral garment colours (black, white, greys, navy, beige, denim, brown, khaki):
# real wardrobes are full of them, and they stop colour alone from naming the class.
NEUTRALS = np.array(
    [
        (20, 20, 22),
        (235, 235, 230),
        (128, 128, 128),
        (70, 70, 75),
        (30, 40, 80),
        (215, 195, 160),
        (70, 100, 150),
        (110, 70, 40),
        (160, 150, 100),
    ],
    dtype=np.float32,
)

KINDS = ("solid", "stripes", "checks", "dots", "noise")


@dataclass
class Texture:
    """A colour pattern over image coordinates.

    ``kind`` is one of ``KINDS``; ``c1``/``c2`` float32 [3] RGB in [0, 255];
    ``period`` the pattern period in pixels; ``angle`` its orientation in radians;
    ``grid`` a float32 [gh, gw] value-noise lattice in [0, 1] (kind "noise" only),
    one cell every ``period`` pixels.
    """

    kind: str
    c1: np.ndarray
    c2: np.ndarray
    period: float = 8.0
    angle: float = 0.0
    duty: float = 0.5
    phase: float = 0.0
    grid: np.ndarray = field(default_factory=lambda: np.zeros((2, 2), dtype=np.float32))

    def paint(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Colours at pixels (r[i], c[i]): float32 [K, 3] RGB in [0, 255]."""
        if self.kind == "solid":
            return np.broadcast_to(self.c1, (r.shape[0], 3))
        if self.kind == "noise":
            return self.c1 + self._value_noise(r, c)[:, None] * (self.c2 - self.c1)
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        u = (c * ca + r * sa) / self.period + self.phase
        if self.kind == "stripes":
            on = (u - np.floor(u)) < self.duty
        else:
            v = (r * ca - c * sa) / self.period + self.phase
            if self.kind == "checks":
                on = ((np.floor(u) + np.floor(v)) % 2.0) < 1.0
            else:  # dots: a disc of radius duty/2 (in periods) around every lattice point
                du, dv = u - np.floor(u) - 0.5, v - np.floor(v) - 0.5
                on = du * du + dv * dv < (0.5 * self.duty) ** 2
        return np.where(on[:, None], self.c2, self.c1)

    def _value_noise(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Bilinear value noise in [0, 1] at the pixels, float [K]."""
        gh, gw = self.grid.shape
        fy = np.clip(r / self.period, 0.0, gh - 1.001)
        fx = np.clip(c / self.period, 0.0, gw - 1.001)
        iy, ix = fy.astype(np.int64), fx.astype(np.int64)
        ty, tx = fy - iy, fx - ix
        g = self.grid
        top = g[iy, ix] * (1 - tx) + g[iy, ix + 1] * tx
        bot = g[iy + 1, ix] * (1 - tx) + g[iy + 1, ix + 1] * tx
        return top * (1 - ty) + bot * ty


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB float32 [3] in [0, 255] from hue, saturation, value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def random_colour(rng: np.random.Generator, neutral_p: float = 0.3) -> np.ndarray:
    """A garment-like colour: a jittered neutral or a random hue; float32 [3] RGB in [0, 255]."""
    if rng.random() < neutral_p:
        base = NEUTRALS[rng.integers(len(NEUTRALS))]
        return np.clip(base + rng.normal(0, 10, 3), 0, 255).astype(np.float32)
    return hsv(rng.random(), rng.uniform(0.25, 0.95), rng.uniform(0.2, 0.95))


def partner_colour(rng: np.random.Generator, c1: np.ndarray) -> np.ndarray:
    """The second colour of a pattern: a contrasting colour or a shade of ``c1``."""
    if rng.random() < 0.5:
        return random_colour(rng)
    shade = rng.choice([0.45, 0.65, 1.35, 1.6])
    return np.clip(c1 * shade + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


def random_texture(
    rng: np.random.Generator,
    scale: float,
    size: int,
    colour: np.ndarray | None = None,
    weights: tuple[float, ...] = (0.4, 0.16, 0.12, 0.1, 0.22),
) -> Texture:
    """A random pattern whose period is ``scale`` x U(0.02, 0.07) pixels (``scale`` ~ a person's height).

    ``size`` is the longer image side (the noise lattice must cover it); ``weights`` are the
    probabilities of ``KINDS``.
    """
    c1 = random_colour(rng) if colour is None else colour
    kind = KINDS[int(rng.choice(len(KINDS), p=np.asarray(weights) / np.sum(weights)))]
    c2 = partner_colour(rng, c1)
    period = max(3.0, scale * rng.uniform(0.02, 0.07))
    tex = Texture(
        kind,
        c1,
        c2,
        period=period,
        angle=float(rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4, rng.uniform(0, np.pi)])),
        duty=float(rng.uniform(0.3, 0.7)),
        phase=float(rng.random()),
    )
    if kind == "noise":
        # Denim-like mottling: a low-contrast partner colour over a coarse lattice.
        tex.c2 = np.clip(c1 * rng.uniform(0.6, 1.4) + rng.normal(0, 15, 3), 0, 255).astype(
            np.float32
        )
        tex.period = max(2.0, period * 0.6)
        cells = int(size / tex.period) + 2
        tex.grid = rng.random((cells, cells), dtype=np.float32)
    return tex


def solid(colour: np.ndarray) -> Texture:
    """A single-colour texture (``colour`` float32 [3] RGB in [0, 255])."""
    return Texture(
        "solid", np.asarray(colour, dtype=np.float32), np.asarray(colour, dtype=np.float32)
    )


def skin_colour(rng: np.random.Generator) -> np.ndarray:
    """A skin tone anywhere between light and dark; float32 [3] RGB in [0, 255]."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    base = SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[i + 1] * (t - i)
    return np.clip(base + rng.normal(0, 6, 3), 0, 255).astype(np.float32)


def hair_colour(rng: np.random.Generator) -> np.ndarray:
    """A natural hair colour; float32 [3] RGB in [0, 255]."""
    base = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    return np.clip(base + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


def smooth_field(rng: np.random.Generator, size: Size, cells: int) -> np.ndarray:
    """Smooth random field float32 [H, W] in [0, 1] over an image of ``size`` (side, or (H, W)):
    a ``cells`` x ``cells`` lattice stretched over the image, bilinear.

    Separable bilinear interpolation as two small matrix products, so it costs far
    less than per-pixel gathers for a whole image.
    """
    grid = rng.random((cells, cells)).astype(np.float32)
    height, width = hw(size)
    wy = _lerp_weights(height, cells)
    wx = wy if width == height else _lerp_weights(width, cells)
    return wy @ grid @ wx.T


def _lerp_weights(n: int, cells: int) -> np.ndarray:
    """float32 [n, cells]: linear interpolation weights of ``n`` pixels over ``cells`` lattice points."""
    pos = np.linspace(0.0, cells - 1.0, n, dtype=np.float32)
    i0 = np.minimum(pos.astype(np.int64), cells - 2)
    t = pos - i0
    w = np.zeros((n, cells), dtype=np.float32)
    w[np.arange(n), i0] = 1 - t
    w[np.arange(n), i0 + 1] = t
    return w
