"""The preprocessing contract (clothparse.contract.canvas) against torchvision's own
transform: the same resized size and (up to uint8 rounding) the same pixels, padding with
the mean colour, and boxes mapped back to the photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from clothparse.contract.canvas import PAD_RGB, CanvasSpec, boxes_to_photo, prepare_batch, to_canvas

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _torchvision(image: np.ndarray, min_size: int, max_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """torchvision's resized photo, de-normalised to float RGB in [0, 255], and its size."""
    t = GeneralizedRCNNTransform(min_size, max_size, MEAN, STD).eval()
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    with torch.no_grad():
        batch, _ = t([x])
    rows, cols = (int(v) for v in batch.image_sizes[0])
    out = batch.tensors[0, :, :rows, :cols] * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    return (out * 255.0).permute(1, 2, 0).numpy(), (rows, cols)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(8, 1500), st.integers(8, 1500),
    st.sampled_from([(256, 256), (800, 1024), (800, 1333), (128, 160)]),
)
def test_resized_size_is_torchvisions(h: int, w: int, sizes: tuple[int, int]) -> None:
    spec = CanvasSpec.for_model(*sizes)
    scale = min(sizes[0] / min(h, w), sizes[1] / max(h, w))
    if min(int(h * scale), int(w * scale)) == 0:
        # torchvision fails on such slivers (an output side of 0); the contract keeps 1 px.
        assert min(spec.resized_size(h, w)) == 1
        return
    t = GeneralizedRCNNTransform(sizes[0], sizes[1], MEAN, STD).eval()
    with torch.no_grad():
        batch, _ = t([torch.zeros(3, h, w)])
    assert spec.fits_all
    assert spec.resized_size(h, w) == tuple(int(v) for v in batch.image_sizes[0])


@pytest.mark.parametrize("shape", [(300, 451), (128, 78), (90, 200), (256, 256)])
def test_canvas_pixels_are_torchvisions_resize(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    spec = CanvasSpec.for_model(256, 256)
    canvas, placement = to_canvas(photo, spec)
    ref, (rows, cols) = _torchvision(photo, 256, 256)
    assert canvas.shape == (256, 256, 3) and canvas.dtype == np.uint8
    assert placement.resized_hw == (rows, cols) and placement.photo_hw == shape
    # The same bilinear resize, rounded to uint8 (torchvision keeps floats).
    assert np.abs(canvas[:rows, :cols].astype(np.float64) - ref).max() <= 0.5 + 1e-3
    assert (canvas[rows:] == PAD_RGB).all() and (canvas[:, cols:] == PAD_RGB).all()


def test_small_canvas_shrinks_to_fit() -> None:
    spec = CanvasSpec(height=128, width=256, min_size=256, max_size=256)
    assert not spec.fits_all
    assert spec.resized_size(400, 200) == (128, 64)  # portrait: torchvision would give 256 x 128
    assert spec.resized_size(100, 200) == (128, 256)  # landscape fits at torchvision's scale


def test_prepare_batch_pads_and_reports_sizes() -> None:
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(60, 90), (200, 50)]]
    spec = CanvasSpec.for_model(96, 128)
    images, sizes, placements = prepare_batch(photos, spec, batch=3)
    assert images.shape == (3, 3, 128, 128) and images.dtype == np.uint8
    assert sizes.dtype == np.int32 and sizes.tolist() == [[85, 128], [128, 32], [128, 128]]
    assert len(placements) == 2
    assert (images[2] == np.asarray(PAD_RGB, np.uint8)[:, None, None]).all()
    with pytest.raises(ValueError, match="batch of 1"):
        prepare_batch(photos, spec, batch=1)
    with pytest.raises(ValueError, match="RGB uint8"):
        to_canvas(photos[0].astype(np.float32), spec)


@settings(max_examples=40, deadline=None)
@given(st.integers(8, 900), st.integers(8, 900), st.integers(0, 2**31 - 1))
def test_boxes_to_photo_is_torchvisions_resize_boxes(h: int, w: int, seed: int) -> None:
    spec = CanvasSpec.for_model(128, 160)
    rows, cols = spec.resized_size(h, w)
    placement = to_canvas(np.zeros((h, w, 3), np.uint8), spec)[1]
    boxes = np.random.default_rng(seed).uniform(0, max(rows, cols), (5, 4)).astype(np.float32)
    ref = resize_boxes(torch.from_numpy(boxes), [rows, cols], [h, w]).numpy()
    np.testing.assert_array_equal(boxes_to_photo(boxes, placement), ref)
