"""Per-superpixel features and the assignment vote of ``clothparse.parse.fusion.fuse``.

``superpixel_features`` measures every superpixel (area, mean colour, skin, centroid,
body cover, inside-the-body test); ``vote`` assigns superpixels to clothing detections
by one of three rules (``FusionParams.vote``):

* ``"area"``: the detection covering the largest fraction of the superpixel with its
  binarised mask, if that fraction >= ``cover_thresh``.
* ``"centroid"`` (the original app's rule): the best-ranked detection whose binarised
  mask contains the centroid pixel or one of its 4 neighbours (up, down, left, right;
  those outside the image are skipped). Inside the body uses the same 5-pixel test on
  the body union.
* ``"soft"``: the detection with the highest mean pasted *probability* over the
  superpixel (0 outside its pasted region), if that mean >= ``soft_thresh``. Inside the
  body as for ``"area"`` (body coverage fraction).

Ties go to the best-ranked detection (``fusion.detection_rank``). Which superpixels may
vote depends on ``skin_rule``: ``"all"`` excludes skin superpixels (inside the body,
with ``skin_needs_body``); ``"growth"`` lets every non-empty superpixel vote (skin only
stops growth, in ``fusion.fuse``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clothparse.engines.base import Detections
from clothparse.parse import colour
from clothparse.parse import fusion_kernels as K
from clothparse.parse.paste import expand_boxes, expand_scale

if TYPE_CHECKING:
    from clothparse.parse.fusion import FusionParams

#: (row, col) offsets of the centroid vote: the centroid pixel and its 4 neighbours.
CENTROID_OFFSETS = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], np.int64)


def padded(det: Detections) -> tuple[np.ndarray, np.float32]:
    """(float32 [N, M+2, M+2] masks padded by one zero pixel, the paste box scale)."""
    m = det.masks
    out = np.zeros((m.shape[0], m.shape[1] + 2, m.shape[2] + 2), np.float32)
    out[:, 1:-1, 1:-1] = m
    return out, expand_scale(m.shape[-1])


def balanced_bins(det: Detections, shape: tuple[int, int], n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Detections split into n_bins lists of similar visible box area (longest first)."""
    eb = expand_boxes(det.boxes, det.masks.shape[-1])
    h, w = shape
    vis = np.clip(np.minimum(eb[:, 2] + 1, w) - np.maximum(eb[:, 0], 0), 0, None) * np.clip(
        np.minimum(eb[:, 3] + 1, h) - np.maximum(eb[:, 1], 0), 0, None
    )
    load = [0] * n_bins
    members: list[list[int]] = [[] for _ in range(n_bins)]
    for n, v in zip(np.argsort(-vis, kind="stable").tolist(), np.sort(vis)[::-1].tolist(), strict=True):
        t = load.index(min(load))
        members[t].append(n)
        load[t] += v + 64  # + per-detection overhead
    order = np.array([n for m in members for n in m], np.int64)
    ptr = np.cumsum([0] + [len(m) for m in members]).astype(np.int64)
    return order, ptr


def centroid_points(centroid: np.ndarray) -> np.ndarray:
    """int64 [S*5, 2]: superpixel s's centroid and its 4 neighbours at rows 5s..5s+4
    (possibly outside the image: callers treat those as outside every mask)."""
    return (centroid[:, None, :] + CENTROID_OFFSETS[None]).reshape(-1, 2)


@dataclass
class SuperpixelFeatures:
    """Per-superpixel statistics of one image (arrays of length S)."""

    area: np.ndarray  # pixels
    safe: np.ndarray  # float64 max(area, 1), the divisor of every mean
    mean_rgb: np.ndarray  # [S, 3]
    mean_lab: np.ndarray  # [S, 3]
    skin: np.ndarray  # YCrCb skin rule on the mean colour (non-empty superpixels)
    centroid: np.ndarray  # int64 [S, 2] (row, col), rounded
    body_cov: np.ndarray  # share of pixels inside the body union
    in_body: np.ndarray  # body superpixel under the vote rule


def superpixel_features(
    labels: np.ndarray, img: np.ndarray, body_union: np.ndarray, n_sp: int, n_thr: int, adj: np.ndarray, p: FusionParams
) -> SuperpixelFeatures:
    """Area, mean colour, skin, centroid and body cover of every superpixel, in one pass that
    also fills the dense adjacency ``adj`` (when it has rows)."""
    stats = K.superpixel_stats(labels, img, body_union, n_sp, n_thr, adj)
    area = stats[:, 0]
    safe = np.maximum(area, 1).astype(np.float64)
    mean_rgb = stats[:, 3:6] / safe[:, None]
    mean_lab = colour.rgb_to_lab(mean_rgb)
    skin = colour.is_skin(mean_rgb) & (area > 0)
    centroid = np.rint(stats[:, 1:3] / safe[:, None]).astype(np.int64)
    body_cov = stats[:, 6] / safe
    if p.vote == "centroid":
        h, w = labels.shape
        pts = centroid_points(centroid)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
        hit = np.zeros(len(pts), bool)
        hit[inside] = body_union[pts[inside, 0], pts[inside, 1]] > 0
        in_body = hit.reshape(n_sp, len(CENTROID_OFFSETS)).any(axis=1) & (area > 0)
    else:
        in_body = (body_cov >= p.body_cover_thresh) & (area > 0)
    return SuperpixelFeatures(area, safe, mean_rgb, mean_lab, skin, centroid, body_cov, in_body)


def vote(
    labels: np.ndarray, clothing: Detections, f: SuperpixelFeatures, eligible: np.ndarray, rank: np.ndarray,
    thresh: np.float32, n_thr: int, p: FusionParams,
) -> tuple[np.ndarray, np.ndarray]:
    """(instance per superpixel, -1 for none; coverage int32 [N, S] of each detection's mask
    >= ``thresh`` over each superpixel): the ``p.vote`` rule over the ``eligible`` superpixels."""
    h, w = labels.shape
    n_sp = f.area.size
    sp_inst = np.full(n_sp, -1, np.int32)
    if not len(clothing):
        return sp_inst, np.zeros((0, n_sp), np.int32)
    pm, scale = padded(clothing)
    order, ptr = balanced_bins(clothing, (h, w), n_thr)
    by_rank = np.argsort(rank)
    cols = np.arange(n_sp)
    if p.vote == "soft":
        cov, psum = K.paste_coverage_soft(labels, clothing.boxes, pm, scale, thresh, n_sp, order, ptr)
        mean_r = (psum / f.safe)[by_rank]  # argmax returns the first maximum = the best-ranked detection
        best = mean_r.argmax(axis=0)
        ok = eligible & (mean_r[best, cols] >= p.soft_thresh)
    elif p.vote == "area":
        cov = K.paste_coverage(labels, clothing.boxes, pm, scale, thresh, n_sp, order, ptr)
        cov_r = cov[by_rank]
        best = cov_r.argmax(axis=0)
        best_cov = cov_r[best, cols]
        ok = eligible & (best_cov > 0) & (best_cov / f.safe >= p.cover_thresh)
    else:
        cov = K.paste_coverage(labels, clothing.boxes, pm, scale, thresh, n_sp, order, ptr)
        probs = K.probs_at(centroid_points(f.centroid), clothing.boxes, pm, scale, h, w)  # 0 outside the image
        hit = np.any(np.asarray(probs >= thresh).reshape(len(clothing), n_sp, len(CENTROID_OFFSETS)), axis=2)[by_rank]
        best = hit.argmax(axis=0)
        ok = eligible & hit.any(axis=0)
    sp_inst[ok] = by_rank[best[ok]].astype(np.int32)
    return sp_inst, cov
