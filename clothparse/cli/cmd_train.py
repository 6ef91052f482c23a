"""`cpt train`: train Mask R-CNN on a dataset folder into a run folder.

Under ``torchrun`` (``torchrun --nproc_per_node N -m clothparse.train ...``) each process
trains on its shard (DDP); only rank 0 writes the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console

from clothparse.cli.errors import handle_errors
from clothparse.cli.options import DataDir, Device, OutDir, Quiet, Workers

Task = Annotated[str, typer.Option("--task", help="clothing (train.json/val.json) or body (body_train.json/body_val.json, class 'person').")]
BackboneOpt = Annotated[str, typer.Option("--backbone", help="resnet101 (the seed's), resnet50, or small (CPU-friendly, trains from scratch).")]
InitOpt = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="none, imagenet or coco (default: coco for ResNets, none for small). Weights come from the torch hub "
        "cache or --weights; never downloaded. coco + resnet101 needs resnet101-63fe2227.pth and "
        "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth in the cache (--weights replaces the second).",
    ),
]
WeightsOpt = Annotated[Path | None, typer.Option("--weights", help="Pretrained weights file (.pth/.safetensors) instead of the hub cache.")]
Epochs = Annotated[
    int | None,
    typer.Option(
        "--epochs", min=1,
        help="Epochs (default: 150, the seed's: 150 x 100 steps x batch 4 = 60,000 images seen per process; "
        "small: 1000 x 50 x 4 = 200,000, normally cut by --time-limit).",
    ),
]
Steps = Annotated[int | None, typer.Option("--steps-per-epoch", min=1, help="Batches per epoch (seed: 100; images seen = epochs x steps x batch).")]
ValSteps = Annotated[int | None, typer.Option("--val-steps", min=1, help="Validation batches after each epoch (seed: 50).")]
Batch = Annotated[int | None, typer.Option("--batch-size", min=1, help="Images per batch per process (seed: 4).")]
Lr = Annotated[float | None, typer.Option("--lr", min=0.0, help="SGD learning rate (seed: 0.001; small: 0.03).")]
MinSize = Annotated[int | None, typer.Option("--min-size", min=32, help="Short side the model resizes images to (seed: 800).")]
MaxSize = Annotated[int | None, typer.Option("--max-size", min=32, help="Cap on the long side (seed: 1024).")]
TimeLimit = Annotated[float | None, typer.Option("--time-limit", min=0.0, help="Stop cleanly (validate, checkpoint) within this many minutes of wall time.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")]
# The shared --workers option, made optional (None = the backbone's default).
WorkersOpt = Annotated[int | None, get_args(Workers)[1]]
Threads = Annotated[int | None, typer.Option("--threads", min=0, help="CPU threads per process (0 = torch default; small: 1, faster on a busy CPU).")]


def train(
    data: DataDir,
    out: OutDir,
    task: Task = "clothing",
    backbone: BackboneOpt = "resnet101",
    init: InitOpt = None,
    weights: WeightsOpt = None,
    epochs: Epochs = None,
    steps_per_epoch: Steps = None,
    val_steps: ValSteps = None,
    batch_size: Batch = None,
    lr: Lr = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    time_limit: TimeLimit = None,
    resume: Resume = False,
    device: Device = "auto",
    workers: WorkersOpt = None,
    seed: SeedOpt = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train Mask R-CNN (SGD, the seed's settings) and write RUN/{best,last}.safetensors+.json and logs.

    The default schedule is the seed's: 150 epochs x 100 steps x batch 4 = 60,000 images
    seen (per process; torchrun with N processes sees N times as many). README.md,
    "Training", lists what differs from the seed's training and why.
    """
    with handle_errors():
        from clothparse.model.weights import flag_hint
        from clothparse.train.run import TrainOptions, train_folder

        with flag_hint("--weights"):
            res = train_folder(TrainOptions(
                data=data, out=out, task=task, backbone=backbone, init=init, weights=weights, epochs=epochs,
                steps_per_epoch=steps_per_epoch, val_steps=val_steps, batch_size=batch_size, lr=lr,
                min_size=min_size, max_size=max_size, time_limit=time_limit, resume=resume, device=device,
                workers=workers, seed=seed, threads=threads, quiet=quiet,
            ))
        if not res.is_main:
            return
        m = res.last_metrics
        why = "time limit" if res.stopped_by_time_limit else "all epochs"
        Console(stderr=True).print(
            f"trained {res.steps} steps, {res.epochs} epochs in {res.wall_s / 60:.1f} min (stopped: {why}); "
            f"last val loss {m.get('val_loss', float('nan')):.4f}, best {res.best_val_loss or float('nan'):.4f}; "
            f"checkpoints in {res.run_dir}"
        )
