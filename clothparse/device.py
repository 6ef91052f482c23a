"""Torch device selection shared by training, evaluation, engines and benchmarks."""

from __future__ import annotations

import torch

from clothparse.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else must be a valid torch device.

    Raises ConfigError (one line) for an unknown device or CUDA asked for on a machine without it.
    """
    if isinstance(device, torch.device):
        return device
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    return dev
