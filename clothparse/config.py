"""Model and training configuration, with the seed's hyperparameters as defaults.

The seed (Matterport Mask R-CNN on ModaNet) used: ResNet-101, strides 4-64, image
min/max dim 800/1024, detection min confidence 0.9, detection NMS 0.3, RPN NMS 0.7,
FPN classifier FC 1024, lr 0.001, weight decay 1e-4, batch 4, 100 steps per epoch,
50 validation steps, 150 epochs (150 x 100 x 4 = 60,000 images seen). ``ModelConfig``
and ``TrainConfig`` carry exactly these defaults; everything serialises to JSON
(checkpoint metadata) and back. Where training deliberately departs from the seed's
(warm-up, flips, scale jitter, trainable stages, gradient clipping, AMP), README.md,
"Training", lists each change and its reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from clothparse.errors import ConfigError
from clothparse.taxonomy import MODANET_CLASSES

Backbone = Literal["resnet101", "resnet50", "small"]
Init = Literal["none", "imagenet", "coco"]

BACKBONES: tuple[str, ...] = ("resnet101", "resnet50", "small")
INITS: tuple[str, ...] = ("none", "imagenet", "coco")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a Mask R-CNN exactly (stored in checkpoint metadata)."""

    backbone: str = "resnet101"
    #: Class names without background, in label order (label i + 1 = class_names[i]).
    class_names: list[str] = field(default_factory=lambda: list(MODANET_CLASSES))
    min_size: int = 800
    max_size: int = 1024
    #: Detections below this score are dropped (seed DETECTION_MIN_CONFIDENCE).
    score_thresh: float = 0.9
    #: Class-wise NMS IoU threshold for final detections (seed DETECTION_NMS_THRESHOLD).
    nms_thresh: float = 0.3
    rpn_nms_thresh: float = 0.7
    #: Width of the two box-head FC layers (seed FPN_CLASSIF_FC_LAYERS_SIZE).
    fc_size: int = 1024
    detections_per_img: int = 100
    #: FPN channels; 256 for ResNets, smaller for the "small" backbone.
    fpn_channels: int = 256
    #: RGB normalisation applied inside the model to images in [0, 1].
    image_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    image_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    #: Anchor size (pixels, at the network input scale) of each FPN level P2-P6.
    anchor_sizes: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    #: Anchor aspect ratios (height / width), shared by every level.
    aspect_ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    #: RPN proposals kept before / after NMS, per image (torchvision's defaults).
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    #: RoIs sampled per image to train the box head (the mask head sees the positive quarter).
    box_batch_size_per_image: int = 512
    #: Mask head: ``mask_head_layers`` 3x3 convs of ``mask_head_channels`` on 14x14 RoIs.
    mask_head_channels: int = 256
    mask_head_layers: int = 4
    #: Frozen BatchNorm (pretrained ResNets) or trainable BatchNorm (training from scratch).
    frozen_bn: bool = True
    #: ResNet stages (of 5) left trainable; 5 = all (used when training from scratch).
    trainable_layers: int = 3
    #: Channels of the "small" trunk: stem, then the stride-4/8/16/32 stages.
    small_widths: list[int] = field(default_factory=lambda: [24, 32, 64, 128, 192])

    @property
    def num_classes(self) -> int:
        """Number of classes including background."""
        return len(self.class_names) + 1

    def validate(self) -> ModelConfig:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose from {', '.join(BACKBONES)}")
        if not self.class_names:
            raise ConfigError("class_names must not be empty")
        if not 0 < self.min_size <= self.max_size:
            raise ConfigError(f"need 0 < min_size <= max_size, got {self.min_size}/{self.max_size}")
        if len(self.anchor_sizes) != 5 or any(a <= 0 for a in self.anchor_sizes):
            raise ConfigError(f"anchor_sizes must be five positive ints (P2-P6), got {self.anchor_sizes}")
        if not self.aspect_ratios or any(r <= 0 for r in self.aspect_ratios):
            raise ConfigError(f"aspect_ratios must be positive, got {self.aspect_ratios}")
        if len(self.small_widths) != 5 or any(w <= 0 for w in self.small_widths):
            raise ConfigError(f"small_widths must be five positive ints, got {self.small_widths}")
        if not 0 <= self.trainable_layers <= 5:
            raise ConfigError(f"trainable_layers must be in 0..5, got {self.trainable_layers}")
        for name in ("score_thresh", "nms_thresh", "rpn_nms_thresh"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        return self

    @classmethod
    def small(cls, **overrides: Any) -> ModelConfig:
        """A configuration that trains on a CPU in minutes (small backbone, small images)."""
        # For 256 px synthetic images on a busy 2-core CPU: no upscaling, anchors half the
        # ResNet ones (sunglasses/belts are 10-20 px), few RoIs (RoIAlign backward is a
        # fifth of a CPU step), a light mask head, and trainable BatchNorm because there
        # are no pretrained weights for this trunk.
        base: dict[str, Any] = dict(
            backbone="small", min_size=256, max_size=256, fc_size=256, fpn_channels=64,
            score_thresh=0.05, detections_per_img=50,
            anchor_sizes=[16, 32, 64, 128, 256],
            rpn_pre_nms_top_n_train=600, rpn_pre_nms_top_n_test=300,
            rpn_post_nms_top_n_train=200, rpn_post_nms_top_n_test=150,
            box_batch_size_per_image=64, mask_head_channels=64, mask_head_layers=4,
            frozen_bn=False, trainable_layers=5,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def body(cls, **overrides: Any) -> ModelConfig:
        """torchvision's COCO Mask R-CNN R50-FPN exactly as published (the body model).

        ``class_names`` are set by ``clothparse.model.builder.body_config`` from the
        weights' metadata (90 COCO names, "person" = label 1).
        """
        base: dict[str, Any] = dict(
            backbone="resnet50", min_size=800, max_size=1333, score_thresh=0.05, nms_thresh=0.5,
        )
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        # Checkpoints written before ``strides`` was removed (it was validated but never
        # used: torchvision's FPN fixes the strides) still carry it; drop it so they load.
        d = {k: v for k, v in d.items() if k not in _REMOVED_MODEL_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d).validate()


#: ``ModelConfig`` fields that old checkpoint metadata may hold and ``from_dict`` ignores.
_REMOVED_MODEL_KEYS = frozenset({"strides"})


@dataclass
class TrainConfig:
    """Optimiser and schedule settings (seed defaults).

    The schedule in images seen is ``epochs * steps_per_epoch * batch_size`` per process
    (times the number of processes under DDP): 150 x 100 x 4 = 60,000 by default, the
    seed's own schedule.
    """

    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 4
    steps_per_epoch: int = 100
    validation_steps: int = 50
    #: The seed trained 150 epochs (``model.train(..., epochs=150, layers="heads")``).
    epochs: int = 150
    init: str = "coco"
    #: Horizontal flip probability and scale jitter range (fraction of min_size).
    hflip_prob: float = 0.5
    scale_jitter: tuple[float, float] = (0.8, 1.2)
    amp: bool = True
    seed: int = 0
    num_workers: int = 2
    #: Linear warm-up over this many steps (Mask R-CNN diverges at full lr from scratch).
    warmup_steps: int = 100
    grad_clip: float = 10.0
    #: After this fraction of the run (steps, or wall time under a time limit) the lr
    #: drops 10x; 0 keeps it constant after warm-up (the seed's schedule).
    lr_drop_at: float = 0.0
    #: Stop cleanly (validate, checkpoint) after this many minutes; 0 = no limit.
    time_limit_min: float = 0.0
    #: Torch intra-op CPU threads per process; 0 = torch's default. On a busy CPU one
    #: thread is several times faster than two (OpenMP threads wait on each other).
    num_threads: int = 0

    @classmethod
    def small(cls, **overrides: Any) -> TrainConfig:
        """Settings for the small backbone trained from scratch on a CPU under ``--time-limit``.

        lr 0.03 (30x the seed's: from scratch, BatchNorm, short budget), 10x drop after 80%
        of the run, one thread per process.
        """
        base: dict[str, Any] = dict(
            lr=0.03, batch_size=4, steps_per_epoch=50, validation_steps=5, epochs=1000,
            init="none", warmup_steps=50, num_workers=0, lr_drop_at=0.8, scale_jitter=(0.8, 1.2),
            num_threads=1,
        )
        base.update(overrides)
        return cls(**base)

    def validate(self) -> TrainConfig:
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}; choose from {', '.join(INITS)}")
        if self.lr <= 0 or self.batch_size < 1 or self.steps_per_epoch < 1 or self.epochs < 1:
            raise ConfigError("lr, batch_size, steps_per_epoch and epochs must be positive")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["scale_jitter"] = list(self.scale_jitter)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        if "scale_jitter" in d:
            d["scale_jitter"] = tuple(d["scale_jitter"])
        return cls(**d).validate()
