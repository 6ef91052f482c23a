"""Garments: each ModaNet class as shapes attached to a skeleton, and the outfit sampler.

Every class has a characteristic shape and place on the body (like real clothing),
while its colour and pattern are random. Shapes are local polygons (unit = the
person's height, see ``body.Skeleton``); ``dress_person`` returns the garments of
one person bottom-to-top in a plausible layering order:
lower garment / footwear, top or dress, belt, tie, outer, scarf, headwear,
sunglasses, bag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clothparse.data.synth import raster
from clothparse.data.synth.body import Limb, Skeleton, mirror
from clothparse.data.synth.textures import Texture, hsv, random_colour, random_texture, solid
from clothparse.taxonomy import class_id

BAG, BELT, BOOTS, FOOTWEAR, OUTER, DRESS, SUNGLASSES = (
    class_id(n) for n in ("bag", "belt", "boots", "footwear", "outer", "dress", "sunglasses")
)
PANTS, TOP, SHORTS, SKIRT, HEADWEAR, SCARF_TIE = (
    class_id(n) for n in ("pants", "top", "shorts", "skirt", "headwear", "scarf/tie")
)

#: Per-person probabilities of each garment choice (tuned so that every class is
#: visible in a few hundred of 2000 images, see ``synth.json`` counts).
P_DRESS = 0.22
P_TOP = 0.93
P_LOWER = {"pants": 0.47, "shorts": 0.22, "skirt": 0.27}  # rest: none
P_OUTER = 0.3
P_BOOTS, P_FOOTWEAR = 0.22, 0.55
P_HEADWEAR = 0.3
P_SUNGLASSES = 0.3
P_BELT = 0.33
P_BAG = 0.35
P_SCARF_TIE = 0.3


@dataclass
class Garment:
    """One garment instance: its ModaNet class id and (local polygons, texture) parts, drawn in order."""

    label: int
    parts: list[tuple[list[np.ndarray], Texture]]


def _sleeve(arm: Limb, reach: float, widen: float) -> list[np.ndarray]:
    """Sleeve over ``arm`` from the shoulder to arc fraction ``reach`` (0-2), radius x ``widen``."""
    if reach <= 1.0:
        p = arm.point(reach)
        return [
            raster.capsule(arm.root, p, arm.r_root * widen, arm.radius(reach) * widen, round1=False)
        ]
    return [
        raster.capsule(arm.root, arm.mid, arm.r_root * widen, arm.r_mid * widen),
        raster.capsule(
            arm.mid, arm.point(reach), arm.r_mid * widen, arm.radius(reach) * widen, round1=False
        ),
    ]


def _sleeves(sk: Skeleton, rng: np.random.Generator, kind: str, widen: float) -> list[np.ndarray]:
    if kind == "none":
        return []
    reach = rng.uniform(0.3, 0.75) if kind == "short" else rng.uniform(1.8, 1.97)
    return [p for arm in sk.arms for p in _sleeve(arm, reach, widen)]


def leg_extent(sk: Skeleton, y: float) -> float:
    """Largest |x| + radius of the legs above local height ``y`` (a skirt's hem must reach it)."""
    best = 0.0
    for leg in sk.legs:
        for t in np.linspace(0.0, 2.0, 9):
            p = leg.point(float(t))
            if p[1] <= y:
                best = max(best, abs(p[0]) + leg.radius(float(t)))
    return best


def _bodice(
    sk: Skeleton, rng: np.random.Generator, hem: float, fit: float, below_hw: float | None = None
) -> np.ndarray:
    """Torso part of a top or dress: shoulders to ``hem`` with a crew or V neckline."""
    top_y = sk.shoulder_y - 0.018
    neck_w = sk.neck_hw + 0.012
    right = np.concatenate([[[neck_w, top_y]], sk.torso_outline(sk.shoulder_y, hem, fit, below_hw)])
    depth = rng.uniform(0.015, 0.035) if rng.random() < 0.65 else rng.uniform(0.05, 0.1)
    neckline = np.array(
        [
            [-neck_w * 0.5, top_y + depth * 0.8],
            [0.0, top_y + depth],
            [neck_w * 0.5, top_y + depth * 0.8],
        ]
    )
    return np.concatenate([mirror(right), neckline])


def top(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    sleeves = str(rng.choice(["none", "short", "long"], p=[0.2, 0.45, 0.35]))
    body = _bodice(sk, rng, hem=rng.uniform(0.44, 0.56), fit=rng.uniform(1.03, 1.12))
    return Garment(TOP, [([body, *_sleeves(sk, rng, sleeves, 1.25)], tex)])


def dress(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    hem = rng.uniform(0.62, 0.9)
    fit = rng.uniform(1.03, 1.1)
    need = (leg_extent(sk, hem) + 0.015) / fit
    flare = rng.uniform(0.0, 0.3)
    # Width at y = 1 such that the hem (linear from the hips) covers the legs.
    at_hem = max(sk.hip_hw + flare * (hem - sk.hip_y), need)
    below = sk.hip_hw + (at_hem - sk.hip_hw) * (1.0 - sk.hip_y) / (hem - sk.hip_y)
    body = _bodice(sk, rng, hem=hem, fit=fit, below_hw=below)
    sleeves = str(rng.choice(["none", "short", "long"], p=[0.45, 0.4, 0.15]))
    return Garment(DRESS, [([body, *_sleeves(sk, rng, sleeves, 1.2)], tex)])


def outer(sk: Skeleton, rng: np.random.Generator, tex: Texture, min_gap: float = 0.0) -> Garment:
    """Jacket or coat: wider and longer than a top, long sleeves, open front (two halves)."""
    hem = rng.uniform(0.5, 0.88)
    fit = rng.uniform(1.12, 1.22)
    gap = max(rng.uniform(0.0, 0.03), min_gap)
    below = max(sk.hip_hw * 1.1, (leg_extent(sk, hem) + 0.01) / fit) if hem > sk.crotch_y else None
    outline = sk.torso_outline(sk.shoulder_y, hem, fit, below)
    collar = [sk.neck_hw + 0.016, sk.shoulder_y - 0.026]
    lapel = rng.uniform(0.025, 0.045)
    close_y = rng.uniform(0.27, 0.4)
    right = np.concatenate(
        [[collar], outline, [[gap, hem], [gap, close_y], [max(lapel, gap), sk.shoulder_y + 0.02]]]
    )
    left = right * np.array([-1.0, 1.0])
    sleeve_reach = rng.uniform(1.85, 2.0)
    sleeves = [p for arm in sk.arms for p in _sleeve(arm, sleeve_reach, 1.45)]
    return Garment(OUTER, [([right, left, *sleeves], tex)])


def _pelvis(sk: Skeleton, waist: float) -> np.ndarray:
    w = sk.torso_hw(waist) * 1.06
    return np.array(
        [
            [-w, waist],
            [w, waist],
            [sk.hip_hw * 1.08, sk.hip_y],
            [sk.hip_hw, sk.crotch_y + 0.02],
            [-sk.hip_hw, sk.crotch_y + 0.02],
            [-sk.hip_hw * 1.08, sk.hip_y],
        ]
    )


def pants(sk: Skeleton, rng: np.random.Generator, tex: Texture, waist: float) -> Garment:
    reach, flare = rng.uniform(1.85, 2.0), rng.uniform(1.3, 2.0)
    polys = [_pelvis(sk, waist)]
    for leg in sk.legs:
        polys.append(raster.capsule(leg.root, leg.mid, leg.r_root * 1.3, leg.r_mid * 1.3))
        polys.append(
            raster.capsule(
                leg.mid, leg.point(reach), leg.r_mid * 1.3, leg.r_end * flare, round1=False
            )
        )
    return Garment(PANTS, [(polys, tex)])


def shorts(sk: Skeleton, rng: np.random.Generator, tex: Texture, waist: float) -> Garment:
    reach = rng.uniform(0.3, 0.75)
    polys = [_pelvis(sk, waist)]
    for leg in sk.legs:
        polys.append(
            raster.capsule(
                leg.root,
                leg.point(reach),
                leg.r_root * 1.35,
                leg.radius(reach) * 1.45,
                round1=False,
            )
        )
    return Garment(SHORTS, [(polys, tex)])


def skirt(sk: Skeleton, rng: np.random.Generator, tex: Texture, waist: float) -> Garment:
    hem = rng.uniform(0.6, 0.86)
    hip_w = sk.hip_hw * 1.1
    hem_w = max(hip_w + (hem - sk.hip_y) * rng.uniform(0.1, 0.7), leg_extent(sk, hem) + 0.012)
    right = np.array([[sk.torso_hw(waist) * 1.06, waist], [hip_w, sk.hip_y], [hem_w, hem]])
    # A slightly curved hem, right to left, between the two hem corners.
    hem_curve = np.array(
        [[hem_w * 0.5, hem + 0.01], [0.0, hem + 0.013], [-hem_w * 0.5, hem + 0.01]]
    )
    outline = mirror(right)
    return Garment(SKIRT, [([np.concatenate([outline[:3], hem_curve, outline[3:]])], tex)])


def _shoe(
    sk: Skeleton, side: float, leg: Limb, foot: np.ndarray, rx: float, ry: float
) -> list[np.ndarray]:
    return [
        raster.ellipse(foot[0] + side * 0.008, foot[1] + 0.002, rx, ry, n=14, angle=side * 0.1),
        raster.capsule(leg.end - np.array([0.0, 0.015]), foot, leg.r_end * 1.25, ry * 0.8),
    ]


def footwear(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    rx, ry = rng.uniform(0.042, 0.055), rng.uniform(0.02, 0.027)
    polys = [
        p
        for s, leg, f in zip((-1.0, 1.0), sk.legs, sk.feet, strict=True)
        for p in _shoe(sk, s, leg, f, rx, ry)
    ]
    return Garment(FOOTWEAR, [(polys, tex)])


def boots(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    t0 = rng.uniform(1.0, 1.6)  # shaft top: knee-high (1.0) to ankle boots (1.6)
    polys = []
    for s, leg, f in zip((-1.0, 1.0), sk.legs, sk.feet, strict=True):
        polys.append(
            raster.capsule(
                leg.point(t0), leg.end, leg.radius(t0) * 1.35, leg.r_end * 1.45, round0=False
            )
        )
        polys.extend(_shoe(sk, s, leg, f, 0.055, 0.028))
    return Garment(BOOTS, [(polys, tex)])


def belt(sk: Skeleton, rng: np.random.Generator, y: float) -> Garment:
    h = rng.uniform(0.024, 0.036)
    hw = sk.torso_hw(y + h / 2) * 1.16
    colour = random_colour(rng, neutral_p=0.6)
    metal = hsv(rng.uniform(0.1, 0.16), rng.uniform(0.0, 0.6), rng.uniform(0.55, 0.9))
    band = raster.rect(-hw, y, hw, y + h)
    buckle = raster.rect(-0.014, y - h * 0.15, 0.014, y + h * 1.15)
    return Garment(BELT, [([band], solid(colour)), ([buckle], solid(metal))])


def tie(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    y0, end = sk.shoulder_y - 0.012, rng.uniform(0.36, 0.45)
    knot = np.array([[-0.013, y0], [0.013, y0], [0.01, y0 + 0.026], [-0.01, y0 + 0.026]])
    blade = np.array(
        [
            [-0.009, y0 + 0.024],
            [0.009, y0 + 0.024],
            [0.022, end - 0.028],
            [0.0, end],
            [-0.022, end - 0.028],
        ]
    )
    return Garment(SCARF_TIE, [([knot, blade], tex)])


def scarf(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    wrap = raster.ellipse(
        0.0, sk.shoulder_y - 0.01, rng.uniform(0.055, 0.075), rng.uniform(0.026, 0.036)
    )
    polys = [wrap]
    r = rng.uniform(0.018, 0.026)
    for s in (-1.0, 1.0) if rng.random() < 0.5 else (float(rng.choice([-1.0, 1.0])),):
        start = np.array([s * 0.028, sk.shoulder_y])
        end = np.array([s * rng.uniform(0.02, 0.05), rng.uniform(0.3, 0.5)])
        polys.append(raster.capsule(start, end, r, r * 1.1, round1=False))
    return Garment(SCARF_TIE, [(polys, tex)])


def headwear(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    cx, cy = sk.head_c
    kind = rng.random()
    if kind < 0.35:  # beanie
        polys = [raster.half_ellipse(cx, cy - 0.004, sk.head_rx * 1.13, sk.head_ry * 1.22)]
    elif kind < 0.65:  # cap with a visor
        s = float(rng.choice([-1.0, 1.0]))
        polys = [
            raster.half_ellipse(cx, cy - 0.012, sk.head_rx * 1.1, sk.head_ry * 1.12),
            raster.ellipse(cx + s * sk.head_rx * 0.85, cy - 0.016, 0.045, 0.011, n=12),
        ]
    else:  # brimmed hat
        crown_h = rng.uniform(0.03, 0.045)
        polys = [
            raster.rounded_rect(
                cx, cy - sk.head_ry * 0.75 - crown_h * 0.5, sk.head_rx * 0.95, crown_h + 0.01, 0.015
            ),
            raster.ellipse(
                cx, cy - sk.head_ry * 0.42, rng.uniform(0.09, 0.13), rng.uniform(0.013, 0.02), n=20
            ),
        ]
    return Garment(HEADWEAR, [(polys, tex)])


def sunglasses(sk: Skeleton, rng: np.random.Generator) -> Garment:
    cx, cy = sk.head_c
    d, rx, ry = rng.uniform(0.022, 0.026), rng.uniform(0.021, 0.026), rng.uniform(0.015, 0.02)
    y = cy - 0.004
    if rng.random() < 0.6:
        lenses = [raster.ellipse(cx + s * d, y, rx, ry, n=12) for s in (-1.0, 1.0)]
    else:
        lenses = [
            raster.rounded_rect(cx + s * d, y, rx, ry, ry * 0.5, n_corner=3) for s in (-1.0, 1.0)
        ]
    bridge = raster.rect(cx - d + rx * 0.7, y - ry * 0.6, cx + d - rx * 0.7, y - ry * 0.15)
    dark = rng.random() < 0.8
    colour = (
        hsv(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.03, 0.25))
        if dark
        else random_colour(rng)
    )
    return Garment(SUNGLASSES, [([*lenses, bridge], solid(colour))])


def bag(sk: Skeleton, rng: np.random.Generator, tex: Texture) -> Garment:
    kind = rng.random()
    hw, hh = rng.uniform(0.05, 0.08), rng.uniform(0.04, 0.065)
    strap_tex = solid(np.clip(tex.c1 * rng.uniform(0.5, 0.9), 0, 255).astype(np.float32))
    s = float(rng.choice([-1.0, 1.0]))
    if kind < 0.5:  # shoulder / cross-body bag at the hip, strap from a shoulder
        centre = np.array([-s * rng.uniform(0.08, 0.16), rng.uniform(0.47, 0.6)])
        shoulder = np.array([s * (sk.shoulder_hw - 0.03), sk.shoulder_y - 0.004])
        strap = [raster.capsule(shoulder, centre + np.array([0.0, -hh]), 0.008, 0.008)]
    else:  # handbag hanging from a hand, or a clutch held in it
        hand = sk.hands[0 if s < 0 else 1]
        if kind < 0.8:
            centre = hand + np.array([0.0, hh + 0.03])
            strap = [
                raster.capsule(hand, centre + np.array([c * hw * 0.6, -hh]), 0.006, 0.006)
                for c in (-1.0, 1.0)
            ]
        else:
            centre, hh, strap = hand + np.array([0.0, 0.01]), hh * 0.6, []
    body = raster.rounded_rect(centre[0], centre[1], hw, hh, min(hw, hh) * 0.3)
    parts: list[tuple[list[np.ndarray], Texture]] = [([body], tex)]
    if strap:
        parts.insert(0, (strap, strap_tex))
    return Garment(BAG, parts)


def dress_person(sk: Skeleton, rng: np.random.Generator, size: int) -> list[Garment]:
    """Sample one person's outfit; garments bottom-to-top in drawing order."""

    def tex() -> Texture:
        return random_texture(rng, sk.height, size)

    out: list[Garment] = []
    has_dress = rng.random() < P_DRESS
    has_top = not has_dress and rng.random() < P_TOP
    u = rng.random()
    lower = None
    if not has_dress:
        acc = 0.0
        for name, p in P_LOWER.items():
            acc += p
            if u < acc:
                lower = name
                break
    waist = rng.uniform(0.43, 0.47)
    f = rng.random()
    foot = (
        boots(sk, rng, tex())
        if f < P_BOOTS
        else footwear(sk, rng, tex())
        if f < P_BOOTS + P_FOOTWEAR
        else None
    )
    if lower == "skirt":  # boots and shoes go under a skirt's hem, over trouser legs
        out += [g for g in (foot,) if g] + [skirt(sk, rng, tex(), waist)]
    else:
        if lower == "pants":
            out.append(pants(sk, rng, tex(), waist))
        elif lower == "shorts":
            out.append(shorts(sk, rng, tex(), waist))
        out += [g for g in (foot,) if g]
    if has_dress:
        out.append(dress(sk, rng, tex()))
    elif has_top:
        out.append(top(sk, rng, tex()))
    has_belt = (lower is not None or has_dress) and rng.random() < P_BELT
    if has_belt:
        out.append(belt(sk, rng, sk.waist_y - 0.01 if has_dress else waist))
    neck = rng.random() < P_SCARF_TIE
    is_tie = neck and has_top and rng.random() < 0.4
    if is_tie:
        out.append(tie(sk, rng, tex()))
    if rng.random() < P_OUTER:
        # An open jacket over a belt leaves enough of the belt visible to annotate.
        out.append(outer(sk, rng, tex(), min_gap=0.04 if has_belt else 0.0))
    if neck and not is_tie:
        out.append(scarf(sk, rng, tex()))
    if rng.random() < P_HEADWEAR:
        out.append(headwear(sk, rng, tex()))
    if rng.random() < P_SUNGLASSES:
        out.append(sunglasses(sk, rng))
    if rng.random() < P_BAG:
        out.append(bag(sk, rng, tex()))
    return out
