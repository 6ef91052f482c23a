"""A static-shape wrapper around a torchvision Mask R-CNN, for export to ONNX/TensorRT.

The wrapper reuses the model's own submodules (backbone, RPN head, box coders, box and
mask heads) and re-implements only the glue that torchvision writes with
data-dependent control flow (per-image loops, ``torch.where`` index lists, NMS with
variable output length, mask pasting). Every tensor in the traced graph therefore
has a shape fixed by (batch, height, width, top_k): no Loop, If, NonZero or Scan.

Inputs: ``images`` uint8 ``[B, 3, H, W]`` RGB canvases and ``image_sizes`` int32
        ``[B, 2]`` (rows, cols of the photo inside each canvas), both made by
        ``clothparse.contract.canvas.prepare_batch``; normalisation happens inside the graph.
Output: boxes float32 ``[B, K, 4]`` (x1, y1, x2, y2, input pixels), scores float32
        ``[B, K]`` in [0, 1], classes int32 ``[B, K]`` (1-based labels, 0 = padding),
        masks float32 ``[B, K, M, M]`` mask-head probabilities (not pasted),
        num_detections int32 ``[B]``. Rows past ``num_detections`` have score 0,
        zero boxes, class 0 and zero masks.

Torchvision's own stages on the same canvas (``clothparse.engines.torch_engine``) and
this wrapper give the same detections (see ``clothparse.export.parity``) as long as the matrix NMS converges within
``nms_iters`` iterations and the final top-K lies within the ``det_candidates``
highest-scoring (proposal, class) pairs; both hold with wide margins in practice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import roi_align

#: torchvision's default ``box_score_thresh``: the graph keeps detections above this, and
#: run-time thresholds (``--score-thresh``) filter the rest (``clothparse.engines.raw``).
DEFAULT_SCORE_FLOOR = 0.05


def take_rows(x: Tensor, idx: Tensor) -> Tensor:
    """x [B, N, ...], idx int64 [B, k] -> [B, k, ...] with out[b, j] = x[b, idx[b, j]].

    One flat Gather with a constant batch offset: ``torch.gather`` + ``expand`` would
    export an Expand whose shape ONNX shape inference cannot resolve statically.
    """
    b, n = int(x.shape[0]), int(x.shape[1])
    rest = tuple(int(s) for s in x.shape[2:])
    offsets = (torch.arange(b, device=idx.device, dtype=idx.dtype) * n)[:, None]
    return x.reshape(b * n, *rest)[idx + offsets]


def matrix_nms_keep(
    boxes: Tensor, valid: Tensor, iou_thresh: float, iters: int, same_group: Tensor | None = None
) -> Tensor:
    """Greedy NMS as a fixed number of matrix iterations (Cluster-NMS, Zheng et al. 2020).

    boxes: float32 [B, N, 4] xyxy, already sorted by descending score.
    valid: bool [B, N]; invalid boxes neither survive nor suppress.
    same_group: optional bool [B, N, N]; boxes only suppress boxes of the same group (class).
    Returns bool [B, N]: which boxes greedy NMS keeps.

    Greedy NMS is sequential (keep j unless a *kept* higher box overlaps it). Its result is
    the unique fixed point of keep_j = valid_j and not any_i<j(keep_i and C_ij); iterating
    that map from keep = valid reaches it after as many steps as the longest chain of
    alternating decisions, which is short for detection boxes. A Loop until convergence
    would be data-dependent control flow, so the iteration count is fixed instead.
    """
    x1, y1, x2, y2 = boxes.unbind(-1)
    area = (x2 - x1) * (y2 - y1)
    # Same arithmetic as torchvision's CPU nms kernel, so ties at the threshold agree.
    xx1 = torch.maximum(x1[:, :, None], x1[:, None, :])
    yy1 = torch.maximum(y1[:, :, None], y1[:, None, :])
    xx2 = torch.minimum(x2[:, :, None], x2[:, None, :])
    yy2 = torch.minimum(y2[:, :, None], y2[:, None, :])
    inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
    iou = inter / (area[:, :, None] + area[:, None, :] - inter)
    n = int(boxes.shape[1])
    # Only a higher-scoring box (row i < column j) may suppress: a constant upper triangle.
    upper = torch.ones(n, n, dtype=torch.bool, device=boxes.device).triu(1)
    sup = (iou > iou_thresh) & upper & valid[:, :, None]
    if same_group is not None:
        sup = sup & same_group
    sup_f = sup.to(boxes.dtype)
    valid_f = valid.to(boxes.dtype)
    keep = valid_f
    for _ in range(iters):
        # [B, 1, N] @ [B, N, N]: for each j, how many kept boxes i suppress it.
        hits = torch.matmul(keep[:, None, :], sup_f)[:, 0, :]
        keep = valid_f * (hits < 0.5).to(boxes.dtype)
    return keep > 0.5


class _MultiScaleRoIAlign(nn.Module):
    """torchvision's MultiScaleRoIAlign without per-level index lists.

    torchvision pools each FPN level over ``torch.where(level == l)`` (NonZero + scatter).
    Here all pooled levels are laid side by side in one canvas (each with a one-pixel
    replicated right/bottom border so bilinear sampling at a level's edge reads the same
    values as torchvision's clamping) and every RoI is shifted and scaled into its own
    level's region, so one static RoIAlign call pools all RoIs.
    """

    scales: Tensor
    x_offsets: Tensor

    def __init__(self, pooler: Any, feature_shapes: dict[str, tuple[int, int]], image_hw: tuple[int, int]):
        super().__init__()
        self.names = list(pooler.featmap_names)
        self.output_size = tuple(pooler.output_size)
        self.sampling_ratio = int(pooler.sampling_ratio)
        h_img = image_hw[0]
        scales = []
        for name in self.names:
            h, _ = feature_shapes[name]
            # Same rule as torchvision's _infer_scale: nearest power of two.
            scales.append(2.0 ** float(round(math.log2(h / h_img))))
        self.k_min = int(-math.log2(scales[0]))
        self.k_max = int(-math.log2(scales[-1]))
        self.canonical_scale = float(getattr(pooler, "canonical_scale", 224))
        self.canonical_level = float(getattr(pooler, "canonical_level", 4))
        self.canvas_h = max(feature_shapes[n][0] for n in self.names) + 1
        offsets, x = [], 0
        for name in self.names:
            offsets.append(float(x))
            x += feature_shapes[name][1] + 1
        self.canvas_w = x
        self.register_buffer("scales", torch.tensor(scales, dtype=torch.float32), persistent=False)
        self.register_buffer("x_offsets", torch.tensor(offsets, dtype=torch.float32), persistent=False)
        self.feature_shapes = {n: feature_shapes[n] for n in self.names}

    def canvas(self, features: dict[str, Tensor]) -> Tensor:
        """Features [B, C, h_l, w_l] per level -> one float32 canvas [B, C, canvas_h, canvas_w]."""
        parts = []
        for name in self.names:
            f = features[name]
            f = torch.cat([f, f[:, :, -1:, :]], dim=2)
            f = torch.cat([f, f[:, :, :, -1:]], dim=3)
            b, c, h, w = (int(v) for v in f.shape)
            if h < self.canvas_h:  # static: fill each level up to the canvas height
                f = torch.cat([f, f.new_zeros(b, c, self.canvas_h - h, w)], dim=2)
            parts.append(f)
        return torch.cat(parts, dim=3)

    def forward(self, canvas: Tensor, boxes: Tensor) -> Tensor:
        """canvas from ``canvas()``, boxes float32 [B, R, 4] input pixels -> [B*R, C, S, S]."""
        b, r = int(boxes.shape[0]), int(boxes.shape[1])
        x1, y1, x2, y2 = boxes.unbind(-1)
        size = torch.sqrt((x2 - x1) * (y2 - y1))
        # torchvision's LevelMapper (FPN paper eq. 1), as arithmetic on all RoIs at once.
        lvl = torch.floor(self.canonical_level + torch.log2(size / self.canonical_scale) + 1e-6)
        lvl = lvl.clamp(min=self.k_min, max=self.k_max).to(torch.int64) - self.k_min
        scale = self.scales[lvl]
        x_off = self.x_offsets[lvl]
        coords = torch.stack([x1 * scale + x_off, y1 * scale, x2 * scale + x_off, y2 * scale], dim=-1)
        batch_idx = torch.arange(b, device=boxes.device, dtype=boxes.dtype)[:, None, None].expand(b, r, 1)
        rois = torch.cat([batch_idx, coords], dim=-1).reshape(-1, 5)
        return roi_align(canvas, rois, self.output_size, 1.0, self.sampling_ratio, False)


class ExportWrapper(nn.Module):
    """Static-shape Mask R-CNN inference for one export size (see the module docstring).

    model: a torchvision ``MaskRCNN`` (eval mode is set here); thresholds, anchor sizes,
        top-n settings and box-coder weights are read from its own modules.
    height, width: export size in pixels (multiples of 32 keep torchvision's padding out).
    top_k: detections per image in the outputs (K).
    keep_labels: 1-based labels allowed in the output (e.g. ``[1]`` = COCO person for the
        body model); None keeps all classes. They are picked from torchvision's top-K over all
        classes, exactly as filtering the torch engine's output would pick them.
    score_floor: detections scoring at or below this are dropped in the graph (torchvision's
        strict ``score > thresh``); default: ``DEFAULT_SCORE_FLOOR`` or the model's own
        threshold if that is lower. Run-time thresholds filter above it.
    nms_iters: iterations of the matrix NMS (see ``matrix_nms_keep``).
    det_candidates: how many top-scoring (proposal, class) pairs enter the final NMS.
    """

    mean: Tensor
    std: Tensor
    labels: Tensor
    kept: Tensor | None
    anchors: Tensor
    backbone: Any
    rpn: Any
    roi_heads: Any

    def __init__(
        self,
        model: Any,
        height: int,
        width: int,
        top_k: int = 100,
        keep_labels: Sequence[int] | None = None,
        score_floor: float | None = None,
        nms_iters: int = 24,
        det_candidates: int = 1000,
    ) -> None:
        super().__init__()
        model = model.eval()
        self.height, self.width, self.top_k = int(height), int(width), int(top_k)
        self.nms_iters, self.det_candidates = int(nms_iters), int(det_candidates)
        self.backbone = model.backbone
        self.rpn = model.rpn
        self.roi_heads = model.roi_heads
        if getattr(self.roi_heads, "mask_head", None) is None:
            raise ValueError("the model has no mask head (need a Mask R-CNN)")
        rh = self.roi_heads
        #: The model's own threshold: the default run-time threshold of an export.
        self.model_score_thresh = float(rh.score_thresh)
        floor = min(DEFAULT_SCORE_FLOOR, self.model_score_thresh) if score_floor is None else float(score_floor)
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"score_floor must be in [0, 1], got {floor}")
        self.score_floor = floor
        self.det_nms_thresh = float(rh.nms_thresh)
        self.det_min_size = 1e-2  # torchvision's postprocess_detections constant
        self.pre_nms_top_n = int(self.rpn._pre_nms_top_n["testing"])
        self.post_nms_top_n = int(self.rpn._post_nms_top_n["testing"])
        self.register_buffer("mean", torch.tensor(model.transform.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(model.transform.image_std).view(1, 3, 1, 1), persistent=False)
        num_classes = int(rh.box_predictor.cls_score.out_features)
        self.register_buffer("labels", torch.arange(1, num_classes, dtype=torch.int64), persistent=False)
        kept = None
        if keep_labels is not None:
            kept = torch.tensor([int(v) for v in keep_labels], dtype=torch.int64)
            if kept.numel() == 0 or bool(((kept < 1) | (kept >= num_classes)).any()):
                raise ValueError(f"keep_labels must be in 1..{num_classes - 1}, got {kept.tolist()}")
        self.register_buffer("kept", kept, persistent=False)
        self._precompute(model)

    @torch.no_grad()
    def _precompute(self, model: Any) -> None:
        """Anchors and feature-map shapes for the fixed export size (one dummy backbone pass)."""
        dummy = torch.zeros(1, 3, self.height, self.width, device=self.mean.device)
        feats = self.backbone(dummy)
        shapes = {k: (int(v.shape[-2]), int(v.shape[-1])) for k, v in feats.items()}
        image_list = ImageList(dummy, [(self.height, self.width)])
        anchors = self.rpn.anchor_generator(image_list, list(feats.values()))[0]
        per_loc = self.rpn.anchor_generator.num_anchors_per_location()
        self.level_sizes = [h * w * a for (h, w), a in zip(shapes.values(), per_loc, strict=True)]
        self.register_buffer("anchors", anchors.float(), persistent=False)
        self.box_pool = _MultiScaleRoIAlign(self.roi_heads.box_roi_pool, shapes, (self.height, self.width))
        self.mask_pool = _MultiScaleRoIAlign(self.roi_heads.mask_roi_pool, shapes, (self.height, self.width))

    @staticmethod
    def _clip(boxes: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """Clip xyxy boxes [B, ...,  4] to each image's own photo region (torchvision's
        ``clip_boxes_to_image`` with ``image_sizes``); rows, cols float32 [B, 1, ...]."""
        x1, y1, x2, y2 = boxes.unbind(-1)
        zero = torch.zeros_like(x1)
        x1, x2 = torch.minimum(torch.maximum(x1, zero), cols), torch.minimum(torch.maximum(x2, zero), cols)
        y1, y2 = torch.minimum(torch.maximum(y1, zero), rows), torch.minimum(torch.maximum(y2, zero), rows)
        return torch.stack([x1, y1, x2, y2], dim=-1)

    @staticmethod
    def _big_enough(boxes: Tensor, min_size: float) -> Tensor:
        return ((boxes[..., 2] - boxes[..., 0]) >= min_size) & ((boxes[..., 3] - boxes[..., 1]) >= min_size)

    def _proposals(self, features: list[Tensor], rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
        """RPN -> proposals float32 [B, P, 4] and their validity bool [B, P]; rows, cols float32 [B, 1]."""
        objectness, deltas = self.rpn.head(features)
        scores_all, boxes_all = [], []
        start = 0
        for obj, dlt, n_anchors in zip(objectness, deltas, self.level_sizes, strict=True):
            b, h, w = int(obj.shape[0]), int(obj.shape[2]), int(obj.shape[3])
            # torchvision's permute_and_flatten order: (h, w, anchor).
            logits = obj.permute(0, 2, 3, 1).reshape(b, -1)
            dlt = dlt.reshape(b, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4)
            k = min(self.pre_nms_top_n, n_anchors)
            top_logits, idx = logits.topk(k, dim=1)
            sel_deltas = take_rows(dlt, idx)
            sel_anchors = self.anchors[start : start + n_anchors][idx]
            start += n_anchors
            boxes = self.rpn.box_coder.decode_single(sel_deltas.reshape(-1, 4), sel_anchors.reshape(-1, 4))
            boxes = self._clip(boxes.reshape(b, k, 4), rows, cols)
            prob = torch.sigmoid(top_logits)
            # torchvision drops small/low boxes from a list; a validity mask keeps shapes fixed.
            valid = self._big_enough(boxes, self.rpn.min_size) & (prob >= self.rpn.score_thresh)
            keep = matrix_nms_keep(boxes, valid, self.rpn.nms_thresh, self.nms_iters)
            # Dropped boxes get score -1 so the top-n below ranks them last.
            scores_all.append(torch.where(keep, prob, torch.full_like(prob, -1.0)))
            boxes_all.append(boxes)
        scores = torch.cat(scores_all, dim=1)
        boxes = torch.cat(boxes_all, dim=1)
        n = min(self.post_nms_top_n, int(scores.shape[1]))
        top_scores, idx = scores.topk(n, dim=1)
        proposals = take_rows(boxes, idx)
        return proposals, top_scores > -0.5

    def forward(self, images: Tensor, image_sizes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """uint8 [B, 3, H, W] RGB + int32 [B, 2] -> (boxes, scores, classes, masks, num_detections)."""
        x = (images.to(torch.float32) / 255.0 - self.mean) / self.std
        sizes = image_sizes.to(torch.float32)
        rows, cols = sizes[:, 0:1], sizes[:, 1:2]  # [B, 1]: broadcast over proposals
        feats = self.backbone(x)
        proposals, prop_valid = self._proposals(list(feats.values()), rows, cols)
        b, p = int(proposals.shape[0]), int(proposals.shape[1])

        canvas = self.box_pool.canvas(feats)
        pooled = self.box_pool(canvas, proposals)
        class_logits, box_regression = self.roi_heads.box_predictor(self.roi_heads.box_head(pooled))
        n_cls = int(class_logits.shape[-1])
        boxes = self.roi_heads.box_coder.decode_single(box_regression, proposals.reshape(-1, 4))
        boxes = self._clip(boxes.reshape(b, p, n_cls, 4), rows[:, :, None], cols[:, :, None])[:, :, self.labels]
        scores = F.softmax(class_logits, -1).reshape(b, p, n_cls)[:, :, self.labels]  # [B, P, L]
        n_lab = int(self.labels.shape[0])
        labels = self.labels.view(1, 1, -1).expand(b, p, n_lab)
        valid = (scores > self.score_floor) & prop_valid[:, :, None] & self._big_enough(boxes, self.det_min_size)
        # Thresholding removes entries in torchvision; here they score -1 and sort last.
        flat_scores = torch.where(valid, scores, torch.full_like(scores, -1.0)).reshape(b, -1)
        m = min(self.det_candidates, int(flat_scores.shape[1]))
        cand_scores, idx = flat_scores.topk(m, dim=1)
        cand_boxes = take_rows(boxes.reshape(b, -1, 4), idx)
        cand_labels = take_rows(labels.reshape(b, -1), idx)
        cand_valid = cand_scores > -0.5
        same_class = cand_labels[:, :, None] == cand_labels[:, None, :]
        keep = matrix_nms_keep(cand_boxes, cand_valid, self.det_nms_thresh, self.nms_iters, same_class)

        k = min(self.top_k, m)
        final_scores, idx = torch.where(keep, cand_scores, torch.full_like(cand_scores, -1.0)).topk(k, dim=1)
        final_valid = final_scores > -0.5
        if self.kept is not None:  # static: set at construction
            # Drop the other classes from the top-K and move the kept rows to the front.
            wanted = (take_rows(cand_labels, idx)[:, :, None] == self.kept.view(1, 1, -1)).any(-1)
            final_scores, order = torch.where(final_valid & wanted, final_scores, torch.full_like(final_scores, -1.0)).topk(k, dim=1)
            idx = take_rows(idx[:, :, None], order)[:, :, 0]
            final_valid = final_scores > -0.5
        valid_f = final_valid.to(torch.float32)
        # Padding rows (fewer than K detections) are zeroed instead of being cut off.
        det_boxes = take_rows(cand_boxes, idx) * valid_f[:, :, None]
        det_labels = take_rows(cand_labels, idx) * final_valid.to(torch.int64)
        det_scores = final_scores * valid_f

        if self.mask_pool.names != self.box_pool.names:
            canvas = self.mask_pool.canvas(feats)
        mask_feats = self.roi_heads.mask_head(self.mask_pool(canvas, det_boxes))
        mask_logits = self.roi_heads.mask_predictor(mask_feats)  # [B*K, C, M, M]
        msz = int(mask_logits.shape[-1])
        n_ch = int(mask_logits.shape[1])
        # The mask of each detection's own class: a flat Gather (static) instead of per-label indexing.
        flat_idx = torch.arange(b * k, device=det_labels.device) * n_ch + det_labels.reshape(-1)
        masks = torch.sigmoid(mask_logits.reshape(b * k * n_ch, msz, msz)[flat_idx]).reshape(b, k, msz, msz)
        masks = masks * valid_f[:, :, None, None]
        if k < self.top_k:  # static: only when fewer candidates than K exist at this size
            pad = self.top_k - k
            det_boxes = torch.cat([det_boxes, det_boxes.new_zeros(b, pad, 4)], 1)
            det_scores = torch.cat([det_scores, det_scores.new_zeros(b, pad)], 1)
            det_labels = torch.cat([det_labels, det_labels.new_zeros(b, pad)], 1)
            masks = torch.cat([masks, masks.new_zeros(b, pad, msz, msz)], 1)
        num = final_valid.to(torch.int32).sum(dim=1)
        return det_boxes, det_scores, det_labels.to(torch.int32), masks, num
