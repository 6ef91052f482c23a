"""Checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (metadata), no pickle.

The JSON holds ``format``, ``model_config`` (rebuilds the exact architecture),
``class_names``, ``image_mean``/``image_std`` (RGB, for images in [0, 1]) and ``train``
provenance (epoch, step, metrics, git commit, torch/torchvision versions). A run
folder holds ``last.*`` and ``best.*``; loading a folder loads ``best`` (else ``last``).

Resume state lives beside ``last``: optimizer tensors (SGD momentum buffers) in
``NAME.optim.safetensors``, its scalars (param groups, step, epoch) in the JSON.
Every file is written atomically; the weights are written before the JSON, so a JSON
never points at weights from an older save.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clothparse.config import ModelConfig
from clothparse.errors import CptError, ModelError
from clothparse.io.atomic import write_bytes, write_json

FORMAT = "clothparse-checkpoint/1"


@dataclass
class LoadedModel:
    """A checkpoint loaded for inference: ``model`` in eval mode on the requested device."""

    model: nn.Module
    config: ModelConfig
    meta: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.config.class_names)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Versions and git commit, for the ``train`` block of the metadata."""
    import torchvision

    return {
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    # safetensors refuses shared or non-contiguous storage; a detached contiguous copy is safe.
    return save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()})


def save_checkpoint(path_stem: str | Path, model: nn.Module, cfg: ModelConfig, meta: dict[str, Any]) -> Path:
    """Write ``stem.safetensors`` + ``stem.json``; returns the ``.safetensors`` path.

    ``meta`` is stored as the ``train`` block (epoch, step, metrics, ...); versions and
    the git commit are added. A ``resume`` key in ``meta`` is stored at the top level.
    """
    stem = Path(path_stem)
    weights = stem.with_name(stem.name + ".safetensors")
    meta = dict(meta)
    resume = meta.pop("resume", None)
    write_bytes(weights, _tensor_bytes(_unwrap(model).state_dict()))
    doc: dict[str, Any] = {
        "format": FORMAT,
        "weights": weights.name,
        "model_config": cfg.to_dict(),
        "class_names": list(cfg.class_names),
        "image_mean": list(cfg.image_mean),
        "image_std": list(cfg.image_std),
        "train": {**meta, **provenance()},
    }
    if resume is not None:
        doc["resume"] = resume
    write_json(stem.with_name(stem.name + ".json"), doc)
    return weights


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(weights, json) paths for a ``.safetensors``, a ``.json`` or a run folder."""
    p = Path(path)
    if p.is_dir():
        for name in ("best", "last"):
            if (p / f"{name}.safetensors").is_file():
                return p / f"{name}.safetensors", p / f"{name}.json"
        raise ModelError("run folder holds no best.safetensors or last.safetensors", p)
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    raise ModelError("not a checkpoint (expected a run folder, .safetensors or .json)", p)


def read_meta(json_path: str | Path) -> dict[str, Any]:
    """Parse and check a checkpoint JSON. Raises ``ModelError`` naming the file."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise ModelError("checkpoint metadata not found", json_path)
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"corrupt checkpoint metadata ({exc})", json_path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"not a clothparse checkpoint (format must be {FORMAT!r})", json_path)
    if not isinstance(doc.get("model_config"), dict):
        raise ModelError("metadata has no model_config", json_path)
    return doc


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file. Raises ``ModelError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("checkpoint weights not found", path)
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt headers/data
        raise ModelError(f"corrupt safetensors file ({type(exc).__name__}: {exc})", path) from None


def _check_match(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if bad:
            k = bad[0]
            parts.append(f"{len(bad)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise ModelError("weights do not match the metadata's model_config: " + "; ".join(parts), path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint for inference (model in eval mode on ``device``).

    ``path``: a ``.safetensors``, its ``.json``, or a run folder (``best``, else ``last``).
    Raises ``ModelError`` (one line naming the file) when a file is missing or corrupt,
    or when the weights do not fit the architecture the JSON describes.
    """
    from clothparse.model.builder import build_model

    weights, json_path = resolve_checkpoint(path)
    doc = read_meta(json_path)
    try:
        cfg = ModelConfig.from_dict(doc["model_config"])
    except (CptError, TypeError) as exc:
        raise ModelError(f"invalid model_config ({exc})", json_path) from None
    state = read_tensors(weights)
    model = build_model(cfg, init="none")
    _check_match(model, state, weights)
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    return LoadedModel(model=model, config=cfg, meta=doc)


def save_optimizer(path: str | Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Write the optimizer's tensors to ``path`` (safetensors); return its JSON-able rest."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{name}"] = v
            else:
                scalars.setdefault(str(idx), {})[name] = v
    write_bytes(path, _tensor_bytes(tensors))
    return {"param_groups": sd["param_groups"], "state_scalars": scalars, "file": Path(path).name}


def load_optimizer(path: str | Path, optimizer: torch.optim.Optimizer, info: dict[str, Any]) -> None:
    """Restore what ``save_optimizer`` wrote. Raises ``ModelError`` on a mismatch."""
    tensors = read_tensors(path)
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    for idx_s, st in info.get("state_scalars", {}).items():
        state.setdefault(int(idx_s), {}).update(st)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    except (KeyError, ValueError) as exc:
        raise ModelError(f"optimizer state does not match the model ({exc})", path) from None
