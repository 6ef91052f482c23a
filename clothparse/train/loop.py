"""The training loop: SGD with the seed's settings, linear warm-up, AMP on CUDA, DDP.

An epoch is ``steps_per_epoch`` batches (the seed's Keras convention), followed by a
validation of ``validation_steps`` batches that reports the same loss components,
computed in train mode with BatchNorm frozen so validation never updates statistics.
After each epoch ``RUN/last.*`` (with resume state) is written, and ``RUN/best.*``
when the validation loss improved. ``time_limit_min`` stops training early enough to
validate and checkpoint inside the limit (measured from ``t0``, the command's start).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from clothparse.config import ModelConfig, TrainConfig
from clothparse.device import resolve_device
from clothparse.errors import CptError, ModelError
from clothparse.model.builder import build_model
from clothparse.model.checkpoint import (
    load_optimizer,
    read_meta,
    read_tensors,
    save_checkpoint,
    save_optimizer,
)
from clothparse.train.data import Batch, forever, make_loader
from clothparse.train.distributed import DistInfo, agree_any, init_distributed, mean_over_ranks
from clothparse.train.log import RunLog
from clothparse.train.progress import ProgressBar


@dataclass
class FitResult:
    run_dir: Path
    steps: int
    epochs: int
    best_val_loss: float | None
    last_metrics: dict[str, Any]
    stopped_by_time_limit: bool
    wall_s: float
    model: nn.Module
    is_main: bool = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may draw from the legacy global RNG
    torch.manual_seed(seed)


@contextlib.contextmanager
def loss_mode(model: nn.Module, cfg: ModelConfig) -> Iterator[None]:
    """Train mode (so the model returns losses) with BatchNorm frozen and the fixed input size."""
    was = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    tr: Any = model.transform
    sizes = (tr.min_size, tr.max_size)
    tr.min_size, tr.max_size = (cfg.min_size,), cfg.max_size
    try:
        yield
    finally:
        tr.min_size, tr.max_size = sizes
        model.train(was)


def set_scale_jitter(model: nn.Module, cfg: ModelConfig, jitter: tuple[float, float]) -> None:
    """Scale jitter through the model's own resize: a random short side per training batch."""
    lo, hi = jitter
    sizes = sorted({max(32, round(cfg.min_size * (lo + (hi - lo) * i / 4))) for i in range(5)})
    tr: Any = model.transform
    tr.min_size = tuple(sizes)
    tr.max_size = max(cfg.max_size, math.ceil(cfg.max_size * hi))


def lr_at(tc: TrainConfig, step: int, drop: bool) -> float:
    warm = min(1.0, (step + 1) / tc.warmup_steps) if tc.warmup_steps > 0 else 1.0
    return tc.lr * warm * (0.1 if drop else 1.0)


def _to(batch: Batch, device: torch.device) -> Batch:
    images, targets = batch
    return (
        [im.to(device, non_blocking=True) for im in images],
        [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets],
    )


@torch.no_grad()
def validate(model: nn.Module, cfg: ModelConfig, loader: Any, steps: int, device: torch.device) -> dict[str, float]:
    """Mean loss components over ``steps`` batches (fewer if the split is smaller)."""
    sums: dict[str, float] = defaultdict(float)
    n = 0
    with loss_mode(model, cfg):
        for i, batch in enumerate(loader):
            if i >= steps:
                break
            images, targets = _to(batch, device)
            losses = model(images, targets)
            for k, v in losses.items():
                sums[k] += float(v)
            sums["loss"] += float(sum(losses.values()))
            n += 1
    return {f"val_{k}": v / max(n, 1) for k, v in sums.items()}


def _resume_state(run_dir: Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    doc = read_meta(run_dir / "last.json")
    if "resume" not in doc:
        raise ModelError("checkpoint has no resume state", run_dir / "last.json")
    return ModelConfig.from_dict(doc["model_config"]), read_tensors(run_dir / "last.safetensors"), doc


def _initial_model(
    run_dir: Path, model_cfg: ModelConfig, tc: TrainConfig, resume: bool, weights_path: str | Path | None
) -> tuple[nn.Module, ModelConfig, dict[str, Any], int, int, float]:
    """(model, its config, the resume document, start step, start epoch, best validation loss):
    ``RUN/last.*`` when resuming, else a model built from ``model_cfg`` with ``tc.init``."""
    if not resume:
        return build_model(model_cfg, init=tc.init, weights_path=weights_path), model_cfg, {}, 0, 0, math.inf
    model_cfg, state, doc = _resume_state(run_dir)
    model = build_model(model_cfg, init="none")
    model.load_state_dict(state, strict=True)
    best = float(doc["resume"].get("best_val_loss") or math.inf)
    return model, model_cfg, doc, int(doc["resume"]["step"]), int(doc["resume"]["epoch"]), best


def _optimizer_step(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    params: list[nn.Parameter],
    batch: Batch,
    tc: TrainConfig,
    use_amp: bool,
    info: DistInfo,
    dev: torch.device,
) -> dict[str, float] | None:
    """One SGD step on ``batch``: the loss components and their sum ``loss`` as floats, or
    None (and no update) when the loss is not finite on some rank."""
    images, targets = _to(batch, dev)
    with torch.autocast("cuda", enabled=use_amp):
        losses = net(images, targets)
    loss = sum(losses.values())
    assert isinstance(loss, torch.Tensor)
    opt.zero_grad(set_to_none=True)
    if agree_any(not bool(torch.isfinite(loss)), info, dev):
        return None
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
    scaler.step(opt)
    scaler.update()
    out = {k: float(v.detach()) for k, v in losses.items()}
    out["loss"] = float(loss.detach())
    return out


def _save_epoch(
    run_dir: Path,
    model: nn.Module,
    model_cfg: ModelConfig,
    opt: torch.optim.Optimizer,
    tc: TrainConfig,
    info: DistInfo,
    metrics: dict[str, Any],
    best: float,
    improved: bool,
    extra_meta: dict[str, Any] | None,
) -> None:
    """Write ``RUN/last.*`` with the resume state (optimizer included), and ``RUN/best.*``
    when the validation loss ``improved``."""
    epoch, step = metrics["epoch"], metrics["step"]
    meta = {
        "epoch": epoch, "step": step, "metrics": metrics, "train_config": tc.to_dict(),
        "world_size": info.world_size, **(extra_meta or {}),
    }
    opt_info = save_optimizer(run_dir / "last.optim.safetensors", opt)
    resume_block = {"epoch": epoch, "step": step, "best_val_loss": best, "optimizer": opt_info}
    save_checkpoint(run_dir / "last", model, model_cfg, {**meta, "resume": resume_block})
    if improved:
        save_checkpoint(run_dir / "best", model, model_cfg, meta)


@dataclass
class _LoopState:
    """What the training loop carries from step to step: the position (``step``, ``epoch``),
    whether the time limit stopped it, the run of non-finite steps, and the durations the
    time limit reserves for (last validation ``val_s``, -1 before the first; checkpointing
    ``ckpt_s``; a moving average of one step ``step_s``)."""

    step: int
    epoch: int
    stopped: bool = False
    bad_steps: int = 0
    val_s: float = -1.0
    ckpt_s: float = 2.0
    step_s: float = 0.0


def _setup_device(device: str, tc: TrainConfig) -> tuple[torch.device, DistInfo]:
    """The training device (this rank's GPU under DDP) and the process group; validates ``tc``
    and sets torch's CPU thread count from it."""
    dev = resolve_device(device)
    info = init_distributed(dev)
    if dev.type == "cuda" and info.enabled:
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    tc.validate()
    if tc.num_threads > 0 and dev.type == "cpu":
        torch.set_num_threads(tc.num_threads)
    return dev, info


def _make_optimizer(
    params: list[nn.Parameter], tc: TrainConfig, resume_from: Path | None, doc: dict[str, Any]
) -> torch.optim.SGD:
    """SGD with the seed's settings; its state restored from ``resume_from`` when given."""
    opt = torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    if resume_from is not None:
        load_optimizer(resume_from, opt, doc["resume"]["optimizer"])
    return opt


def _train_epoch(
    st: _LoopState,
    tc: TrainConfig,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    params: list[nn.Parameter],
    batches: Iterator[Batch],
    bar: ProgressBar,
    t0: float,
    limit_s: float,
    use_amp: bool,
    info: DistInfo,
    dev: torch.device,
) -> tuple[dict[str, float], int, bool]:
    """Up to ``tc.steps_per_epoch`` steps, stopping early (``st.stopped``) when the next step
    would leave too little time to validate and checkpoint inside the limit.
    Returns (summed loss components, finite steps, whether the lr drop applied)."""
    total_steps = tc.epochs * tc.steps_per_epoch
    sums: dict[str, float] = defaultdict(float)
    n = 0
    drop = False
    for _ in range(tc.steps_per_epoch):
        elapsed = time.monotonic() - t0
        drop = tc.lr_drop_at > 0 and max(st.step / total_steps, elapsed / limit_s if limit_s else 0.0) >= tc.lr_drop_at
        reserve = (st.val_s if st.val_s >= 0 else tc.validation_steps * st.step_s * 0.5 + 5.0) + st.ckpt_s
        if agree_any(limit_s > 0 and elapsed + reserve + st.step_s >= limit_s, info, dev):
            st.stopped = True
            break
        lr = lr_at(tc, st.step, agree_any(drop, info, dev))
        for g in opt.param_groups:
            g["lr"] = lr
        ts = time.monotonic()
        step_losses = _optimizer_step(net, opt, scaler, params, next(batches), tc, use_amp, info, dev)
        if step_losses is not None:
            st.bad_steps = 0
            for k, v in step_losses.items():
                sums[k] += v
            n += 1
        else:
            st.bad_steps += 1
            if st.bad_steps >= 20:
                raise CptError(f"training diverged: loss not finite for 20 steps at step {st.step}; lower --lr")
        st.step += 1
        dt = time.monotonic() - ts
        st.step_s = dt if st.step_s == 0.0 else 0.9 * st.step_s + 0.1 * dt
        bar.update(st.step, st.epoch + 1, {k: v / max(n, 1) for k, v in sums.items()}, lr)
    return sums, n, drop


def fit(
    model_cfg: ModelConfig,
    tc: TrainConfig,
    train_ds: Dataset[Any],
    val_ds: Dataset[Any],
    run_dir: str | Path,
    *,
    device: str = "auto",
    weights_path: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    t0: float | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> FitResult:
    """Train a Mask R-CNN; see the module docstring. Returns the trained (unwrapped) model."""
    t0 = time.monotonic() if t0 is None else t0
    run_dir = Path(run_dir)
    dev, info = _setup_device(device, tc)
    seed_everything(tc.seed)  # same model init on every rank
    model, model_cfg, doc, start_step, start_epoch, best = _initial_model(
        run_dir, model_cfg, tc, resume, weights_path
    )
    seed_everything(tc.seed + 1000 * info.rank + start_step)  # different augmentation per rank
    model.to(dev)
    set_scale_jitter(model, model_cfg, tc.scale_jitter)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(params, tc, run_dir / "last.optim.safetensors" if resume else None, doc)
    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    use_amp = tc.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    train_loader, sampler = make_loader(train_ds, tc.batch_size, tc.num_workers, info, tc.seed, shuffle=True)
    val_loader, _ = make_loader(val_ds, tc.batch_size, tc.num_workers, info, tc.seed, shuffle=False)
    batches = forever(train_loader, sampler, start_pass=start_step)
    log = RunLog(run_dir, enabled=info.is_main, resume=resume)
    limit_s = tc.time_limit_min * 60.0
    st = _LoopState(step=start_step, epoch=start_epoch)
    metrics: dict[str, Any] = {}
    bar = ProgressBar(tc.epochs * tc.steps_per_epoch, enabled=info.is_main and not quiet, completed=start_step)
    with bar:
        while st.epoch < tc.epochs and not st.stopped:
            t_epoch = time.monotonic()
            sums, n, drop = _train_epoch(st, tc, net, opt, scaler, params, batches, bar, t0, limit_s, use_amp, info, dev)
            if n == 0 and st.stopped and st.epoch > start_epoch:
                break  # the limit fell exactly on an epoch boundary: the last epoch is saved
            tv = time.monotonic()
            train_m = mean_over_ranks({f"train_{k}": v / max(n, 1) for k, v in sums.items()}, info, dev)
            val_m = mean_over_ranks(validate(model, model_cfg, val_loader, tc.validation_steps, dev), info, dev)
            st.val_s = time.monotonic() - tv
            st.epoch += 1
            step = st.step
            metrics = {
                "epoch": st.epoch, "step": step, "lr": lr_at(tc, max(step - 1, 0), drop), **train_m, **val_m,
                "epoch_s": time.monotonic() - t_epoch, "val_s": st.val_s, "wall_s": time.monotonic() - t0,
                "images_seen": step * tc.batch_size * info.world_size, "partial": st.stopped,
            }
            improved = val_m.get("val_loss", math.inf) < best
            best = min(best, val_m.get("val_loss", math.inf))
            if info.is_main:
                tc_ = time.monotonic()
                _save_epoch(run_dir, model, model_cfg, opt, tc, info, metrics, best, improved, extra_meta)
                log.append(metrics)
                st.ckpt_s = time.monotonic() - tc_ + 0.5
                bar.epoch_done(metrics, improved)
    return FitResult(
        run_dir=run_dir, steps=st.step, epochs=st.epoch, best_val_loss=None if best == math.inf else best,
        last_metrics=metrics, stopped_by_time_limit=st.stopped, wall_s=time.monotonic() - t0, model=model,
        is_main=info.is_main,
    )
