"""Models for the benchmark: random-init builds, checkpoints, and ONNX exports made on the fly.

A randomly initialised Mask R-CNN scores every box near 1/num_classes, so random models
get ``score_thresh = 0`` (every one of the ``detections_per_img`` detections survives,
which is the worst case for the fusion step). Random ResNet trunks without pretrained
BatchNorm statistics blow up activations and can produce zero proposals; the last BN of
each bottleneck is scaled down (``tame_random_resnet``), as ``ANCHORS.md`` recommends.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clothparse.errors import ConfigError

#: Scale of each bottleneck's last BN weight in random ResNet models.
RANDOM_BN_SCALE = 0.1


@dataclass
class TorchModel:
    """A torchvision Mask R-CNN with its class names and where it came from."""

    model: Any
    class_names: tuple[str, ...]
    source: str  # checkpoint path, or "random <backbone>"
    checkpoint: Path | None = None


def tame_random_resnet(model: Any, scale: float = RANDOM_BN_SCALE) -> int:
    """Scale the ``bn3`` weight of every ResNet bottleneck by ``scale`` (in place); returns how many."""
    import torch

    n = 0
    with torch.no_grad():
        for module in model.modules():
            bn = getattr(module, "bn3", None)
            if bn is not None and getattr(bn, "weight", None) is not None:
                bn.weight.mul_(scale)
                n += 1
    return n


def random_model(backbone: str, class_names: list[str] | None = None, seed: int = 0, **overrides: Any) -> TorchModel:
    """A random-init Mask R-CNN (eval mode, CPU) with ``backbone`` small, resnet50 or resnet101."""
    import torch

    from clothparse.config import BACKBONES, ModelConfig
    from clothparse.model.builder import build_model

    if backbone not in BACKBONES:
        raise ConfigError(f"--backbone: expected one of {', '.join(BACKBONES)}, got {backbone!r}")
    torch.manual_seed(seed)
    kw: dict[str, Any] = {"score_thresh": 0.0}
    if class_names is not None:
        kw["class_names"] = list(class_names)
    kw.update(overrides)
    cfg = ModelConfig.small(**kw) if backbone == "small" else ModelConfig(backbone=backbone, **kw)
    model = build_model(cfg, init="none").eval()
    if backbone != "small":
        tame_random_resnet(model)
    return TorchModel(model, tuple(cfg.class_names), f"random {backbone}")


def load_torch_model(path: Path) -> TorchModel:
    """A checkpoint (folder or .safetensors) as a ``TorchModel`` (eval mode, CPU)."""
    from clothparse.model.checkpoint import load_checkpoint, resolve_checkpoint

    loaded = load_checkpoint(path)
    weights, _ = resolve_checkpoint(path)
    return TorchModel(loaded.model.eval(), tuple(loaded.class_names), str(path), weights)


def body_model(spec: str | None, backbone: str, seed: int = 1) -> tuple[TorchModel | None, str]:
    """The body model for ``--body-model``: ``none``, ``random``, a checkpoint path, or
    None/``auto`` (torchvision's COCO weights from the local cache, else random with a note).

    Returns (model or None, a one-line note for the report).
    """
    from clothparse.taxonomy import COCO_PERSON_NAME

    if spec is not None and spec.lower() == "none":
        return None, "no body model (--body-model none): body stage not run"
    if spec is not None and spec.lower() not in ("auto", "random"):
        return load_torch_model(Path(spec)), f"body model: {spec}"
    if spec is None or spec.lower() == "auto":
        from clothparse.errors import CptError
        from clothparse.model.builder import body_config, build_body_model

        try:
            model = build_body_model(init="coco")
            return TorchModel(model, tuple(body_config().class_names), "torchvision COCO"), "body model: torchvision COCO R50-FPN (hub cache)"
        except CptError as exc:
            note = f"body model: random {backbone} (COCO weights unavailable: {exc})"
    else:
        note = f"body model: random {backbone}"
    return random_model(backbone, [COCO_PERSON_NAME], seed=seed), note


def trt_available() -> str | None:
    """None when TensorRT can be used, else the reason it cannot (for skipped rows)."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip install clothparse[trt])"
    import torch

    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA device"
    return None


def export_model(tm: TorchModel, out_dir: Path, height: int, width: int, batch: int, runtime: str, precision: str, calib: list[Any] | None = None) -> Path:
    """Export ``tm`` at a fixed (batch, height, width) into ``out_dir`` with ``clothparse.export``.

    runtime "onnx" (precision fp32 or int8: ORT QDQ calibrated on ``calib``) or "trt"
    (fp32/fp16/int8 engine built from the ONNX file). Returns the model path; the sidecar
    is written next to it. Raises the exporter's errors unchanged.
    """
    from clothparse.export import onnx_export, sidecar
    from clothparse.export.wrapper import ExportWrapper

    if height % 32 or width % 32:
        raise ConfigError(f"exports need sizes that are multiples of 32, got {height}x{width}")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"model_{height}x{width}_b{batch}"
    wrapper = ExportWrapper(tm.model, height, width)
    onnx_path = out_dir / f"{stem}.onnx"
    if not onnx_path.exists() or not sidecar.sidecar_path(onnx_path).exists():
        onnx_export.export_onnx(wrapper, onnx_path, batch=batch)
        _write_meta(onnx_path, tm, wrapper, batch, "onnx", "fp32")
    if runtime == "onnx" and precision == "fp32":
        return onnx_path
    if runtime == "onnx" and precision == "int8":
        from clothparse.export.quantize import quantize_int8

        if not calib:
            raise ConfigError("int8 needs calibration images")
        q_path = quantize_int8(onnx_path, out_dir / f"{stem}.int8.onnx", calib, batch, height, width)
        _write_meta(q_path, tm, wrapper, batch, "onnx", "int8")
        return q_path
    if runtime == "trt":
        from clothparse.export.trt_builder import EngineBuilder, Precision

        prec = Precision(precision)
        engine_path = out_dir / f"{stem}.{prec.value}.engine"
        EngineBuilder(onnx_path).build(engine_path, prec, calib or [], out_dir / f"{stem}.calib.cache", out_dir / "timing.cache")
        _write_meta(engine_path, tm, wrapper, batch, "trt", prec.value)
        return engine_path
    raise ConfigError(f"no {precision} export for {runtime}")


def _write_meta(path: Path, tm: TorchModel, wrapper: Any, batch: int, runtime: str, precision: str) -> None:
    from clothparse.export import onnx_export, sidecar

    sc = sidecar.Sidecar(
        class_names=list(tm.class_names), height=wrapper.height, width=wrapper.width, batch=batch,
        top_k=wrapper.top_k, opset=onnx_export.DEFAULT_OPSET, precision=precision, runtime=runtime,
        model_sha256=sidecar.sha256_file(path), score_thresh=wrapper.score_thresh,
        image_mean=wrapper.mean.flatten().tolist(), image_std=wrapper.std.flatten().tolist(),
        source_checkpoint=str(tm.checkpoint or tm.source),
        source_sha256=sidecar.sha256_file(tm.checkpoint) if tm.checkpoint else "",
    )
    sidecar.write_sidecar(path, sc)
