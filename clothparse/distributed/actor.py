"""The Ray Data stages of ``cpt parse --ray``: read a photo's bytes, and the parsing actor.

``read_sources`` (Ray Data tasks) turns rows ``index, path, name`` into the same rows plus
``data`` (the encoded file, binary) or ``read_error`` (the one-line message), so the object
store carries encoded bytes only. ``PhotoParser`` (a Ray Data actor, one ``Parser`` built
once per actor) decodes, runs the model ``batch`` photos at a time, refines, encodes and
writes each photo exactly like ``cpt parse`` (``clothparse.parse.stream.run_sequential`` with
the same stages, ``encode_result``, ``write_outputs``), and returns one small result row per
photo (``clothparse.distributed.results``); decoded images never leave the actor.

A photo whose three outputs already exist when the actor reaches it was written by an
earlier attempt of this run (the driver leaves out photos done before the run), e.g. before
the actor crashed and Ray retried its batch: it is not parsed or written again.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.cli.errors import format_error
from clothparse.distributed.manifest import outputs_exist, read_bytes
from clothparse.distributed.results import Row, make_row, rows_table
from clothparse.errors import DataError, is_expected
from clothparse.io.images import decode_rgb
from clothparse.parse.batch import as_cpt_error, output_files, read_record, write_outputs
from clothparse.parse.build import EngineChoice, build_parser
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.outputs import OverlayOptions, encode_result
from clothparse.parse.pipeline import Detected, Parser
from clothparse.parse.stream import Done, Stages, run_sequential
from clothparse.parse.superpixels import SlicParams
from clothparse.parse.threads import numba_guard, with_slic_threads

#: Test hook, read by the driver: ``NAME=MARKER`` makes the actor exit (``os._exit``) right
#: after writing photo NAME's outputs, once: it first writes MARKER with NAME.json's
#: ``st_ino st_mtime_ns``, so a test can tell whether the file was written again later.
#: ``NAME=always`` kills it on NAME every time, before the write (the attempt cap's test).
CRASH_HOOK_ENV = "CPT_RAY_CRASH_AFTER"


@dataclass(frozen=True)
class ParserSpec:
    """Everything ``cpt parse`` builds its ``Parser`` from, sent to each actor (pickled), which
    builds it once with ``cmd_parse.build_parser``. Model paths are used as given: on a
    cluster they must name the same files on every node (a shared filesystem, or paths
    relative to a runtime environment's ``working_dir``)."""

    model: Path
    body_model: Path | None
    how: EngineChoice
    score_thresh: float | None
    body_score_thresh: float
    sp_backend: str | None
    fusion: FusionParams
    slic: SlicParams
    batch: int = 1
    quiet: bool = True

    def build(self, threads: int, device: str) -> Parser:
        """The ``Parser`` on ``device`` with ``threads`` CPU threads for the engine (unless
        ``--threads`` set them) and the native SLIC (0: the runtimes' defaults)."""
        how = replace(self.how, device=device, threads=self.how.threads or threads)
        parser = build_parser(self.model, self.body_model, how, self.score_thresh, self.body_score_thresh,
                               self.sp_backend, self.fusion, self.slic, self.batch, self.quiet)
        parser.superpixels = with_slic_threads(parser.superpixels, threads)
        return parser


def read_sources(table: Any) -> Any:
    """Ray Data task: pyarrow Table ``index, path, name`` -> the same plus ``data`` (binary,
    the file's bytes; null on failure) and ``read_error`` (string; null on success)."""
    import pyarrow as pa

    data: list[bytes | None] = []
    errors: list[str | None] = []
    for path in table.column("path").to_pylist():
        try:
            data.append(read_bytes(path))
            errors.append(None)
        except Exception as exc:
            if not is_expected(exc):
                raise
            data.append(None)
            errors.append(format_error(as_cpt_error(exc, Path(path))))
    return table.append_column("data", pa.array(data, pa.binary())).append_column(
        "read_error", pa.array(errors, pa.string()))


@dataclass(frozen=True)
class _Photo:
    """One photo in an actor: its row fields and encoded bytes."""

    index: int
    path: str
    name: str
    data: bytes


@dataclass
class _Decoded:
    """A decoded photo: RGB uint8 [H, W, 3] and the seconds its decoding took."""

    image: np.ndarray
    decode_s: float


def set_thread_budget(threads: int) -> None:
    """Limit torch's intra-op pool and Numba's fusion kernels in this process to ``threads``
    (0: leave them). ONNX Runtime/OpenVINO get theirs through ``EngineChoice.threads`` and the
    native SLIC through ``with_slic_threads``."""
    if threads <= 0:
        return
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(max(1, min(threads, int(numba.config.NUMBA_NUM_THREADS))))  # type: ignore[attr-defined]


#: Attempts at one photo before it becomes an error row: a photo that kills its actor every
#: time (a crash in native code) would otherwise be retried by Ray for ever.
MAX_ATTEMPTS = 3


class PhotoParser:
    """Ray Data actor: pyarrow batches of ``read_sources`` rows in, result rows out.

    ``threads``: the CPU threads this actor may use (it requests as many CPUs from Ray);
    ``device``: ``cpu``, or ``cuda`` in an actor that holds a GPU (Ray sets
    ``CUDA_VISIBLE_DEVICES``); ``crash_hook``: ``CRASH_HOOK_ENV``'s value (tests)."""

    def __init__(self, spec: ParserSpec, out_dir: str, options: OverlayOptions, threads: int, device: str,
                 crash_hook: str | None = None) -> None:
        set_thread_budget(threads)
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.options = options
        self.parser = spec.build(threads, device)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.crash_hook = crash_hook

    def __call__(self, table: Any) -> Any:
        rows: list[Row] = []
        photos: list[_Photo] = []
        for r in table.to_pylist():
            if r["read_error"] is not None:
                rows.append(make_row(r["index"], r["path"], r["name"], "error", r["read_error"], worker=self.worker))
            else:
                photos.append(_Photo(r["index"], r["path"], r["name"], r["data"]))
        stages = Stages(self._load, self._detect, self._finish, is_expected)
        for res in run_sequential(photos, stages, max(1, self.spec.batch)):  # a bug propagates: the job fails
            p = res.item
            self._attempts_file(p.name).unlink(missing_ok=True)  # it ended: no crash to count
            if res.error is not None:
                message = format_error(as_cpt_error(res.error, Path(p.path)))
                rows.append(make_row(p.index, p.path, p.name, "error", message, worker=self.worker))
            else:
                rows.append(make_row(p.index, p.path, p.name, "ok", record=res.value, worker=self.worker))
        return rows_table(rows)

    def _load(self, photo: _Photo) -> _Decoded | Done[dict[str, Any]]:
        if outputs_exist(self.out_dir, photo.name):  # written by an earlier attempt of this batch
            return Done(read_record(output_files(self.out_dir, photo.name)[0]))
        self._count_attempt(photo)
        t0 = time.perf_counter()
        image = decode_rgb(photo.data, photo.path)
        return _Decoded(image, time.perf_counter() - t0)

    def _attempts_file(self, name: str) -> Path:
        return self.out_dir / f".{name}.attempts"

    def _count_attempt(self, photo: _Photo) -> None:
        """Count one more attempt at ``photo`` in a file next to its outputs; an attempt whose
        actor died leaves its count behind. DataError (an error row) at ``MAX_ATTEMPTS``.
        With ``--batch B`` > 1 a crash counts against every photo of its engine batch."""
        f = self._attempts_file(photo.name)
        try:
            n = int(f.read_text())
        except (FileNotFoundError, ValueError):
            n = 0
        if n >= MAX_ATTEMPTS:
            raise DataError(f"parsing this photo crashed the worker {n} times; left out", photo.path)
        f.write_text(f"{n + 1}\n")

    def _detect(self, loaded: list[_Decoded]) -> list[Detected]:
        return self.parser.detect_batch([d.image for d in loaded], [d.decode_s for d in loaded])

    def _finish(self, photo: _Photo, loaded: _Decoded, detected: Detected) -> dict[str, Any]:
        self._maybe_crash(photo.name, before_write=True)
        with numba_guard():
            result = self.parser.refine(loaded.image, detected)
        enc = encode_result(result, loaded.image, photo.path, self.options)
        write_outputs(self.out_dir, photo.name, enc)
        self._maybe_crash(photo.name, before_write=False)
        return enc.record

    def _maybe_crash(self, name: str, before_write: bool) -> None:
        """Tests: ``NAME=MARKER`` dies once, after writing NAME; ``NAME=always`` dies on NAME
        every time, before writing it."""
        if not self.crash_hook:
            return
        target, _, marker = self.crash_hook.partition("=")
        if target != name or not marker:
            return
        if marker == "always":
            if before_write:
                os._exit(1)
            return
        if before_write or Path(marker).exists():
            return
        st = output_files(self.out_dir, name)[0].stat()
        Path(marker).write_text(f"{st.st_ino} {st.st_mtime_ns}\n")
        os._exit(1)

