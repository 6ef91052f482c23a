"""Plain numpy reference of ``clothparse.parse.fusion.fuse``, for golden tests only.

Written for clarity, not speed: it pastes each mask to full resolution with the numpy
port of torchvision's paste (``clothparse.parse.paste``), counts and sums with
``np.bincount``, builds the adjacency graph as a Python set of label pairs and runs the
votes (area, centroid + 4 neighbours, soft), the skin rules and growth as Python loops.
It shares no code with the Numba kernels or ``clothparse.parse.fusion_vote`` except the
colour conversions and the parameter/result types, so agreement is evidence, not
tautology.
"""

from __future__ import annotations

import numpy as np

from clothparse.engines.base import Detections
from clothparse.parse.colour import is_skin, rgb_to_lab
from clothparse.parse.fusion import FusionParams, FusionResult
from clothparse.parse.paste import paste_mask
from clothparse.taxonomy import BODY_LABEL


def reference_rank(det: Detections) -> np.ndarray:
    """int64 [N]: rank by (score desc, class, x1, y1, x2, y2, input index)."""
    keys = [
        (-float(det.scores[i]), int(det.classes[i]), *(float(v) for v in det.boxes[i]), i)
        for i in range(len(det))
    ]
    rank = np.empty(len(det), np.int64)
    for r, k in enumerate(sorted(keys)):
        rank[int(k[-1])] = r
    return rank


def reference_adjacency(labels: np.ndarray) -> dict[int, list[int]]:
    """Superpixel id -> sorted ids of its 4-connected neighbours."""
    pairs: set[tuple[int, int]] = set()
    for left, right in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        diff = left != right
        pairs.update(zip(left[diff].tolist(), right[diff].tolist(), strict=True))
    nbrs: dict[int, set[int]] = {}
    for a, b in pairs:
        nbrs.setdefault(a, set()).add(b)
        nbrs.setdefault(b, set()).add(a)
    return {k: sorted(v) for k, v in nbrs.items()}


def fuse_reference(image_rgb: np.ndarray, sp_labels: np.ndarray, clothing: Detections, bodies: Detections, params: FusionParams | None = None) -> FusionResult:
    """Same contract and result as ``fusion.fuse`` (inputs assumed valid)."""
    p = params or FusionParams()
    labels = np.asarray(sp_labels, dtype=np.int64)
    h, w = labels.shape
    n_sp = int(labels.max()) + 1
    n_det = len(clothing)
    thr = np.float32(p.mask_thresh)
    flat = labels.ravel()

    area = np.bincount(flat, minlength=n_sp)
    safe = np.maximum(area, 1).astype(np.float64)
    rows, cols = np.indices((h, w))
    sums = np.stack([np.bincount(flat, weights=v.ravel().astype(np.float64), minlength=n_sp)
                     for v in (rows, cols, *np.moveaxis(image_rgb, -1, 0))], axis=1)
    mean_rgb = sums[:, 2:] / safe[:, None]
    mean_lab = rgb_to_lab(mean_rgb)
    skin = is_skin(mean_rgb) & (area > 0)
    centroid = np.rint(sums[:, :2] / safe[:, None]).astype(np.int64)

    def near_centroid(mask: np.ndarray, s: int) -> bool:
        """The centroid pixel of superpixel s or one of its 4 neighbours (inside the image) is in mask."""
        cy, cx = int(centroid[s, 0]), int(centroid[s, 1])
        for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
            y, x = cy + dy, cx + dx
            if 0 <= y < h and 0 <= x < w and mask[y, x]:
                return True
        return False

    body = np.zeros((h, w), bool)
    for m, b in zip(bodies.masks, bodies.boxes, strict=True):
        body |= paste_mask(m, b, (h, w)) >= thr
    body_cov = np.bincount(flat[body.ravel()], minlength=n_sp) / safe
    if p.vote == "centroid":
        in_body = np.array([area[s] > 0 and near_centroid(body, s) for s in range(n_sp)], bool)
    else:
        in_body = (body_cov >= p.body_cover_thresh) & (area > 0)
    if p.skin_rule == "all":
        may_vote = (area > 0) & ~(skin & (in_body | (not p.skin_needs_body)))
    else:  # "growth": skin only stops growth
        may_vote = area > 0

    rank = reference_rank(clothing)
    cov = np.zeros((n_det, n_sp), np.int64)
    prob_mean = np.zeros((n_det, n_sp), np.float64)
    at_centroid = np.zeros((n_det, n_sp), bool)
    for i in range(n_det):
        prob = paste_mask(clothing.masks[i], clothing.boxes[i], (h, w))
        pasted = prob >= thr
        cov[i] = np.bincount(flat[pasted.ravel()], minlength=n_sp)
        prob_mean[i] = np.bincount(flat, weights=prob.ravel().astype(np.float64), minlength=n_sp) / safe
        at_centroid[i] = [near_centroid(pasted, s) for s in range(n_sp)]

    sp_inst = np.full(n_sp, -1, np.int64)
    for s in range(n_sp):
        if not may_vote[s]:
            continue
        best, best_key = -1, None
        for i in range(n_det):
            if p.vote == "area":
                if cov[i, s] == 0 or cov[i, s] / safe[s] < p.cover_thresh:
                    continue
                key: tuple[float, int] = (-float(cov[i, s]), int(rank[i]))
            elif p.vote == "soft":
                if not prob_mean[i, s] >= p.soft_thresh:
                    continue
                key = (-float(prob_mean[i, s]), int(rank[i]))
            else:
                if not at_centroid[i, s]:
                    continue
                key = (0.0, int(rank[i]))
            if best_key is None or key < best_key:
                best, best_key = i, key
        sp_inst[s] = best

    grown = np.zeros(n_sp, bool)
    rounds = 0
    nbrs = reference_adjacency(labels)
    candidate = in_body & ~skin & (area > 0)
    t2 = float(p.grow_colour_thresh) ** 2
    while n_det and rounds < p.max_iters and candidate.any():
        rounds += 1
        updates: dict[int, int] = {}
        for s in np.flatnonzero(candidate & (sp_inst < 0)).tolist():
            options = []
            for nb in nbrs.get(s, []):
                if sp_inst[nb] >= 0:
                    d = ((mean_lab[s, 0] - mean_lab[nb, 0]) ** 2 + (mean_lab[s, 1] - mean_lab[nb, 1]) ** 2
                         + (mean_lab[s, 2] - mean_lab[nb, 2]) ** 2)
                    if d < t2:
                        options.append((d, rank[sp_inst[nb]], nb))
            if options:
                updates[s] = int(sp_inst[min(options)[2]])
        for s, i in updates.items():
            sp_inst[s] = i
            grown[s] = True
        if not updates:
            break

    sp_class = np.where(in_body, BODY_LABEL, 0).astype(np.int16)
    for s in range(n_sp):
        if sp_inst[s] >= 0:
            sp_class[s] = clothing.classes[sp_inst[s]]

    changed = np.zeros(n_det, bool)
    iou = np.ones(n_det, np.float64)
    for i in range(n_det):
        mine = sp_inst == i
        inter = cov[i, mine].sum()
        union = cov[i].sum() + area[mine].sum() - inter
        iou[i] = inter / union if union > 0 else 1.0
        changed[i] = bool(grown[mine].any()) or iou[i] < p.changed_iou

    return FusionResult(
        label_map=sp_class.astype(np.uint8)[labels],
        sp_labels=labels.astype(np.int32),
        sp_class=sp_class,
        sp_instance=sp_inst.astype(np.int32),
        sp_area=area.astype(np.int64),
        coverage=(cov.T / safe[:, None]).astype(np.float32),
        body_coverage=body_cov.astype(np.float32),
        mean_rgb=mean_rgb.astype(np.float32),
        mean_lab=mean_lab.astype(np.float32),
        is_skin=skin,
        in_body=in_body,
        grown=grown,
        changed=changed,
        refined_iou=iou.astype(np.float32),
        rank=rank,
        growth_rounds=rounds,
    )
