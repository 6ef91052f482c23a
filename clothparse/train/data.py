"""Datasets and loaders for training: folder layout → train/val datasets → batch streams.

Batches are ``(images, targets)``: a list of float32 ``[3, H, W]`` RGB tensors in [0, 1]
and a list of target dicts (``boxes`` float32 ``[N, 4]`` xyxy pixels, ``labels`` int64
``[N]`` 1-based, ``masks`` uint8 ``[N, H, W]``), as ``clothparse.data.dataset`` yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from clothparse.data.dataset import InstanceDataset, collate_fn
from clothparse.data.transforms import TrainTransform
from clothparse.errors import DataError
from clothparse.train.distributed import DistInfo

#: Annotation files of each task, relative to the dataset folder: (train, val).
TASK_FILES = {"clothing": ("train.json", "val.json"), "body": ("body_train.json", "body_val.json")}

Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]


def open_datasets(
    data_dir: str | Path, task: str, hflip_prob: float, seed: int
) -> tuple[InstanceDataset, InstanceDataset]:
    """(train, val) datasets of ``task`` in ``data_dir``; ``DataError`` naming what is missing.

    The training set flips images; scale jitter is done by the model's own resize
    (``clothparse.train.loop``), because a jitter before it would simply be undone.
    """
    data_dir = Path(data_dir)
    if task not in TASK_FILES:
        raise DataError(f"unknown task {task!r}; choose clothing or body")
    if not data_dir.is_dir():
        raise DataError("dataset folder not found", data_dir)
    train_name, val_name = TASK_FILES[task]
    for name in (train_name, val_name):
        if not (data_dir / name).is_file():
            raise DataError(f"dataset folder has no {name} (make one with `cpt data synth` or `cpt data split`)", data_dir)
    images = data_dir / "images"
    train = InstanceDataset(data_dir / train_name, images, TrainTransform(hflip_prob, (1.0, 1.0), seed=seed))
    val = InstanceDataset(data_dir / val_name, images)
    for ds, name in ((train, train_name), (val, val_name)):
        if len(ds) == 0:
            raise DataError("no usable images (none with annotations found on disk)", data_dir / name)
    if list(train.class_names) != list(val.class_names):
        raise DataError(f"categories differ from {train_name}'s", data_dir / val_name)
    return train, val


def make_loader(
    ds: Dataset[Any], batch_size: int, workers: int, info: DistInfo, seed: int, shuffle: bool
) -> tuple[DataLoader[Any], DistributedSampler[Any] | None]:
    """A loader over ``ds`` (sharded across ranks under DDP) and its sampler if distributed."""
    dsampler: DistributedSampler[Any] | None = None
    sampler: Any
    if info.enabled:
        dsampler = DistributedSampler(ds, info.world_size, info.rank, shuffle=shuffle, seed=seed)
        sampler = dsampler
    elif shuffle:
        sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(seed))  # type: ignore[arg-type]
    else:
        sampler = None
    loader = DataLoader(
        ds, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate_fn,
        persistent_workers=workers > 0, drop_last=False,
    )
    return loader, dsampler


def forever(loader: DataLoader[Any], sampler: DistributedSampler[Any] | None, start_pass: int = 0) -> Iterator[Batch]:
    """Cycle through ``loader`` endlessly (an "epoch" here is steps_per_epoch batches, not a pass)."""
    n = start_pass
    while True:
        if sampler is not None:
            sampler.set_epoch(n)
        yield from loader
        n += 1
