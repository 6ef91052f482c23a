"""``cpt train`` without the CLI: a dataset folder and options in, a run folder out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clothparse.config import BACKBONES, ModelConfig, TrainConfig
from clothparse.errors import ConfigError
from clothparse.train.data import TASK_FILES, open_datasets
from clothparse.train.distributed import cleanup_distributed
from clothparse.train.loop import FitResult, fit


@dataclass
class TrainOptions:
    """What the user chose; ``None`` means the backbone's default (``ModelConfig``/``TrainConfig``)."""

    data: Path
    out: Path
    task: str = "clothing"
    backbone: str = "resnet101"
    init: str | None = None
    weights: Path | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    val_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    min_size: int | None = None
    max_size: int | None = None
    time_limit: float | None = None
    resume: bool = False
    device: str = "auto"
    workers: int | None = None
    seed: int | None = None
    threads: int | None = None
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def configs(opts: TrainOptions) -> tuple[ModelConfig, TrainConfig]:
    """Model and train configs: the backbone's defaults, then the options the user gave."""
    if opts.backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {opts.backbone!r}; choose from {', '.join(BACKBONES)}")
    if opts.task not in TASK_FILES:
        raise ConfigError(f"unknown task {opts.task!r}; choose clothing or body")
    small = opts.backbone == "small"
    mc = ModelConfig.small() if small else ModelConfig(backbone=opts.backbone)
    tc = TrainConfig.small() if small else TrainConfig()
    if opts.init is not None:
        tc.init = opts.init
    # Training from scratch needs trainable BatchNorm everywhere (frozen random BN is a no-op).
    if tc.init == "none" and not small:
        mc.frozen_bn, mc.trainable_layers = False, 5
    for name, target, attr in (
        ("min_size", mc, "min_size"), ("max_size", mc, "max_size"), ("epochs", tc, "epochs"),
        ("steps_per_epoch", tc, "steps_per_epoch"), ("val_steps", tc, "validation_steps"),
        ("batch_size", tc, "batch_size"), ("lr", tc, "lr"), ("time_limit", tc, "time_limit_min"),
        ("workers", tc, "num_workers"), ("seed", tc, "seed"), ("threads", tc, "num_threads"),
    ):
        value = getattr(opts, name)
        if value is not None:
            setattr(target, attr, value)
    if opts.min_size is not None and opts.max_size is None:
        mc.max_size = max(mc.max_size, mc.min_size)
    return mc.validate(), tc.validate()


def train_folder(opts: TrainOptions) -> FitResult:
    """Train on ``opts.data`` into ``opts.out`` (see ``clothparse.train.loop.fit``)."""
    t0 = time.monotonic()
    mc, tc = configs(opts)
    out = Path(opts.out)
    if not opts.resume and (out / "last.safetensors").exists():
        raise ConfigError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if opts.resume and not (out / "last.json").exists():
        raise ConfigError(f"{out}/last.json not found: nothing to resume")
    if out.exists() and not out.is_dir():
        raise ConfigError("--out exists and is not a folder", out)
    train_ds, val_ds = open_datasets(opts.data, opts.task, tc.hflip_prob, tc.seed)
    mc.class_names = list(train_ds.class_names)
    extra = {"task": opts.task, "data": str(Path(opts.data).resolve()), "init": tc.init,
             "train_images": len(train_ds), "val_images": len(val_ds), **opts.extra}
    try:
        return fit(mc, tc, train_ds, val_ds, out, device=opts.device, weights_path=opts.weights,
                   resume=opts.resume, quiet=opts.quiet, t0=t0, extra_meta=extra)
    finally:
        cleanup_distributed()
