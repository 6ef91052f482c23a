"""ONNX Runtime execution providers for a device, with their options.

Order: TensorRT EP > CUDA EP > CPU EP among the providers the installed onnxruntime
offers (``onnxruntime.get_available_providers()``): onnxruntime's build decides what can
run here, not torch's, so a CPU-only torch with onnxruntime-gpu still gets the GPU.

Options ("NVIDIA - TensorRT" / "NVIDIA - CUDA" execution provider pages of the ONNX
Runtime docs; Python takes a dict per provider, booleans as True/False):

* CUDA EP: ``device_id``.
* TensorRT EP: ``device_id``; ``trt_engine_cache_enable`` + ``trt_engine_cache_path``;
  ``trt_timing_cache_enable`` + ``trt_timing_cache_path`` (a folder; onnxruntime names the
  file after the GPU's compute capability).

Cache layout, next to the model: ``model.onnx.trt_cache/engines-<sha256[:16]>/`` and
``model.onnx.trt_cache/timing/``. The engine folder is keyed on the model file's SHA-256
because onnxruntime keys its engine cache on the model's file *name*, tensor names and the
ORT/CUDA/TensorRT versions, not on the weights (TRTGenerateId in the TensorRT EP): a
re-exported ``model.onnx`` with new weights would otherwise silently reuse the old engine
(the EP docs say to clean the cache whenever the model changes). The timing cache only
holds per-layer kernel timings, valid across models on one GPU and TensorRT version, so
it is shared by every version of the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clothparse.device import parse_device
from clothparse.errors import DependencyError

log = logging.getLogger(__name__)

TRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
PROVIDER_ORDER: tuple[str, ...] = (TRT_EP, CUDA_EP, CPU_EP)
GPU_PROVIDERS: tuple[str, ...] = (TRT_EP, CUDA_EP)
GPU_INSTALL_HINT = "pip install 'clothparse[gpu]'"

ProviderList = list[tuple[str, dict[str, Any]]]


def trt_cache_dirs(model_path: str | Path, model_sha256: str) -> tuple[Path, Path]:
    """(engine cache folder, timing cache folder) for ``model_path`` (see module docstring)."""
    model_path = Path(model_path)
    if len(model_sha256) < 16:
        raise ValueError(f"expected a SHA-256 hex digest, got {model_sha256!r}")
    root = model_path.with_name(model_path.name + ".trt_cache")
    return root / f"engines-{model_sha256[:16]}", root / "timing"


def _trt_options(device_id: int, model_path: str | Path | None, model_sha256: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"device_id": device_id}
    if model_path is None:
        return options  # nowhere to keep caches: every session builds its engine afresh
    if model_sha256 is None:
        from clothparse.contract.sidecar import sha256_file

        model_sha256 = sha256_file(model_path)
    engine_dir, timing_dir = trt_cache_dirs(model_path, model_sha256)
    try:
        # The EP creates only the last folder of a cache path itself, so make both here.
        engine_dir.mkdir(parents=True, exist_ok=True)
        timing_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("TensorRT EP caches disabled (cannot create %s: %s)", engine_dir, exc)
        return options
    options.update(
        trt_engine_cache_enable=True,
        trt_engine_cache_path=str(engine_dir),
        trt_timing_cache_enable=True,
        trt_timing_cache_path=str(timing_dir),
    )
    return options


def choose_providers(
    available: Sequence[str],
    device: str = "auto",
    *,
    model_path: str | Path | None = None,
    model_sha256: str | None = None,
) -> ProviderList:
    """(provider name, options) pairs for ``InferenceSession(providers=...)``, best first.

    available: ``onnxruntime.get_available_providers()``.
    device: cpu -> CPU EP only; auto -> every GPU provider available (on GPU 0), then CPU;
    cuda / cuda:N -> the GPU providers on GPU N (DependencyError when there are none).
    model_path / model_sha256: where the TensorRT EP keeps its caches (module docstring);
    the hash is computed from the file when not given (the sidecar already has it).
    """
    kind, index = parse_device(device)
    if kind == "cpu":
        return [(CPU_EP, {})]
    gpus = [p for p in GPU_PROVIDERS if p in available]
    if kind == "cuda" and not gpus:
        raise DependencyError(f"--device {device}: this onnxruntime has no GPU provider ({GPU_INSTALL_HINT})")
    device_id = 0 if index is None else int(index)
    chosen: ProviderList = []
    for name in gpus:
        if name == TRT_EP:
            chosen.append((name, _trt_options(device_id, model_path, model_sha256)))
        else:
            chosen.append((name, {"device_id": device_id}))
    # The CPU EP stays last: nodes the GPU providers do not take run there.
    chosen.append((CPU_EP, {}))
    return chosen


def split_providers(chosen: ProviderList) -> tuple[list[str], list[dict[str, Any]]]:
    """``choose_providers`` output -> (providers, provider_options), the two-list form of
    ``InferenceSession``; the list of pairs can also be passed as ``providers`` directly."""
    return [name for name, _ in chosen], [dict(opts) for _, opts in chosen]
