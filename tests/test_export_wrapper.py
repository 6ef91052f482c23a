"""The static-shape wrapper: matrix NMS vs torchvision's NMS, wrapper vs torchvision's
stages on the same canvas (the torch engine), clipping to each photo's region, zero
detections, kept labels, batch > 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clothparse.export import parity
from clothparse.export.wrapper import ExportWrapper, matrix_nms_keep
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import batched_nms

from clothparse.config import ModelConfig
from clothparse.contract.canvas import prepare_batch
from clothparse.engines.raw import outputs_to_detections
from clothparse.engines.torch_engine import TorchEngine, model_canvas
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


def _run(wrapper: ExportWrapper, images: np.ndarray, sizes: np.ndarray) -> list[torch.Tensor]:
    with torch.inference_mode():
        return list(wrapper(torch.from_numpy(images), torch.from_numpy(sizes)))


@pytest.mark.parametrize("batch", [1, 2])
def test_wrapper_matches_torch_engine(small_model, batch: int) -> None:
    model, names = small_model
    canvas = model_canvas(model, H, W)
    engine = TorchEngine(model, names, "cpu", score_thresh=0.05, canvas=canvas)
    wrapper = ExportWrapper(model, H, W, top_k=int(model.roi_heads.detections_per_img), score_floor=0.05)
    # Photos of other sizes and aspect ratios: most do not fill the canvas, so boxes must be
    # clipped to each photo's own region (image_sizes), as torchvision does.
    photos = [*parity.synthetic_photos(96, n=1), parity.skimage_photos()[2]]
    for start in range(0, len(photos), batch):
        images, sizes, _ = prepare_batch(photos[start : start + batch], canvas, batch=batch)
        refs = engine.run_canvas(images, sizes)
        outs = outputs_to_detections([t.numpy() for t in _run(wrapper, images, sizes)], None, names, 0.05)
        exact = parity.Tolerance(min_iou=0.999, max_score_diff=1e-4, max_mask_diff=0.0, min_match_rate=1.0, min_compared=1)
        row = parity.compare("wrapper vs torch", refs, outs[: len(refs)], 0.05, exact)
        assert row.ok and row.n_ref == row.n_test, parity.format_table([row])
        for det, (rows, cols) in zip(outs, sizes, strict=False):
            assert (det.boxes[:, 2] <= cols).all() and (det.boxes[:, 3] <= rows).all()


def test_zero_detections_and_padding(small_model) -> None:
    model, _ = small_model
    wrapper = ExportWrapper(model, H, W, top_k=10, score_floor=1.0)
    sizes = np.array([[H, W], [H // 2, W]], np.int32)
    boxes, scores, classes, masks, num = _run(wrapper, np.zeros((2, 3, H, W), np.uint8), sizes)
    assert boxes.shape == (2, 10, 4) and masks.shape == (2, 10, 28, 28)
    assert num.tolist() == [0, 0]
    assert float(scores.abs().sum() + boxes.abs().sum() + masks.abs().sum()) == 0.0
    assert int(classes.abs().sum()) == 0


def test_keep_labels_are_picked_from_the_top_k_of_all_classes(small_model) -> None:
    model, _ = small_model
    canvas = model_canvas(model, H, W)
    images, sizes, _ = prepare_batch(parity.synthetic_photos(96, n=1)[:1], canvas)
    full = _run(ExportWrapper(model, H, W, top_k=20, score_floor=0.0), images, sizes)
    n_full = int(full[4][0])
    label = int(np.bincount(full[2][0, :n_full].numpy()).argmax())  # the most frequent class
    _, scores, classes, _, num = _run(ExportWrapper(model, H, W, top_k=20, keep_labels=[label], score_floor=0.0), images, sizes)
    n = int(num[0])
    # Exactly the rows of that class among the top-20 of all classes, in the same order: what
    # filtering the torch engine's output (a body model's `person`) gives.
    expected = full[1][0, :n_full][full[2][0, :n_full] == label]
    assert n > 0 and set(classes[0, :n].tolist()) == {label}
    torch.testing.assert_close(scores[0, :n], expected)
    assert float(scores[0, n:].abs().sum()) == 0.0
