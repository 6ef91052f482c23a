"""Torch device selection shared by training, evaluation, engines and benchmarks."""

from __future__ import annotations

import torch

from clothparse.errors import ConfigError


def parse_device(device: str) -> tuple[str, int | None]:
    """``device`` -> ("auto", None), ("cpu", None) or ("cuda", index or None), without asking
    whether torch can use CUDA (onnxruntime's GPU providers decide that for the onnx engine).

    Raises ConfigError (one line) for an unknown device or an accelerator other than CUDA.
    """
    name = str(device).strip().lower()
    if name == "auto":
        return "auto", None
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device}: clothparse runs on cpu or cuda[:N]")
    return dev.type, dev.index


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else must be a valid torch device.

    Raises ConfigError (one line) for an unknown device or CUDA asked for on a machine without it.
    """
    if isinstance(device, torch.device):
        return device
    kind, index = parse_device(device)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(kind, index) if index is not None else torch.device(kind)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    return dev
