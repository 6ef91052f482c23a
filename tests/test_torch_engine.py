"""TorchEngine: the staged forward equals torchvision's own forward, masks left unpasted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_parse import save_tiny
from torchvision.models.detection.roi_heads import paste_masks_in_image

from clothparse.engines.base import Detections, Engine
from clothparse.engines.loader import engine_kind, open_engine
from clothparse.engines.torch_engine import TorchEngine, image_to_tensor, resolve_device
from clothparse.errors import ConfigError, DependencyError, ModelError
from clothparse.taxonomy import MODANET_CLASSES


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory):
    return save_tiny(tmp_path_factory.mktemp("ckpt") / "tiny")


def _images(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(96, 180)), int(rng.integers(96, 180))) for _ in range(2)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def _reference(model: torch.nn.Module, images: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
    with torch.inference_mode():
        return model([image_to_tensor(im, torch.device("cpu")) for im in images])  # type: ignore[no-any-return]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_matches_torchvision_forward(ckpt, batch_size: int) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu", batch_size=batch_size)
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


def test_engine_protocol_and_specs(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu")
    assert isinstance(eng, Engine)
    assert [s.name for s in eng.output_specs] == ["boxes", "scores", "classes", "masks"]
    assert eng.output_specs[3].shape == (None, 28, 28)
    assert eng.input_specs[0].dtype == "uint8"


def test_score_thresh_override_filters(ckpt) -> None:
    eng = TorchEngine.from_checkpoint(ckpt, device="cpu", score_thresh=0.0)
    scores = eng.infer(_images(5)[:1])[0].scores
    thresh = float(np.median(scores))
    high = TorchEngine.from_checkpoint(ckpt, device="cpu", score_thresh=thresh).infer(
        _images(5)[:1]
    )[0]
    assert len(high) > 0 and np.all(high.scores >= thresh)
    assert len(high) <= len(scores)


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
    eng = TorchEngine.from_checkpoint(ckpt, device="cuda", batch_size=2)
    images = _images(seed=7)
    dets = eng.infer(images)
    with torch.inference_mode():
        refs = eng.model([image_to_tensor(im, eng.device) for im in images])
    for det, ref in zip(dets, refs, strict=True):
        np.testing.assert_allclose(det.boxes, ref["boxes"].cpu().numpy(), rtol=0, atol=1e-3)
        np.testing.assert_array_equal(det.classes, ref["labels"].cpu().numpy())
        pasted = paste_masks_in_image(torch.from_numpy(det.masks[:, None]).cuda(), ref["boxes"], ref["masks"].shape[-2:])
        torch.testing.assert_close(pasted, ref["masks"], rtol=0, atol=1e-5)
