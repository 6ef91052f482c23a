"""InstanceDataset targets and the training transforms (boxes always agree with masks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from clothparse.data.dataset import InstanceDataset, collate_fn, masks_to_boxes
from clothparse.data.transforms import Compose, TrainTransform, hflip, rescale
from clothparse.errors import ConfigError, DataError

H, W = 48, 64
CATS = [{"id": i, "name": n} for i, n in enumerate(("bag", "belt", "top"), start=1)]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _ann(
    i: int, image_id: int, polys: list[list[float]], cat: int, crowd: int = 0
) -> dict[str, Any]:
    return {
        "id": i,
        "image_id": image_id,
        "category_id": cat,
        "segmentation": polys,
        "iscrowd": crowd,
    }


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "images"
    root.mkdir()
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 2, 0] = 255  # left half red: checks RGB order and [0, 1] scaling
    Image.fromarray(img).save(root / "a.png")
    Image.fromarray(img).save(root / "b.png")
    Image.fromarray(img).save(root / "empty.png")
    images = [
        {"id": 7, "file_name": "a.png", "width": W, "height": H},
        {"id": 3, "file_name": "b.png", "width": W, "height": H},
        {"id": 9, "file_name": "empty.png", "width": W, "height": H},
    ]
    anns = [
        _ann(1, 7, [_rect(4, 6, 20, 30)], 1),
        _ann(2, 7, [_rect(30, 10, 40, 20), _rect(50, 30, 60, 40)], 3),  # two parts
        _ann(3, 7, [[10, 40, 30, 40, 20, 46]], 2),  # a triangle
        _ann(4, 7, [_rect(0, 0, 64, 48)], 1, crowd=1),  # crowd: never a target
        _ann(5, 7, [_rect(70, 50, 80, 60)], 2),  # entirely outside: empty mask, dropped
        _ann(6, 3, [_rect(1, 1, 9, 9)], 2),
        _ann(7, 9, [_rect(1, 1, 9, 9)], 2, crowd=1),  # only crowd: an "empty" image
    ]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATS}))
    return path, root


def _ref_boxes(masks: np.ndarray) -> np.ndarray:
    """Plain per-mask loop: xyxy with exclusive x2/y2, zeros for an empty mask."""
    out = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(xs):
            out[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return out


def test_item_shapes_dtypes_and_masks(data: tuple[Path, Path]) -> None:
    ds = InstanceDataset(*data)
    assert len(ds) == 2 and ds.image_ids == [3, 7]  # empty image skipped, sorted by id
    assert ds.class_names == ("bag", "belt", "top")
    image, t = ds[1]
    assert image.dtype == torch.float32 and image.shape == (3, H, W)
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0
    assert float(image[0, 0, 0]) == 1.0 and float(image[1, 0, 0]) == 0.0  # red is channel 0
    assert t["boxes"].dtype == torch.float32 and t["boxes"].shape == (3, 4)
    assert t["labels"].dtype == torch.int64 and t["labels"].tolist() == [1, 3, 2]
    assert t["masks"].dtype == torch.uint8 and t["masks"].shape == (3, H, W)
    assert (
        t["image_id"].dtype == torch.int64 and t["image_id"].ndim == 0 and int(t["image_id"]) == 7
    )
    assert t["orig_size"].tolist() == [H, W]
    expected = np.zeros((2, H, W), np.uint8)
    expected[0, 6:30, 4:20] = 1
    expected[1, 10:20, 30:40] = 1
    expected[1, 30:40, 50:60] = 1
    np.testing.assert_array_equal(t["masks"][:2].numpy(), expected)
    tri = t["masks"][2].numpy()
    assert tri[41, 20] == 1 and tri[41, 11] == 0 and tri[:40].sum() == 0
    assert 0.8 * 60 < tri.sum() < 1.2 * 60  # area of the triangle: 20 * 6 / 2
    np.testing.assert_array_equal(t["boxes"].numpy(), _ref_boxes(t["masks"].numpy()))
    assert t["boxes"][0].tolist() == [4, 6, 20, 30]


def test_skip_empty_false_keeps_empty_images(data: tuple[Path, Path]) -> None:
    ds = InstanceDataset(*data, skip_empty=False)
    assert ds.image_ids == [3, 7, 9]
    _, t = ds[2]
    assert (
        t["boxes"].shape == (0, 4) and t["masks"].shape == (0, H, W) and t["labels"].shape == (0,)
    )


def test_dataloader_with_collate_and_transform(data: tuple[Path, Path]) -> None:
    ds = InstanceDataset(*data, transforms=TrainTransform(seed=0))
    images, targets = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_fn)))
    assert len(images) == len(targets) == 2
    for img, t in zip(images, targets, strict=True):
        assert img.shape[1:] == t["masks"].shape[1:]
        np.testing.assert_array_equal(t["boxes"].numpy(), _ref_boxes(t["masks"].numpy()))


def test_bad_inputs(data: tuple[Path, Path], tmp_path: Path) -> None:
    path, root = data
    (root / "b.png").write_bytes(b"not an image")
    ds = InstanceDataset(path, root)
    with pytest.raises(DataError, match=r"b\.png"):
        ds[0]
    checked = InstanceDataset(path, root, check_images=True)
    assert checked.image_ids == [7] and checked.skipped_bad_images == ["b.png"]
    Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)).save(root / "b.png")
    with pytest.raises(DataError, match="says"):
        ds[0]
    assert InstanceDataset(path, root, check_images=True).image_ids == [7]
    cats = json.loads(path.read_text())
    cats["categories"] = [{"id": 1, "name": "a"}, {"id": 3, "name": "c"}]
    bad = tmp_path / "gap.json"
    bad.write_text(json.dumps(cats))
    with pytest.raises(DataError, match="contiguous"):
        InstanceDataset(bad, root)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(8, 40), w=st.integers(8, 40), seed=st.integers(0, 2**31))
def test_masks_to_boxes_matches_reference(n: int, h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = (rng.random((n, h, w)) > rng.uniform(0.5, 1.0, (n, 1, 1))).astype(np.uint8)
    np.testing.assert_array_equal(
        masks_to_boxes(torch.from_numpy(masks)).numpy(), _ref_boxes(masks)
    )


def _random_sample(
    seed: int, n: int, h: int, w: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), np.uint8)
    for k in range(n):
        y0, x0 = rng.integers(0, h - 1), rng.integers(0, w - 1)
        y1, x1 = rng.integers(y0 + 1, h + 1), rng.integers(x0 + 1, w + 1)
        masks[k, y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) > 0.3
        masks[k, y0, x0] = 1
    m = torch.from_numpy(masks)
    target = {
        "boxes": masks_to_boxes(m),
        "labels": torch.arange(1, n + 1, dtype=torch.int64),
        "masks": m,
        "image_id": torch.tensor(1),
    }
    return torch.from_numpy(rng.random((3, h, w), dtype=np.float32)), target


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(0, 5),
    h=st.integers(8, 48),
    w=st.integers(8, 48),
    factor=st.floats(0.3, 2.0),
)
def test_flip_and_scale_keep_boxes_consistent(
    seed: int, n: int, h: int, w: int, factor: float
) -> None:
    image, target = _random_sample(seed, n, h, w)
    fi, ft = hflip(image, target)
    np.testing.assert_array_equal(ft["boxes"].numpy(), _ref_boxes(ft["masks"].numpy()))
    torch.testing.assert_close(fi, image.flip(-1))
    bi, bt = hflip(fi, ft)
    torch.testing.assert_close(bt["boxes"], target["boxes"])
    assert torch.equal(bt["masks"], target["masks"]) and torch.equal(bi, image)

    si, st_ = rescale(image, target, factor)
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    assert si.shape == (3, nh, nw) and si.dtype == torch.float32
    assert 0.0 <= float(si.min()) and float(si.max()) <= 1.0
    assert st_["masks"].shape[1:] == (nh, nw) and st_["masks"].dtype == torch.uint8
    np.testing.assert_array_equal(st_["boxes"].numpy(), _ref_boxes(st_["masks"].numpy()))
    assert len(st_["labels"]) == len(st_["masks"]) == len(st_["boxes"])
    assert set(st_["labels"].tolist()) <= set(target["labels"].tolist())
    assert (st_["boxes"][:, 2:] > st_["boxes"][:, :2]).all()


def test_train_transform_deterministic_and_varied() -> None:
    image, target = _random_sample(0, 3, 40, 40)
    a, b = TrainTransform(seed=5), TrainTransform(seed=5)
    shapes = set()
    for _ in range(8):
        (ia, ta), (ib, tb) = a(image, target), b(image, target)
        assert torch.equal(ia, ib) and torch.equal(ta["masks"], tb["masks"])
        shapes.add(tuple(ia.shape))
    assert len(shapes) > 1  # the scale really jitters
    flipped = TrainTransform(hflip_prob=1.0, scale_range=(1.0, 1.0))(image, target)[0]
    assert torch.equal(flipped, image.flip(-1))
    same = Compose([TrainTransform(hflip_prob=0.0, scale_range=(1.0, 1.0))])(image, target)
    assert torch.equal(same[0], image) and torch.equal(same[1]["masks"], target["masks"])
    with pytest.raises(ConfigError):
        TrainTransform(scale_range=(0.0, 1.0))
    with pytest.raises(ConfigError):
        TrainTransform(hflip_prob=1.5)


def test_each_worker_draws_its_own_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    import copy
    from types import SimpleNamespace

    from clothparse.data import transforms

    t = TrainTransform(seed=3)
    t._rng()  # used in the parent before the DataLoader copies it into workers

    def draws_as(worker: int) -> list[float]:
        monkeypatch.setattr(transforms, "get_worker_info", lambda: SimpleNamespace(id=worker))
        gen = copy.deepcopy(t)._rng()
        return torch.rand(4, generator=gen).tolist()

    assert draws_as(0) != draws_as(1)
    assert draws_as(1) == draws_as(1)  # still repeatable for a seed
