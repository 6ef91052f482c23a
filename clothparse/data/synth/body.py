"""People: a posed 2-D skeleton and the skin/hair shapes of the body.

Geometry is built in a person-local frame whose unit is the person's height, with
(0, 0) at the top centre of the head and y pointing down (like image rows).
``Skeleton.to_image`` maps local polygons to image pixels (scale, small lean,
translation), so every garment is defined once, relative to the joints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clothparse.data.synth import raster


def _dir(angle: float, side: float) -> np.ndarray:
    """Unit vector at ``angle`` radians from straight down, positive = away from the body's midline."""
    return np.array([side * math.sin(angle), math.cos(angle)])


@dataclass
class Limb:
    """One arm or leg of one side: joints in local units, radii at each joint."""

    root: np.ndarray  # shoulder or hip joint, float [2] (x, y)
    mid: np.ndarray  # elbow or knee
    end: np.ndarray  # wrist or ankle
    r_root: float
    r_mid: float
    r_end: float

    def point(self, t: float) -> np.ndarray:
        """Point at arc fraction ``t`` in [0, 2]: 0 root, 1 mid, 2 end."""
        if t <= 1.0:
            return self.root + t * (self.mid - self.root)
        return self.mid + (t - 1.0) * (self.end - self.mid)

    def radius(self, t: float) -> float:
        """Limb radius at arc fraction ``t`` in [0, 2] (linear between joints)."""
        if t <= 1.0:
            return self.r_root + t * (self.r_mid - self.r_root)
        return self.r_mid + (t - 1.0) * (self.r_end - self.r_mid)


@dataclass
class Skeleton:
    """A posed person in local units (height = 1) and its placement in the image.

    Torso landmarks are y positions and half widths; ``arms``/``legs`` are indexed
    [left, right] as seen in the image (side -1, +1). ``height`` is in pixels,
    ``origin`` the image position (x, y) of the local (0, 0), ``lean`` radians.
    """

    height: float
    origin: np.ndarray
    lean: float
    head_c: np.ndarray
    head_rx: float
    head_ry: float
    neck_hw: float
    shoulder_y: float
    shoulder_hw: float
    waist_y: float
    waist_hw: float
    hip_y: float
    hip_hw: float
    crotch_y: float
    arms: list[Limb] = field(default_factory=list)
    legs: list[Limb] = field(default_factory=list)
    hands: list[np.ndarray] = field(default_factory=list)  # hand centres
    feet: list[np.ndarray] = field(default_factory=list)  # foot centres

    def to_image(self, poly: np.ndarray) -> np.ndarray:
        """Map a local polygon float [N, 2] to image pixels float [N, 2] (x, y)."""
        ca, sa = math.cos(self.lean), math.sin(self.lean)
        rot = np.array([[ca, -sa], [sa, ca]]) * self.height
        # Lean about the hips so the feet stay roughly where they were placed.
        pivot = np.array([0.0, self.hip_y])
        return (poly - pivot) @ rot.T + pivot * self.height + self.origin

    def torso_hw(self, y: float) -> float:
        """Half width of the bare torso at local height ``y`` (piecewise linear)."""
        ys = (self.shoulder_y, self.shoulder_y + 0.07, self.waist_y, self.hip_y, self.crotch_y)
        ws = (
            self.shoulder_hw,
            self.shoulder_hw - 0.012,
            self.waist_hw,
            self.hip_hw,
            self.hip_hw * 0.95,
        )
        return float(np.interp(y, ys, ws))

    def torso_outline(
        self, top: float, bottom: float, fit: float, below_hw: float | None = None
    ) -> np.ndarray:
        """Right half (x >= 0) of the torso silhouette from ``top`` to ``bottom``, widened by ``fit``.

        Float [M, 2], ordered top to bottom. Below the crotch (long coats, dresses)
        the width stays at ``below_hw`` (default: the hip width) times ``fit``.
        """
        ys = [y for y in (self.shoulder_y + 0.07, self.waist_y, self.hip_y) if top < y < bottom]
        ys = [top, *ys, bottom]
        last = self.hip_hw if below_hw is None else below_hw
        ws = [
            self.torso_hw(y)
            if y <= self.hip_y
            else float(np.interp(y, (self.hip_y, 1.0), (self.hip_hw, last)))
            for y in ys
        ]
        return np.array([[w * fit, y] for w, y in zip(ws, ys, strict=True)])


def mirror(right: np.ndarray) -> np.ndarray:
    """Close a right-half outline (top to bottom) into a symmetric polygon float [2M, 2]."""
    left = right[::-1] * np.array([-1.0, 1.0])
    return np.concatenate([right, left], axis=0)


def random_skeleton(rng: np.random.Generator, height: float, origin: np.ndarray) -> Skeleton:
    """A person of ``height`` pixels whose local (0, 0) (top of head) is at image ``origin``."""
    sk = Skeleton(
        height=height,
        origin=np.asarray(origin, dtype=np.float64),
        lean=float(rng.uniform(-0.12, 0.12)),
        head_c=np.array([0.0, 0.072]),
        head_rx=float(rng.uniform(0.05, 0.058)),
        head_ry=float(rng.uniform(0.064, 0.072)),
        neck_hw=float(rng.uniform(0.02, 0.026)),
        shoulder_y=0.19,
        shoulder_hw=float(rng.uniform(0.095, 0.118)),
        waist_y=float(rng.uniform(0.38, 0.41)),
        waist_hw=float(rng.uniform(0.058, 0.075)),
        hip_y=0.5,
        hip_hw=float(rng.uniform(0.075, 0.095)),
        crotch_y=0.56,
    )
    for side in (-1.0, 1.0):
        # Arm: upper-arm angle from hanging down (~0) to raised sideways (~1.7 rad);
        # the forearm bends in (hands on hips) or out relative to it.
        # (Forearms rarely cross the torso: the body is drawn under the clothes, so a
        # forearm in front of a top would vanish.)
        a1 = float(rng.uniform(0.05, 1.0) if rng.random() < 0.85 else rng.uniform(1.0, 1.8))
        a2 = float(np.clip(a1 + rng.uniform(-1.0, 0.9), -0.3, 2.6))
        shoulder = np.array([side * (sk.shoulder_hw - 0.024), sk.shoulder_y + 0.02])
        elbow = shoulder + 0.17 * _dir(a1, side)
        wrist = elbow + 0.15 * _dir(a2, side)
        sk.arms.append(Limb(shoulder, elbow, wrist, 0.027, 0.022, 0.019))
        sk.hands.append(wrist + 0.03 * _dir(a2, side))
        l1 = float(rng.uniform(-0.08, 0.3))
        l2 = float(np.clip(l1 + rng.uniform(-0.25, 0.15), -0.15, 0.4))
        hip = np.array([side * 0.045, sk.hip_y + 0.03])
        knee = hip + 0.22 * _dir(l1, side)
        ankle = knee + 0.21 * _dir(l2, side)
        sk.legs.append(Limb(hip, knee, ankle, 0.043, 0.032, 0.022))
        sk.feet.append(ankle + np.array([side * 0.018, 0.022]))
    return sk


def skin_shapes(sk: Skeleton) -> list[np.ndarray]:
    """Local polygons of the bare body (head, neck, torso, arms, hands, legs, feet)."""
    top = sk.shoulder_y - 0.01
    outline = sk.torso_outline(top, sk.crotch_y, 1.0)
    outline = np.concatenate([[[sk.neck_hw, top - 0.005]], outline], axis=0)
    shapes = [
        raster.ellipse(sk.head_c[0], sk.head_c[1], sk.head_rx, sk.head_ry),
        raster.rect(-sk.neck_hw, sk.head_c[1] + 0.03, sk.neck_hw, sk.shoulder_y + 0.01),
        mirror(outline),
    ]
    for arm, hand in zip(sk.arms, sk.hands, strict=True):
        shapes.append(raster.capsule(arm.root, arm.mid, arm.r_root, arm.r_mid))
        shapes.append(raster.capsule(arm.mid, arm.end, arm.r_mid, arm.r_end))
        shapes.append(raster.ellipse(hand[0], hand[1], 0.026, 0.026, n=12))
    for side, leg, foot in zip((-1.0, 1.0), sk.legs, sk.feet, strict=True):
        shapes.append(raster.capsule(leg.root, leg.mid, leg.r_root, leg.r_mid))
        shapes.append(raster.capsule(leg.mid, leg.end, leg.r_mid, leg.r_end))
        shapes.append(raster.ellipse(foot[0], foot[1], 0.035, 0.016, n=12, angle=side * 0.1))
    return shapes


def hair_shapes(
    sk: Skeleton, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Local polygons of the hair: (behind the head, over the head)."""
    cx, cy = sk.head_c
    back: list[np.ndarray] = []
    style = rng.random()
    if style < 0.35:  # long hair falling behind the neck onto the shoulders
        length = rng.uniform(0.17, 0.3)
        back.append(
            raster.rounded_rect(cx, cy + length / 2, sk.head_rx * 1.15, length / 2 + 0.02, 0.04)
        )
    front = [
        raster.half_ellipse(
            cx, cy - 0.012, sk.head_rx * 1.08, sk.head_ry * (0.95 + 0.15 * rng.random())
        )
    ]
    if style > 0.85:  # very short / shaved: hardly any hair over the head
        front = [raster.half_ellipse(cx, cy - 0.03, sk.head_rx * 1.02, sk.head_ry * 0.85)]
    return back, front


def face_shapes(sk: Skeleton) -> tuple[list[np.ndarray], np.ndarray]:
    """Local polygons of the eyes and the mouth (drawn as part of the body)."""
    cx, cy = sk.head_c
    eye_y = cy - 0.004
    eyes = [raster.ellipse(cx + s * 0.022, eye_y, 0.008, 0.005, n=8) for s in (-1.0, 1.0)]
    mouth = raster.ellipse(cx, cy + 0.038, 0.014, 0.0045, n=8)
    return eyes, mouth
