"""The seed's superpixel stage, re-implemented faithfully as a benchmark baseline.

What the original app did (``/work/shared/METHOD.md``, stage 5), with its structure
kept on purpose: full-resolution masks (Matterport pastes them; here torchvision's
``paste_masks_in_image``), scikit-image ``regionprops`` for the centroids, and Python
loops over superpixels and masks:

1. centroid (row, col) = rint of ``regionprops(...).centroid``;
2. "predicted": the first mask (in score order) containing the centroid pixel gives the
   class; else "unpredicted" if the centroid is in the body mask;
3. skin: the seed's YCrCb rule on the centroid pixel's colour;
4. an unpredicted, non-skin superpixel takes the class of its previous/next superpixel
   *in label order* (the seed's notion of neighbour) when that one is predicted and has
   the same grey value at its centroid (within ``GREY_TOL`` levels, our reading of
   "same colour");
5. an unpredicted, non-skin superpixel whose previous and next superpixels changed to
   the same class takes that class;
6. output: each superpixel's pixels (``labels == k`` on the full image) get its class;
   unpredicted body superpixels get 14.

Used by ``clothparse.bench.fusion_bench`` for the baseline ratio; not by the pipeline.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import regionprops
from torchvision.models.detection.roi_heads import paste_masks_in_image

from clothparse.engines.base import Detections
from clothparse.parse.colour import is_skin
from clothparse.taxonomy import BODY_LABEL

#: Grey levels within which two centroid colours count as "the same colour".
GREY_TOL = 10.0


def full_resolution_masks(det: Detections, shape: tuple[int, int], thresh: float = 0.5) -> np.ndarray:
    """bool [N, H, W]: every mask pasted by torchvision and binarised (the seed's input form)."""
    if len(det) == 0:
        return np.zeros((0, *shape), bool)
    with torch.no_grad():
        pasted = paste_masks_in_image(torch.from_numpy(det.masks)[:, None], torch.from_numpy(det.boxes), shape)
    return pasted[:, 0].numpy() >= thresh


def seed_superpixel_stage(image_rgb: np.ndarray, sp_labels: np.ndarray, masks: np.ndarray, classes: np.ndarray, scores: np.ndarray, body: np.ndarray) -> np.ndarray:
    """uint8 [H, W] parsing map by the seed's rules.

    image_rgb: uint8 [H, W, 3] RGB; sp_labels: int [H, W] ids 0..S-1; masks: bool [N, H, W];
    classes: int [N] 1-13; scores: float [N]; body: bool [H, W] union of person masks.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    grey = image_rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    regions = regionprops(np.asarray(sp_labels) + 1)  # regionprops ignores label 0
    n_sp = len(regions)
    cls = np.zeros(n_sp, np.int64)
    unpredicted = np.zeros(n_sp, bool)
    skin = np.zeros(n_sp, bool)
    g = np.zeros(n_sp)
    for k, region in enumerate(regions):
        cy, cx = (int(v) for v in np.rint(region.centroid))
        g[k] = grey[cy, cx]
        skin[k] = bool(is_skin(image_rgb[cy, cx]))
        for i in order:
            if masks[i][cy, cx]:
                cls[k] = classes[i]
                break
        else:
            unpredicted[k] = bool(body[cy, cx])
    changed = np.zeros(n_sp, bool)
    for k in range(n_sp):
        if not unpredicted[k] or skin[k]:
            continue
        for nb in (k - 1, k + 1):
            if 0 <= nb < n_sp and cls[nb] > 0 and abs(g[nb] - g[k]) <= GREY_TOL:
                cls[k] = cls[nb]
                changed[k] = True
                break
    for k in range(1, n_sp - 1):
        if unpredicted[k] and not skin[k] and cls[k] == 0 and changed[k - 1] and changed[k + 1] and cls[k - 1] == cls[k + 1]:
            cls[k] = cls[k - 1]
    out = np.zeros(sp_labels.shape, np.uint8)
    for k, region in enumerate(regions):
        value = cls[k] if cls[k] > 0 else (BODY_LABEL if unpredicted[k] else 0)
        if value:
            out[sp_labels == region.label - 1] = value
    return out


def seed_parse(image_rgb: np.ndarray, sp_labels: np.ndarray, clothing: Detections, bodies: Detections) -> np.ndarray:
    """The whole seed stage from ``Detections``: paste to full resolution, then the rules above."""
    shape = sp_labels.shape
    masks = full_resolution_masks(clothing, shape)
    body = np.asarray(full_resolution_masks(bodies, shape).any(axis=0))
    return seed_superpixel_stage(image_rgb, sp_labels, masks, clothing.classes, clothing.scores, body)
