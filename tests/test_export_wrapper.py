"""The static-shape wrapper: matrix NMS vs torchvision's NMS, wrapper vs torchvision's own
inference, letterbox geometry, zero detections, batch > 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clothparse.export import parity
from clothparse.export.preprocess import boxes_to_photo, letterbox, prepare_batch
from clothparse.export.wrapper import ExportWrapper, matrix_nms_keep
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import batched_nms

from clothparse.config import ModelConfig
from clothparse.model.builder import build_model

H, W = 128, 160


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    cfg = ModelConfig.small()
    return build_model(cfg).eval(), tuple(cfg.class_names)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 60), st.floats(0.2, 0.8))
def test_matrix_nms_equals_torchvision(seed: int, n: int, thresh: float) -> None:
    g = torch.Generator().manual_seed(seed)
    # Clustered boxes make long suppression chains, the hard case for the fixed iteration count.
    centers = torch.rand(n, 2, generator=g) * 60
    sizes = 5 + torch.rand(n, 2, generator=g) * 20
    boxes = torch.cat([centers, centers + sizes], 1)
    scores = torch.rand(n, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    order = scores.argsort(descending=True)
    b, lab = boxes[order][None], labels[order]
    valid = torch.rand(1, n, generator=g) > 0.1
    keep = matrix_nms_keep(b, valid, thresh, iters=n, same_group=(lab[:, None] == lab[None, :])[None])[0]
    idx = torch.nonzero(valid[0]).flatten()
    ref = batched_nms(b[0][idx], scores[order][idx], lab[idx], thresh)
    expected = torch.zeros(n, dtype=torch.bool)
    expected[idx[ref]] = True
    assert torch.equal(keep, expected)


@pytest.mark.parametrize("batch", [1, 2])
def test_wrapper_matches_torchvision(small_model, batch: int) -> None:
    model, names = small_model
    wrapper = ExportWrapper(model, H, W, top_k=50)
    images = parity.sample_images(H, W, n=2)  # two synthetic scenes + grace_hopper.jpg
    assert len(images) == 3, "matplotlib's grace_hopper.jpg should be part of the samples"
    rows = parity.parity_rows("-", model, wrapper, None, parity.batched(images, batch, H, W), names, 50)
    row = rows[0]
    assert row.n_ref > 0, "the test model must produce detections"
    assert row.n_ref == row.n_test and row.matched == row.n_ref, parity.format_table(rows)
    assert row.max_box_dev < 1e-3 and row.mask_diff == 0.0


def test_zero_detections_and_padding(small_model) -> None:
    model, _ = small_model
    wrapper = ExportWrapper(model, H, W, top_k=10, score_thresh=1.0)
    with torch.inference_mode():
        boxes, scores, classes, masks, num = wrapper(torch.zeros(2, 3, H, W, dtype=torch.uint8))
    assert boxes.shape == (2, 10, 4) and masks.shape == (2, 10, 28, 28)
    assert num.tolist() == [0, 0]
    assert float(scores.abs().sum() + boxes.abs().sum() + masks.abs().sum()) == 0.0
    assert int(classes.abs().sum()) == 0


def test_keep_labels_only(small_model) -> None:
    model, _ = small_model
    wrapper = ExportWrapper(model, H, W, top_k=50, keep_labels=[3])
    arr, _ = prepare_batch(parity.sample_images(H, W, n=1, with_photo=False), H, W)
    with torch.inference_mode():
        _, _, classes, _, num = wrapper(torch.from_numpy(arr))
    n = int(num[0])
    assert n > 0 and set(classes[0, :n].tolist()) == {3}


@settings(max_examples=30, deadline=None)
@given(st.integers(20, 400), st.integers(20, 400), st.integers(0, 2**31 - 1))
def test_letterbox_maps_boxes_back(h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    canvas, lb = letterbox(img, 64, 96)
    assert canvas.shape == (64, 96, 3)
    # A box around the whole photo lands on the resized region and maps back to the photo.
    new_w, new_h = round(w * lb.scale_x), round(h * lb.scale_y)
    assert new_w <= 96 and new_h <= 64 and (new_w == 96 or new_h == 64 or (h, w) == (64, 96))
    back = boxes_to_photo(np.array([[0, 0, new_w, new_h]], np.float32), lb)
    np.testing.assert_allclose(back[0], [0, 0, w, h], rtol=1e-5)
