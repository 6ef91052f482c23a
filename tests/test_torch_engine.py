"""TorchEngine: on a photo that needs no resize or padding its staged forward equals
torchvision's own forward (masks left unpasted); the canvas contract, run-time thresholds,
pooler scales fixed from the canvas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_parse import save_tiny
from torchvision.models.detection.roi_heads import paste_masks_in_image

from clothparse.contract.canvas import CanvasSpec
from clothparse.device import resolve_device
from clothparse.engines.base import Detections, Engine
from clothparse.engines.loader import engine_kind, open_engine
from clothparse.engines.torch_engine import TorchEngine
from clothparse.errors import ConfigError, DependencyError, ModelError
from clothparse.taxonomy import MODANET_CLASSES


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory):
    return save_tiny(tmp_path_factory.mktemp("ckpt") / "tiny")


#: The tiny model's resize rule is 128/160: a 128 x 160 photo is neither resized nor
#: padded by torchvision, and fills this canvas exactly, so both see the same pixels.
EXACT = CanvasSpec(128, 160, 128, 160)


def _images(seed: int, shape: tuple[int, int] = (128, 160)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(2)]


def _to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(image).to(device).permute(2, 0, 1).float() / 255.0


def _reference(model: torch.nn.Module, images: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
    with torch.inference_mode():
        return model([_to_tensor(im, torch.device("cpu")) for im in images])  # type: ignore[no-any-return]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_matches_torchvision_forward(ckpt, batch_size: int) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu", batch_size=batch_size, canvas=EXACT)
    images = _images(seed=batch_size)
    dets = eng.infer(images)
    # torchvision pads a batch to one size, so compare against the same batching.
    refs = [
        r
        for k in range(0, len(images), batch_size)
        for r in _reference(eng.model, images[k : k + batch_size])
    ]
    assert len(dets) == len(images)
    for det, ref, im in zip(dets, refs, images, strict=True):
        assert len(det) > 0, "threshold 0 should give detections"
        assert det.masks.shape == (len(det), 28, 28) and det.masks.dtype == np.float32
        assert det.boxes.dtype == np.float32 and det.classes.dtype == np.int64
        np.testing.assert_allclose(det.boxes, ref["boxes"].numpy(), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(det.scores, ref["scores"].numpy())
        np.testing.assert_array_equal(det.classes, ref["labels"].numpy())
        pasted = paste_masks_in_image(
            torch.from_numpy(det.masks[:, None]), ref["boxes"], im.shape[:2]
        )
        assert pasted.shape == ref["masks"].shape
        torch.testing.assert_close(pasted, ref["masks"], rtol=0, atol=1e-6)
        assert 0.0 <= det.masks.min() and det.masks.max() <= 1.0
        assert det.class_names == tuple(MODANET_CLASSES)


def test_engine_protocol_specs_and_canvas(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu")
    assert isinstance(eng, Engine)
    assert [s.name for s in eng.output_specs] == ["boxes", "scores", "classes", "masks"]
    assert eng.output_specs[3].shape == (None, 28, 28)
    # Default canvas: the checkpoint's max_size (160), square; both inputs of the export.
    assert eng.canvas == CanvasSpec(160, 160, 128, 160)
    assert [(s.name, s.dtype) for s in eng.input_specs] == [("images", "uint8"), ("image_sizes", "int32")]
    # Pooler scales come from the canvas, not from whichever photo came first.
    eng.infer([np.zeros((40, 160, 3), np.uint8)])  # a wide photo: 40 of 160 rows
    assert eng.model.roi_heads.box_roi_pool.scales == [0.25, 0.125, 0.0625, 0.03125]


def test_photos_of_any_shape_map_back(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu", score_thresh=0.0)
    for shape in [(300, 120), (90, 400), (160, 160)]:
        det = eng.infer(_images(3, shape)[:1])[0]
        assert len(det) > 0
        assert det.boxes[:, [0, 2]].max() <= shape[1] + 1e-3 and det.boxes[:, [1, 3]].max() <= shape[0] + 1e-3


def test_run_time_threshold_keeps_the_same_items(ckpt) -> None:
    low = TorchEngine.from_checkpoint(ckpt, device="cpu", score_thresh=0.0).infer(_images(5)[:1])[0]
    thresh = float(np.sort(low.scores)[len(low) // 2])  # an exact score: >= keeps it, as every engine does
    high = TorchEngine.from_checkpoint(ckpt, device="cpu", score_thresh=thresh).infer(_images(5)[:1])[0]
    ref = low.filter_score(thresh)
    assert len(high) > 0 and np.all(high.scores >= thresh) and thresh in high.scores
    np.testing.assert_array_equal(high.boxes, ref.boxes)
    np.testing.assert_array_equal(high.classes, ref.classes)


def test_no_detections_gives_empty(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu", score_thresh=1.0)
    det = eng.infer([np.zeros((64, 80, 3), np.uint8)])[0]
    assert isinstance(det, Detections) and len(det) == 0 and det.masks.shape == (0, 28, 28)


def test_rejects_bad_input(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu")
    with pytest.raises(ValueError, match="RGB uint8"):
        eng.infer([np.zeros((32, 32), np.uint8)])
    assert eng.infer([]) == []


def test_loader(ckpt, tmp_path) -> None:
    assert (
        engine_kind("a.onnx") == "onnx"
        and engine_kind("a.plan") == "trt"
        and engine_kind("run") == "torch"
    )
    eng = open_engine(ckpt, device="cpu")
    assert isinstance(eng, TorchEngine)
    with pytest.raises(ModelError, match="no such model"):
        open_engine(tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="--engine"):
        open_engine(ckpt, kind="onnx")
    with pytest.raises(ConfigError, match="unknown engine"):
        open_engine(ckpt, kind="tflite")
    fake = tmp_path / "m.plan"
    fake.write_bytes(b"x")
    try:
        import clothparse.engines.trt_engine  # noqa: F401
    except ImportError:
        with pytest.raises(DependencyError, match="trt engine"):
            open_engine(fake)


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_matches_torchvision_forward_cuda(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cuda", batch_size=2, canvas=EXACT)
    images = _images(seed=7)
    dets = eng.infer(images)
    with torch.inference_mode():
        refs = eng.model([_to_tensor(im, eng.device) for im in images])
    for det, ref in zip(dets, refs, strict=True):
        np.testing.assert_allclose(det.boxes, ref["boxes"].cpu().numpy(), rtol=0, atol=1e-3)
        np.testing.assert_array_equal(det.classes, ref["labels"].cpu().numpy())
        pasted = paste_masks_in_image(torch.from_numpy(det.masks[:, None]).cuda(), ref["boxes"], ref["masks"].shape[-2:])
        torch.testing.assert_close(pasted, ref["masks"], rtol=0, atol=1e-5)
