"""Models for the benchmark: random-init builds, checkpoints, and ONNX exports made on the fly.

A randomly initialised Mask R-CNN scores every box near 1/num_classes, so random models
get ``score_thresh = 0`` (every one of the ``detections_per_img`` detections survives,
which is the worst case for the fusion step). Random ResNet trunks without pretrained
BatchNorm statistics blow up activations and can produce zero proposals; the last BN of
each bottleneck is scaled down (``tame_random_resnet``), which keeps the residual sums near
their inputs' scale, as zero-initialising the last BN of each block does (Goyal et al. 2017,
"Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour").
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
    """Export ``tm`` on an H x W canvas at a fixed batch into ``out_dir`` with the one
    exporter (``clothparse.export.exporter``), reusing files made earlier for the same model.

    runtime "onnx" (precision fp32, fp16 mixed precision, or int8 Q/DQ calibrated on
    ``calib``) or "trt" (an engine built from the ONNX file of that precision). Returns the
    model path; the sidecar is next to it. Raises the exporter's errors unchanged.
    """
    from clothparse.export.exporter import ExportSpec, derive_precision, export_onnx_model

    from clothparse.contract import sidecar

    if height % 32 or width % 32:
        raise ConfigError(f"exports need sizes that are multiples of 32, got {height}x{width}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The cache key names the model too: a file exported from another model is never reused.
    ident = sidecar.sha256_file(tm.checkpoint)[:12] if tm.checkpoint else tm.source.replace(" ", "-")
    stem = f"{ident}_{height}x{width}_b{batch}"
    onnx_path = out_dir / f"{stem}.onnx"
    if not onnx_path.exists() or not sidecar.sidecar_path(onnx_path).exists():
        export_onnx_model(tm.model, tm.class_names, onnx_path, ExportSpec(height=height, width=width, batch=batch),
                          source=tm.checkpoint)
    path = onnx_path
    if precision != "fp32":
        path = out_dir / f"{stem}.{precision}.onnx"
        if not path.exists() or not sidecar.sidecar_path(path).exists():
            derive_precision(onnx_path, precision, path, calib or [])
    if runtime == "onnx":
        return path
    if runtime == "trt":
        from clothparse.export.trt_builder import build_engine

        engine_path = path.with_suffix(".engine")
        build_engine(path, engine_path, timing_cache=out_dir / "timing-cache")
        return engine_path
    raise ConfigError(f"no {precision} export for {runtime}")
