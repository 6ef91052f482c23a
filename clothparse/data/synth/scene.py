"""Compose one synthetic image and its ground truth.

A scene is a stack of layers painted bottom to top: for each person (farther
people, i.e. feet higher in the image, first) its body layer (label 14: skin, hair,
face) and then its garments in layering order. The owner map records which layer
is visible at every pixel; all ground truth derives from it, so the label map, the
instance masks and the person masks agree by construction.

Tiny-instance rule: a garment whose visible area is below ``MIN_INSTANCE_AREA``
pixels, and a whole person whose visible area is below ``MIN_PERSON_AREA``, is
removed from the stack before anything is drawn; its pixels then show (in the image
*and* in the ground truth) whatever layer lies beneath. Removing a layer can only
enlarge others, so this is repeated until nothing is below its threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from clothparse.data.synth import body, raster
from clothparse.data.synth.background import render_background
from clothparse.data.synth.garments import Garment, dress_person
from clothparse.data.synth.raster import Size, hw
from clothparse.data.synth.textures import Texture, hair_colour, skin_colour, smooth_field, solid
from clothparse.taxonomy import BODY_LABEL

MIN_INSTANCE_AREA = 20
MIN_PERSON_AREA = 100
#: Probabilities of 0, 1, 2, 3 people in an image.
PEOPLE_P = (0.06, 0.44, 0.3, 0.2)


@dataclass
class Layer:
    """One painted layer: ``label`` 1-13 (a garment) or 14 (a body), owned by person ``person``.

    ``parts``: (flat pixel indices int64 [K] ``r * W + c`` into the H x W image, texture),
    painted in order; indices are the un-occluded (amodal) shape, clipped to the image.
    """

    label: int
    person: int
    parts: list[tuple[np.ndarray, Texture]] = field(default_factory=list)

    @property
    def idx(self) -> np.ndarray:
        """Flat indices of the whole amodal shape (int64, may repeat)."""
        return np.concatenate([p for p, _ in self.parts]) if self.parts else raster.EMPTY

    def amodal(self, size: Size) -> np.ndarray:
        """Bool [H, W] mask of the layer's shape before any occlusion (``size``: side, or (H, W))."""
        return raster.indices_to_mask(self.idx, size)


class Instance(NamedTuple):
    """A visible garment: ModaNet class id 1-13, bool [H, W] visible mask, index into ``Scene.persons``."""

    class_id: int
    mask: np.ndarray
    person: int


@dataclass
class Scene:
    """One rendered image with its ground truth (H x W pixels).

    image: uint8 [H, W, 3] RGB. label_map: uint8 [H, W] in 0-14 (0 background,
    1-13 visible garment, 14 visible body not covered by a garment).
    instances: visible garments in drawing order. persons: bool [H, W] visible
    person (body and worn garments), one per kept person. layers: the kept layers
    bottom to top; owner: int32 [H, W] index into ``layers`` of the visible layer
    (-1 = background); instance_layers[i]: index into ``layers`` of instances[i].
    """

    image: np.ndarray
    label_map: np.ndarray
    instances: list[Instance]
    persons: list[np.ndarray]
    layers: list[Layer]
    owner: np.ndarray
    instance_layers: list[int]


def paint_owner(layers: list[Layer], size: Size) -> np.ndarray:
    """Index of the topmost layer at each pixel, int32 [H * W] (-1 = none); ``size``: side, or (H, W)."""
    height, width = hw(size)
    owner = np.full(height * width, -1, dtype=np.int32)
    for k, layer in enumerate(layers):
        for idx, _ in layer.parts:
            owner[idx] = k
    return owner


def resolve_visibility(
    layers: list[Layer],
    size: Size,
    min_area: int = MIN_INSTANCE_AREA,
    min_person_area: int = MIN_PERSON_AREA,
) -> tuple[list[Layer], np.ndarray]:
    """Apply the tiny-instance rule; return the kept layers (same order) and their owner map int32 [H * W]."""
    kept = list(layers)
    while True:
        owner = paint_owner(kept, size)
        areas = np.bincount(owner + 1, minlength=len(kept) + 1)[1:]
        person_area: dict[int, int] = {}
        for layer, a in zip(kept, areas, strict=True):
            person_area[layer.person] = person_area.get(layer.person, 0) + int(a)
        keep = [
            (layer.label == BODY_LABEL or a >= min_area)
            and person_area[layer.person] >= min_person_area
            for layer, a in zip(kept, areas, strict=True)
        ]
        if all(keep):
            return kept, owner
        kept = [layer for layer, k in zip(kept, keep, strict=True) if k]


def _body_garment(sk: body.Skeleton, rng: np.random.Generator) -> Garment:
    """The body as a pseudo-garment of label 14: hair behind, skin, hair over, face."""
    skin = skin_colour(rng)
    hair = solid(hair_colour(rng))
    back, front = body.hair_shapes(sk, rng)
    eyes, mouth = body.face_shapes(sk)
    lips = solid(np.clip(skin * np.array([0.8, 0.55, 0.55]), 0, 255).astype(np.float32))
    return Garment(
        BODY_LABEL,
        [
            (back, hair),
            (body.skin_shapes(sk), solid(skin)),
            (front, hair),
            (eyes, solid(np.array([30.0, 25.0, 25.0], dtype=np.float32))),
            ([mouth], lips),
        ],
    )


def _place_person(rng: np.random.Generator, image_h: int, image_w: int) -> body.Skeleton:
    """A random skeleton: height 0.55-1.35 x the image height, anywhere across, often cut by a border."""
    height = image_h * math.exp(rng.uniform(math.log(0.55), math.log(1.35)))
    top_lo = -0.2 * height
    top = rng.uniform(top_lo, max(image_h - 0.85 * height, top_lo + 1.0))
    return body.random_skeleton(rng, height, np.array([rng.uniform(0.08, 0.92) * image_w, top]))


def build_layers(rng: np.random.Generator, size: Size) -> list[Layer]:
    """All layers of a random group of people, bottom to top (before visibility).

    Every polygon of every person is rasterised in one batched call; each polygon
    stays its own part so that shading follows individual limbs.
    """
    image_h, image_w = hw(size)
    n = int(rng.choice(len(PEOPLE_P), p=PEOPLE_P))
    skeletons = sorted(
        (_place_person(rng, image_h, image_w) for _ in range(n)), key=lambda s: s.origin[1] + s.height
    )
    layers: list[Layer] = []
    polys: list[np.ndarray] = []
    owners: list[tuple[Layer, Texture]] = []
    for p, sk in enumerate(skeletons):
        local: list[np.ndarray] = []
        for garment in [_body_garment(sk, rng), *dress_person(sk, rng, max(image_h, image_w))]:
            layer = Layer(garment.label, p)
            layers.append(layer)
            for group, tex in garment.parts:
                local.extend(group)
                owners.extend((layer, tex) for _ in group)
        counts = np.cumsum([len(q) for q in local])[:-1]
        polys.extend(np.split(sk.to_image(np.concatenate(local)), counts))
    for idx, (layer, tex) in zip(raster.fill_polygons(polys, (image_h, image_w)), owners, strict=True):
        layer.parts.append((idx, tex))
    return layers


def composite(
    background: np.ndarray, layers: list[Layer], owner: np.ndarray, size: Size
) -> np.ndarray:
    """Paint each layer's textures on its visible pixels; float32 [H * W, 3] RGB in [0, 255].

    Each part gets a soft horizontal shading (darker towards its left/right edge)
    so limbs and garments look rounded rather than flat.
    """
    width = hw(size)[1]
    img = background
    for k, layer in enumerate(layers):
        for idx, tex in layer.parts:
            sel = idx[owner[idx] == k]
            if sel.size == 0:
                continue
            r, c = sel // width, sel % width
            cols = idx % width
            lo, hi = float(cols.min()), float(cols.max())
            u = (c - 0.5 * (lo + hi)) / (0.5 * (hi - lo) + 1.0)
            shade = (1.0 - 0.22 * u * u).astype(np.float32)
            img[sel] = tex.paint(r, c) * shade[:, None]
    return img


def render_scene(rng: np.random.Generator, size: Size) -> Scene:
    """Render one random scene with its ground truth; ``size``: the side of a square image,
    or (height, width). People are scaled to the image height."""
    height, width = hw(size)
    size = (height, width)
    background = render_background(rng, size)
    layers = build_layers(rng, size)
    kept, owner = resolve_visibility(layers, size)
    # Renumber people so that dropped ones leave no gaps.
    order = sorted({layer.person for layer in kept})
    renum = {p: i for i, p in enumerate(order)}
    kept = [Layer(layer.label, renum[layer.person], layer.parts) for layer in kept]

    img = composite(background, kept, owner, size)
    # Uneven lighting over the whole picture, then sensor-like luminance noise
    # (uniform from random bytes: a normal draw per pixel costs more than the scene).
    light = np.float32(0.75) + np.float32(0.5) * smooth_field(rng, size, 3)
    np.multiply(img, light.reshape(-1, 1), out=img)
    grain = np.frombuffer(rng.bytes(height * width), dtype=np.uint8).astype(np.float32)
    grain -= np.float32(127.5)
    grain *= np.float32(rng.uniform(0.0, 0.08))
    np.add(img, grain[:, None], out=img)
    image = np.clip(img, 0, 255).astype(np.uint8).reshape(height, width, 3)

    label_lut = np.array([0, *(layer.label for layer in kept)], dtype=np.uint8)
    person_lut = np.array([-1, *(layer.person for layer in kept)], dtype=np.int32)
    label_map = label_lut[owner + 1].reshape(height, width)
    person_map = person_lut[owner + 1].reshape(height, width)
    owner2d = owner.reshape(height, width)
    instances, instance_layers = [], []
    for k, layer in enumerate(kept):
        if layer.label != BODY_LABEL:
            instances.append(Instance(layer.label, owner2d == k, layer.person))
            instance_layers.append(k)
    persons = [person_map == p for p in range(len(order))]
    return Scene(image, label_map, instances, persons, kept, owner2d, instance_layers)


def instance_map(scene: Scene) -> np.ndarray:
    """Index into ``scene.instances`` of the visible garment at each pixel, int64 [H, W] (-1 = none)."""
    lut = np.full(len(scene.layers) + 1, -1, dtype=np.int64)
    lut[np.asarray(scene.instance_layers, dtype=np.int64) + 1] = np.arange(len(scene.instances))
    return lut[scene.owner + 1]


def person_map(scene: Scene) -> np.ndarray:
    """Index into ``scene.persons`` of the person visible at each pixel, int64 [H, W] (-1 = none)."""
    lut = np.array([-1, *(layer.person for layer in scene.layers)], dtype=np.int64)
    return lut[scene.owner + 1]
