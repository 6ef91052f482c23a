"""The torch ``Dataset`` of instance annotations that training and evaluation read.

One item is ``(image, target)`` in torchvision's detection format:

- ``image``: float32 ``[3, H, W]``, values in [0, 1], RGB;
- ``target["boxes"]``: float32 ``[N, 4]``, xyxy in pixels of ``image`` (from the masks:
  ``x2 = last column + 1``, so a one-pixel mask has a 1 x 1 box);
- ``target["labels"]``: int64 ``[N]``, the JSON's category ids (1..C);
- ``target["masks"]``: uint8 ``[N, H, W]``, values 0/1;
- ``target["image_id"]``: int64 scalar; ``target["orig_size"]``: int64 ``[2]`` = (H, W)
  of the decoded photo, before any transform.

Crowd regions never become targets. Instances whose mask is empty in the image
(polygon entirely outside it) are dropped, so N may be 0 even with ``skip_empty``.

Bad photos: the index checks only that each file exists (cheap, done by the loader).
With ``check_images=True`` it also reads every header (PIL, no decode) and skips
files that are not images or whose size differs from the JSON; a corrupt body (a
truncated JPEG) is only found on decode, where ``__getitem__`` raises ``DataError``
naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from clothparse.data.coco import CocoIndex, ImageRecord, LoadReport, annotation_mask, load_coco
from clothparse.errors import DataError
from clothparse.io.images import read_rgb

Target = dict[str, torch.Tensor]
_EXIF_ORIENTATION = 0x0112
Transform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """xyxy float32 ``[N, 4]`` of uint8/bool masks ``[N, H, W]`` (x2/y2 exclusive; empty → 0s)."""
    n = masks.shape[0]
    boxes = torch.zeros((n, 4), dtype=torch.float32)
    if n == 0:
        return boxes
    fg = masks.bool()
    cols = fg.any(dim=1)  # [N, W]
    rows = fg.any(dim=2)  # [N, H]
    w, h = masks.shape[2], masks.shape[1]
    xs = torch.arange(w)
    ys = torch.arange(h)
    has = cols.any(dim=1)
    big = torch.iinfo(torch.int64).max
    boxes[:, 0] = torch.where(cols, xs, big).amin(dim=1).clamp(max=w).float()
    boxes[:, 2] = (torch.where(cols, xs, -1).amax(dim=1) + 1).float()
    boxes[:, 1] = torch.where(rows, ys, big).amin(dim=1).clamp(max=h).float()
    boxes[:, 3] = (torch.where(rows, ys, -1).amax(dim=1) + 1).float()
    boxes[~has] = 0.0
    return boxes


def keep_instances(target: Target, keep: torch.Tensor) -> Target:
    """Index every per-instance entry (first dim = N) of ``target`` by bool ``keep [N]``."""
    n = keep.shape[0]
    out: Target = {}
    for key, value in target.items():
        per_instance = key in ("boxes", "labels", "masks", "area", "iscrowd")
        out[key] = value[keep] if per_instance and value.shape[:1] == (n,) else value
    return out


def drop_degenerate(target: Target) -> Target:
    """Drop instances whose box is under 1 px wide or high."""
    boxes = target["boxes"]
    keep = ((boxes[:, 2] - boxes[:, 0]) >= 1) & ((boxes[:, 3] - boxes[:, 1]) >= 1)
    return target if bool(keep.all()) else keep_instances(target, keep)


def _header_ok(rec: ImageRecord) -> bool:
    """True when the file's header names an image of the JSON's size (no pixel decode)."""
    assert rec.path is not None
    try:
        with Image.open(rec.path) as img:
            w, h = img.size
            # read_rgb applies EXIF orientation; 5-8 turn by 90° and swap the sides
            if img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                w, h = h, w
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False
    return (w, h) == (rec.width, rec.height)


class InstanceDataset(Dataset[tuple[torch.Tensor, Target]]):
    """COCO instance annotations + photos as torchvision detection samples (see module doc)."""

    def __init__(
        self,
        ann_path: str | Path,
        image_root: str | Path,
        transforms: Transform | None = None,
        skip_empty: bool = True,
        check_images: bool = False,
        categories: Sequence[str] | None = None,
    ) -> None:
        self.index: CocoIndex = load_coco(ann_path, image_root, categories)
        ids = list(self.index.category_ids)
        if ids != list(range(1, len(ids) + 1)):
            raise DataError(f"category ids must be contiguous 1..C, got {ids}", ann_path)
        self.transforms = transforms
        records = sorted(self.index.images, key=lambda r: r.id)
        if skip_empty:
            records = [r for r in records if self.index.annotations_for(r.id)]
        #: file names dropped by ``check_images`` (not an image, or not the JSON's size)
        self.skipped_bad_images: list[str] = []
        if check_images:
            bad = {r.id for r in records if not _header_ok(r)}
            self.skipped_bad_images = [r.file_name for r in records if r.id in bad]
            records = [r for r in records if r.id not in bad]
        self.records: list[ImageRecord] = records

    @property
    def class_names(self) -> tuple[str, ...]:
        """Category names, index i = class id i + 1."""
        return self.index.class_names

    @property
    def report(self) -> LoadReport:
        return self.index.report

    @property
    def image_ids(self) -> list[int]:
        return [r.id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def load_target(self, rec: ImageRecord, height: int, width: int) -> Target:
        """The target of one image at size (height, width) — the decoded photo's size."""
        anns = self.index.annotations_for(rec.id)
        masks = np.zeros((len(anns), height, width), dtype=np.uint8)
        for k, ann in enumerate(anns):
            masks[k] = annotation_mask(ann, height, width)
        mask_t = torch.from_numpy(masks)
        target: Target = {
            "boxes": masks_to_boxes(mask_t),
            "labels": torch.tensor([a.category_id for a in anns], dtype=torch.int64),
            "masks": mask_t,
            "image_id": torch.tensor(rec.id, dtype=torch.int64),
            "orig_size": torch.tensor([height, width], dtype=torch.int64),
        }
        return drop_degenerate(target)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        rec = self.records[i]
        assert rec.path is not None
        rgb = read_rgb(rec.path)  # DataError naming the file if it cannot be decoded
        h, w = rgb.shape[:2]
        if (w, h) != (rec.width, rec.height):
            raise DataError(
                f"image is {w}x{h} but the annotation file says {rec.width}x{rec.height}", rec.path
            )
        if not rgb.flags.writeable:  # PIL-backed arrays can be read-only; torch wants writable
            rgb = rgb.copy()
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
        target = self.load_target(rec, h, w)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate_fn(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[list[torch.Tensor], list[Target]]:
    """Keep images of different sizes apart: ``(list of images, list of targets)``."""
    return [b[0] for b in batch], [b[1] for b in batch]
