"""Build torchvision Mask R-CNN models from a ``ModelConfig``.

Backbones:
- ``resnet101`` (the seed's) and ``resnet50``: ResNet-FPN from torchvision; FPN levels
  P2-P5 plus a max-pooled P6, i.e. five feature maps at strides 4, 8, 16, 32, 64.
- ``small``: a narrow ResNet-18-like trunk (BasicBlocks, trainable BatchNorm, widths
  ``cfg.small_widths``) under the same five-level FPN with ``cfg.fpn_channels``
  channels. It has no pretrained weights; it is meant to train from scratch on a CPU
  in minutes on 256-320 px images.

Model input (torchvision convention): a list of float32 ``[3, H, W]`` RGB tensors in
[0, 1]; resizing to ``min_size``/``max_size`` and normalisation by
``image_mean``/``image_std`` happen inside the model. Everything the build reads is
in the config, so a checkpoint's ``model_config`` rebuilds the exact architecture.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import misc as misc_nn_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from clothparse.config import ModelConfig

#: Names of the trunk stages that feed the FPN (strides 4, 8, 16, 32).
_STAGES = ("layer1", "layer2", "layer3", "layer4")


class _BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs + identity/projection shortcut), BatchNorm."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.down(x))


class SmallTrunk(nn.Module):
    """Narrow ResNet-18-like trunk: stem to stride 4, then 4 stages of 2 BasicBlocks.

    Input float32 ``[B, 3, H, W]`` (normalised); ``layer1..layer4`` produce strides
    4, 8, 16, 32 with ``widths[1..4]`` channels.
    """

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        w0 = widths[0]
        # Two stride-2 convs instead of conv7 + maxpool: cheaper and keeps small-object detail.
        self.stem = nn.Sequential(
            nn.Conv2d(3, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True),
            nn.Conv2d(w0, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True),
        )
        cin = w0
        for i, name in enumerate(_STAGES):
            cout = widths[i + 1]
            stride = 1 if i == 0 else 2
            setattr(self, name, nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)))
            cin = cout
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in _STAGES:
            x = getattr(self, name)(x)
        return x


def _backbone(cfg: ModelConfig) -> BackboneWithFPN:
    if cfg.backbone == "small":
        return BackboneWithFPN(
            SmallTrunk(cfg.small_widths),
            return_layers={name: str(i) for i, name in enumerate(_STAGES)},
            in_channels_list=list(cfg.small_widths[1:]),
            out_channels=cfg.fpn_channels,
            extra_blocks=LastLevelMaxPool(),
        )
    norm = misc_nn_ops.FrozenBatchNorm2d if cfg.frozen_bn else nn.BatchNorm2d
    bb = resnet_fpn_backbone(
        backbone_name=cfg.backbone,
        weights=None,  # pretrained weights are loaded by clothparse.model.weights, offline-safe
        norm_layer=norm,
        trainable_layers=cfg.trainable_layers,
        extra_blocks=LastLevelMaxPool(),
    )
    if cfg.fpn_channels != bb.out_channels:
        raise ValueError(f"ResNet-FPN backbones have 256 FPN channels, config says {cfg.fpn_channels}")
    return bb


def build_model(cfg: ModelConfig, init: str = "none", weights_path: str | Path | None = None) -> MaskRCNN:
    """Build the Mask R-CNN ``cfg`` describes and initialise it (``none``/``imagenet``/``coco``).

    ``weights_path`` replaces the hub-cache lookup of the main pretrained file (see
    ``clothparse.model.weights``). Returns the model in train mode on the CPU.
    Raises ``ConfigError`` for an invalid config and ``WeightsUnavailableError`` when
    pretrained weights are needed but neither cached nor given.
    """
    cfg.validate()
    backbone = _backbone(cfg)
    ch = cfg.fpn_channels
    anchors = AnchorGenerator(
        sizes=tuple((s,) for s in cfg.anchor_sizes),
        aspect_ratios=(tuple(cfg.aspect_ratios),) * len(cfg.anchor_sizes),
    )
    mask_layers = [cfg.mask_head_channels] * cfg.mask_head_layers
    model = MaskRCNN(
        backbone,
        num_classes=None,  # the predictors below carry cfg.num_classes
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        image_mean=list(cfg.image_mean),
        image_std=list(cfg.image_std),
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_nms_thresh=cfg.rpn_nms_thresh,
        box_head=TwoMLPHead(ch * 7 * 7, cfg.fc_size),
        box_predictor=FastRCNNPredictor(cfg.fc_size, cfg.num_classes),
        box_score_thresh=cfg.score_thresh,
        box_nms_thresh=cfg.nms_thresh,
        box_detections_per_img=cfg.detections_per_img,
        box_batch_size_per_image=cfg.box_batch_size_per_image,
        mask_head=MaskRCNNHeads(ch, mask_layers, 1),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1] if mask_layers else ch, cfg.mask_head_channels, cfg.num_classes),
    )
    if init != "none":
        from clothparse.model.weights import init_model

        init_model(model, cfg, init, weights_path)
    return model


def body_config() -> ModelConfig:
    """Config of torchvision's COCO Mask R-CNN R50-FPN: 90 COCO names, "person" = label 1."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    names = list(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])[1:]  # drop __background__
    return ModelConfig.body(class_names=names)


def build_body_model(init: str = "coco", weights_path: str | Path | None = None) -> MaskRCNN:
    """The body (person) model: torchvision's COCO Mask R-CNN R50-FPN, in eval mode.

    ``init="coco"`` loads the published COCO weights from the torch hub cache or from
    ``weights_path``; ``init="none"`` leaves it random (tests only).
    """
    return build_model(body_config(), init=init, weights_path=weights_path).eval()
