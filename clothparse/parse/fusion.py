"""Superpixel-level fusion of clothing detections, body detections and SLIC superpixels.

``fuse`` turns one photo's detections and superpixels into a parsing label map
(uint8 [H, W]: 0 background, 1-13 clothing, 14 skin/body) and refined instances
(each instance = the union of its superpixels). Steps:

1. Coverage: every detection's 28x28 mask is pasted on the fly inside its box with
   torchvision's geometry (``clothparse.parse.paste``) and binarised at ``mask_thresh``;
   pixels are counted per (detection, superpixel) (the soft vote also sums the pasted
   probabilities in the same pass). The bodies are pasted into one union mask, counted
   per superpixel. No per-detection full-resolution mask exists.
2. Colour: per-superpixel mean sRGB; ``mean_lab`` is the Lab of that mean colour,
   ``is_skin`` the seed's YCrCb rule on it (``clothparse.parse.colour``).
3. Assignment (``clothparse.parse.fusion_vote``), ties to the best-ranked detection:
   ``vote="area"``: the detection covering the largest fraction of the superpixel if that
   fraction >= ``cover_thresh``; ``vote="centroid"``: the original app's rule, the
   highest-ranked detection whose binarised mask contains the centroid pixel (row, col) =
   rint(mean row, mean col) or one of its 4 neighbours (up/down/left/right, inside the
   image); ``vote="soft"``: the detection with the highest mean pasted probability over
   the superpixel (0 outside its pasted region) if that mean >= ``soft_thresh``.
   Skin: with ``skin_rule="growth"`` (default, the original's rule) every superpixel
   votes, so a beige or tan garment covered by a mask keeps its class; with
   ``skin_rule="all"`` skin superpixels never vote (with ``skin_needs_body`` only skin
   inside the body counts as skin, so a tan bag off the body stays a bag).
4. Growth over the 4-connected region adjacency graph (``fusion_kernels_graph.grow``):
   unassigned, non-skin superpixels inside the body take the instance of the assigned
   neighbour with the nearest mean Lab colour if the distance < ``grow_colour_thresh``,
   in synchronous rounds until nothing changes. Skin is never grown into (either rule).
5. Labels: assigned -> its class; else inside the body -> 14 (the parsing map's 14 is
   skin *and* any other body part not covered by clothing: hair, uncovered limbs);
   else 0. "Inside the body": body coverage fraction >= ``body_cover_thresh`` (area and
   soft votes) or, for the centroid vote, the centroid pixel or one of its 4 neighbours
   in the body union (the same 5-pixel test as for clothing).

Detections are ranked by score (desc), then class, then box (x1, y1, x2, y2) (asc);
every tie is broken by rank, never by input position, so the label map does not
depend on the order of detections.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numba
import numpy as np

from clothparse.engines.base import Detections
from clothparse.parse import fusion_kernels as K
from clothparse.parse import fusion_kernels_graph as KG
from clothparse.parse.fusion_params import FusionInputError, FusionParams
from clothparse.parse.fusion_vote import padded, superpixel_features, vote
from clothparse.taxonomy import BACKGROUND_LABEL, BODY_LABEL, NUM_CLOTHING_CLASSES

#: Largest superpixel count for the dense S x S adjacency matrix (16 MiB); above it, pairs are sorted.
DENSE_ADJ_MAX = 4096
#: Largest accepted |box coordinate| (float32 still has integer precision there).
MAX_COORD = float(2**24)


@dataclass
class FusionResult:
    """Output of ``fuse`` for one image with S superpixels and N clothing detections.

    label_map: uint8 [H, W] parsing labels 0-14.
    sp_labels: int32 [H, W] the superpixel ids used (0..S-1).
    sp_class: int16 [S] label of each superpixel (0-14).
    sp_instance: int32 [S] clothing detection index (input order) or -1.
    sp_area: int64 [S] pixels per superpixel.
    coverage: float32 [S, N] fraction of superpixel s inside detection n's binarised mask.
    body_coverage: float32 [S] fraction inside the body union.
    mean_rgb: float32 [S, 3] mean colour, RGB 0-255; mean_lab: float32 [S, 3] its CIE Lab.
    is_skin: bool [S] the skin rule on the mean colour; in_body: bool [S].
    grown: bool [S] assigned by growth (not by the vote).
    changed: bool [N] see ``FusionParams.changed_iou``; refined_iou: float32 [N] that IoU
        (1 where both masks are empty).
    rank: int64 [N] rank of each detection (0 = strongest).
    growth_rounds: growth rounds run.
    """

    label_map: np.ndarray
    sp_labels: np.ndarray
    sp_class: np.ndarray
    sp_instance: np.ndarray
    sp_area: np.ndarray
    coverage: np.ndarray
    body_coverage: np.ndarray
    mean_rgb: np.ndarray
    mean_lab: np.ndarray
    is_skin: np.ndarray
    in_body: np.ndarray
    grown: np.ndarray
    changed: np.ndarray
    refined_iou: np.ndarray
    rank: np.ndarray
    growth_rounds: int = 0

    def instance_mask(self, i: int) -> np.ndarray:
        """bool [H, W]: refined instance i, the union of the superpixels assigned to it."""
        return np.asarray(self.sp_instance == i)[self.sp_labels]


def _check_detections(det: Detections, what: str) -> None:
    if not isinstance(det, Detections):
        raise FusionInputError(f"{what} must be a Detections, got {type(det).__name__}")
    s = det.scores
    if np.isnan(s).any() or (s < 0).any() or (s > 1).any():
        raise FusionInputError(f"{what} scores must be in [0, 1] (no NaN), got min {np.nanmin(s) if s.size else 0}")
    b = det.boxes
    if not np.isfinite(b).all() or (np.abs(b) > MAX_COORD).any():
        raise FusionInputError(f"{what} boxes must be finite and within ±{MAX_COORD:.0f} px")
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise FusionInputError(f"{what} boxes must have x2 >= x1 and y2 >= y1")
    if det.masks.size and np.isnan(det.masks).any():
        raise FusionInputError(f"{what} masks contain NaN")


def _check_inputs(image_rgb: np.ndarray, sp_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    img = np.asarray(image_rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or 0 in img.shape:
        raise FusionInputError(f"image must be RGB uint8 [H, W, 3], got {img.dtype} {img.shape}")
    lab = np.asarray(sp_labels)
    if lab.shape != img.shape[:2] or not np.issubdtype(lab.dtype, np.integer):
        raise FusionInputError(f"superpixel labels must be integer [H, W] = {img.shape[:2]}, got {lab.dtype} {lab.shape}")
    if lab.min() < 0:
        raise FusionInputError("superpixel labels must be >= 0")
    n_sp = int(lab.max()) + 1
    if n_sp > lab.size:
        raise FusionInputError(f"superpixel ids go up to {n_sp - 1} for {lab.size} pixels; renumber them (superpixels.relabel_contiguous)")
    return np.ascontiguousarray(img), np.ascontiguousarray(lab, dtype=np.int32), n_sp


def detection_rank(det: Detections) -> np.ndarray:
    """int64 [N]: rank of each detection (0 = first) by score desc, class asc, box asc."""
    b = det.boxes
    order = np.lexsort((b[:, 3], b[:, 2], b[:, 1], b[:, 0], det.classes, -det.scores.astype(np.float64)))
    rank = np.empty(len(det), np.int64)
    rank[order] = np.arange(len(det))
    return rank


def _adjacency(labels: np.ndarray, n_sp: int, adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if adj.shape[0] == n_sp and sys.byteorder == "little":
        return KG.dense_to_csr(adj.view(np.uint64), n_sp)
    pairs = np.unique(KG.boundary_pairs(labels), axis=0)  # large S (or big-endian)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_sp + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_sp), out=indptr[1:])
    return indptr, cols[order].astype(np.int32)


def _body_union(bodies: Detections, shape: tuple[int, int], thresh: np.float32, n_thr: int) -> np.ndarray:
    """uint8 [H, W]: 1 where any body mask is >= ``thresh``."""
    body_union = np.zeros(shape, np.uint8)
    if len(bodies):
        bm, bscale = padded(bodies)
        K.paint_masks(body_union, np.ones(len(bodies), np.uint8), bodies.boxes, bm, bscale, thresh, np.arange(len(bodies)), n_thr)
    return body_union


def _refined_iou(
    sp_inst: np.ndarray, cov: np.ndarray, area: np.ndarray, grown: np.ndarray, n_det: int, changed_iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """(IoU of each detection's thresholded mask with its refined superpixels, whether the
    superpixel stage changed it: grew into a superpixel or IoU below ``changed_iou``)."""
    n_sp = sp_inst.size
    assigned = sp_inst >= 0
    pixel_area = cov.sum(axis=1, dtype=np.int64)
    inst = np.where(assigned, sp_inst, n_det)
    inter = np.bincount(inst, weights=cov[np.minimum(sp_inst, n_det - 1), np.arange(n_sp)] if n_det else None, minlength=n_det + 1)[:n_det]
    refined_area = np.bincount(inst, weights=area, minlength=n_det + 1)[:n_det]
    union = pixel_area + refined_area - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    grew_into = np.bincount(inst[grown], minlength=n_det + 1)[:n_det] > 0
    return iou, grew_into | (iou < changed_iou)


def fuse(image_rgb: np.ndarray, sp_labels: np.ndarray, clothing: Detections, bodies: Detections, params: FusionParams | None = None) -> FusionResult:
    """Fuse detections and superpixels of one image (see the module docstring).

    image_rgb: uint8 [H, W, 3] RGB; sp_labels: int [H, W] superpixel ids 0..S-1 (gaps
    allowed: empty ids get label 0); clothing: ModaNet detections (classes 1-13);
    bodies: person detections (classes ignored). Raises ``FusionInputError``.
    """
    p = params or FusionParams()
    img, labels, n_sp = _check_inputs(image_rgb, sp_labels)
    _check_detections(clothing, "clothing")
    _check_detections(bodies, "bodies")
    if len(clothing) and ((clothing.classes < 1) | (clothing.classes > NUM_CLOTHING_CLASSES)).any():
        raise FusionInputError(f"clothing classes must be 1-{NUM_CLOTHING_CLASSES}")
    h, w = labels.shape
    n_det = len(clothing)
    n_thr = max(1, numba.get_num_threads())
    thresh = np.float32(p.mask_thresh)

    body_union = _body_union(bodies, (h, w), thresh, n_thr)
    # Rows padded to whole 8-byte words so dense_to_csr can skip empty words.
    adj = np.zeros((n_sp, -(-n_sp // 8) * 8) if n_sp <= DENSE_ADJ_MAX else (0, 0), np.uint8)
    f = superpixel_features(labels, img, body_union, n_sp, n_thr, adj, p)
    area, in_body = f.area, f.in_body
    eligible = area > 0
    if p.skin_rule == "all":
        eligible &= ~(f.skin & (in_body | (not p.skin_needs_body)))

    rank = detection_rank(clothing)
    sp_inst, cov = vote(labels, clothing, f, eligible, rank, thresh, n_thr, p)

    candidate = in_body & ~f.skin & (area > 0)
    grown = np.zeros(n_sp, bool)
    rounds = 0
    if n_det and candidate.any() and p.max_iters > 0:
        indptr, indices = _adjacency(labels, n_sp, adj)
        sp_inst, grown, rounds = KG.grow(sp_inst, candidate, f.mean_lab, rank, indptr, indices, float(p.grow_colour_thresh) ** 2, int(p.max_iters))

    sp_class = np.where(in_body, BODY_LABEL, BACKGROUND_LABEL).astype(np.int16)
    assigned = sp_inst >= 0
    if n_det:
        sp_class[assigned] = clothing.classes[sp_inst[assigned]].astype(np.int16)
    label_map = K.lookup(labels, sp_class.astype(np.uint8))
    iou, changed = _refined_iou(sp_inst, cov, area, grown, n_det, p.changed_iou)

    return FusionResult(
        label_map=label_map,
        sp_labels=labels,
        sp_class=sp_class,
        sp_instance=sp_inst,
        sp_area=area,
        coverage=(cov.T / f.safe[:, None]).astype(np.float32),
        body_coverage=f.body_cov.astype(np.float32),
        mean_rgb=f.mean_rgb.astype(np.float32),
        mean_lab=f.mean_lab.astype(np.float32),
        is_skin=f.skin,
        in_body=in_body,
        grown=grown,
        changed=changed,
        refined_iou=iou.astype(np.float32),
        rank=rank,
        growth_rounds=int(rounds),
    )


def pixel_level(image_shape: tuple[int, ...], clothing: Detections, bodies: Detections, mask_thresh: float = 0.5) -> np.ndarray:
    """uint8 [H, W] parsing map without superpixels (``--no-superpixel``).

    Each detection's mask is pasted and binarised at ``mask_thresh``; where masks
    overlap the best-ranked detection (highest score, then class, then box) wins;
    body pixels not covered by clothing are 14; everything else 0.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    if h < 1 or w < 1:
        raise FusionInputError(f"image shape must be positive, got {image_shape}")
    if not 0.0 < mask_thresh <= 1.0:
        raise FusionInputError(f"mask_thresh must be in (0, 1], got {mask_thresh}")
    _check_detections(clothing, "clothing")
    _check_detections(bodies, "bodies")
    thresh = np.float32(mask_thresh)
    n_thr = max(1, numba.get_num_threads())
    out = np.zeros((h, w), np.uint8)
    if len(clothing):
        if ((clothing.classes < 1) | (clothing.classes > NUM_CLOTHING_CLASSES)).any():
            raise FusionInputError(f"clothing classes must be 1-{NUM_CLOTHING_CLASSES}")
        pm, scale = padded(clothing)
        order = np.argsort(detection_rank(clothing))
        K.paint_masks(out, clothing.classes.astype(np.uint8), clothing.boxes, pm, scale, thresh, order, n_thr)
    if len(bodies):
        bm, bscale = padded(bodies)
        value = np.full(len(bodies), BODY_LABEL, np.uint8)
        K.paint_masks(out, value, bodies.boxes, bm, bscale, thresh, np.arange(len(bodies)), n_thr)
    return out
