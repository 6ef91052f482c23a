"""Exceptions that carry a user-facing, one-line message.

Every error a user can cause (bad file, bad option, missing weights) is raised as a
``CptError`` subclass whose ``str()`` names the file and the problem. The CLI's one
error formatter (``clothparse.cli.errors``) prints it on one line; ``CPT_DEBUG=1``
adds the traceback.
"""

from __future__ import annotations

from pathlib import Path


class CptError(Exception):
    """Base class: an error the user can fix, with a one-line message."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class DataError(CptError):
    """A data file (image, annotation JSON, LMDB, label map) is missing or malformed."""


class ModelError(CptError):
    """A checkpoint or exported model is missing, corrupt or does not match its metadata."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights are neither cached nor reachable; the message says where to put them."""


class ConfigError(CptError):
    """An option or configuration value is invalid."""


class DependencyError(CptError):
    """An optional dependency (tensorrt, onnxruntime-gpu, native extension) is missing."""


def is_expected(exc: BaseException) -> bool:
    """True for errors a user's input or machine can cause (a ``CptError``, an OS error,
    running out of memory): reported as one line. False for everything else, which is a
    bug in cpt (the CLI reports it once as an internal error)."""
    return isinstance(exc, CptError | OSError | MemoryError) or type(exc).__name__ == "OutOfMemoryError"
