"""Batch parsing: expand inputs, parse each photo in isolation, write outputs all-or-nothing.

Per photo ``NAME``: ``NAME_labels.png``, ``NAME_overlay.png`` and ``NAME.json`` are
encoded in memory first and written (each atomically) only once everything for that
photo succeeded; the JSON goes last, so its presence means the photo is complete. An
expected failure in one photo (a ``CptError`` such as an undecodable file, an OS error while
writing, running out of memory) is reported and the batch goes on. Any other exception is a
bug, not a property of the photo: it stops the batch at once and propagates, so the CLI
reports it once as an internal error instead of failing every photo the same way. The batch
ends with ``results_coco.json`` (COCO results ``cpt eval --results`` reads).

Photos stream through a decoding thread, the model thread (``batch`` photos per engine
call) and a pool of post-model threads (``clothparse.parse.stream``); outcomes, callbacks
and ``results_coco.json`` follow the input order. ``workers=0`` runs the same stages on the
calling thread, photo after photo, and writes the same bytes.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.data.coco_json import read_coco_json
from clothparse.engines.base import Engine
from clothparse.errors import ConfigError, CptError, DataError, is_expected
from clothparse.io.atomic import atomic_open, write_bytes, write_json
from clothparse.io.images import IMAGE_SUFFIXES, read_rgb
from clothparse.parse.outputs import EncodedImage, OverlayOptions, encode_result
from clothparse.parse.pipeline import Detected, Parser
from clothparse.parse.stream import Done, Stages, run_pipelined, run_sequential
from clothparse.parse.threads import (
    ThreadPlan,
    engine_threads,
    init_worker,
    numba_guard,
    plan_threads,
    with_slic_threads,
)

RESULTS_NAME = "results_coco.json"
_GLOB_CHARS = set("*?[")


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[CptError]]:
    """Files, folders (their images, sorted, not recursive) and globs -> (unique paths, errors).

    A file named explicitly is kept whatever its suffix (decoding decides); folders and
    globs contribute only files with an image suffix. Inputs that match nothing become
    errors, so the caller can report them and still parse the rest.
    """
    paths: list[Path] = []
    errors: list[CptError] = []
    for raw in inputs:
        text = str(raw)
        p = Path(text)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                errors.append(DataError("folder holds no images", p))
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        elif _GLOB_CHARS & set(text):
            found = sorted(
                Path(q) for q in glob.glob(text, recursive=True)
                if Path(q).is_file() and Path(q).suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                errors.append(DataError("pattern matches no images", text))
            paths.extend(found)
        else:
            errors.append(DataError("no such file or folder", p))
    unique: dict[str, Path] = {}
    for q in paths:
        unique.setdefault(str(q.resolve()), q)
    return list(unique.values()), errors


def output_names(paths: Sequence[Path]) -> list[str]:
    """One output name per input: the file stem, made unique (``stem-2``, ...) on clashes
    (the batch file's stem counts as taken, so no photo overwrites ``results_coco.json``)."""
    seen: Counter[str] = Counter({Path(RESULTS_NAME).stem: 1})
    names = []
    for p in paths:
        seen[p.stem] += 1
        names.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return names


def drop_own_outputs(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """``paths`` without the label/overlay PNGs a previous run wrote into ``out_dir``
    (``cpt parse photos/ --out photos/`` must not parse its own outputs next time)."""
    out = out_dir.resolve()
    return [
        p for p in paths
        if not (p.resolve().parent == out and p.name.endswith(("_labels.png", "_overlay.png")))
    ]


def output_files(out_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """(json, labels png, overlay png) of one photo."""
    return out_dir / f"{name}.json", out_dir / f"{name}_labels.png", out_dir / f"{name}_overlay.png"


def load_image_ids(ann_path: str | Path) -> dict[str, int]:
    """file_name -> image id from a COCO annotation file (also keyed by base name when unique).

    Read with ``read_coco_json`` (every image needs an ``id`` and a ``file_name``).
    """
    doc = read_coco_json(ann_path, image_fields=("id", "file_name"))
    pairs = [(str(im["file_name"]), int(im["id"])) for im in doc["images"]]
    ids = dict(pairs)
    base = Counter(Path(f).name for f, _ in pairs)
    for f, i in pairs:
        if base[Path(f).name] == 1:
            ids.setdefault(Path(f).name, i)
    return ids


def image_id_for(path: Path, ids: dict[str, int]) -> int | None:
    """The id of ``path`` in ``ids``: matched on its last one or more path components."""
    parts = path.parts
    for k in range(len(parts), 0, -1):
        key = "/".join(parts[-k:])
        if key in ids:
            return ids[key]
    return None


def coco_records(record: dict[str, Any], image_id: int) -> list[dict[str, Any]]:
    """COCO results (category_id, bbox xywh, score, RLE segmentation) from a per-image record.

    Items whose refined mask is empty are left out: there is nothing to match.
    """
    out = []
    for it in record["items"]:
        if it["area"] <= 0:
            continue
        x1, y1, x2, y2 = it["box"]
        out.append(
            {
                "image_id": image_id,
                "category_id": int(it["class_id"]),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": it["score"],
                "segmentation": it["mask"],
            }
        )
    return out


@dataclass
class Outcome:
    """What happened to one input: ``ok``, ``skipped`` (outputs existed) or ``failed``.

    ``record`` (the photo's JSON record) is set while ``on_done`` sees the outcome; the
    summary keeps only ``item_classes`` (its items with a non-empty mask) and
    ``timings_ms``, so a batch's memory does not grow with its photos' masks."""

    path: Path
    name: str
    status: str
    error: CptError | None = None
    record: dict[str, Any] | None = None
    item_classes: tuple[str, ...] = ()
    timings_ms: dict[str, float] | None = None

    def settle(self) -> None:
        """Keep the summary fields of ``record`` and drop the record."""
        if self.record is not None:
            self.item_classes = tuple(it["class"] for it in self.record["items"] if it["area"] > 0)
            self.timings_ms = self.record.get("timings_ms")
            self.record = None


@dataclass
class BatchSummary:
    """Counts of a batch run, for the summary table and the exit code."""

    outcomes: list[Outcome] = field(default_factory=list)
    input_errors: list[CptError] = field(default_factory=list)
    results_path: Path | None = None
    missing_ids: list[Path] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count("failed") + len(self.input_errors)

    def items_per_class(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for o in self.outcomes:
            c.update(o.item_classes)
        return c

    def mean_timings_ms(self) -> dict[str, float]:
        """Mean per-stage milliseconds over the photos parsed in this run (not skipped ones)."""
        done = [o.timings_ms for o in self.outcomes if o.status == "ok" and o.timings_ms]
        if not done:
            return {}
        return {k: sum(t[k] for t in done) / len(done) for k in done[0]}


def as_cpt_error(exc: BaseException, path: Path) -> CptError:
    """A one-line error naming ``path``; the original stays as ``__cause__`` for CPT_DEBUG tracebacks."""
    if isinstance(exc, CptError) and exc.path:
        return exc
    if isinstance(exc, CptError):
        err = CptError(str(exc), path)
    elif isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        err = CptError("out of memory while parsing this image", path)
    elif isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        err = CptError(f"{exc.strerror}{where}", path)
    else:
        err = CptError(f"{type(exc).__name__}: {exc}", path)
    err.__cause__ = exc
    return err


def engine_batch(engine: Engine) -> int | None:
    """The fixed batch of an exported engine (its first input's first dimension), None when
    the engine takes any number of photos per call (torch)."""
    first = engine.input_specs[0].shape[0]
    return first if isinstance(first, int) else None


@dataclass(frozen=True)
class _Photo:
    """One input of the batch: its position, path and output name."""

    index: int
    path: Path
    name: str


@dataclass
class _Decoded:
    """A decoded photo: RGB uint8 [H, W, 3] and the seconds its decoding took."""

    image: np.ndarray
    decode_s: float


class _PhotoStages:
    """The stages of ``clothparse.parse.stream`` for photos: decode (or reuse existing
    outputs), the model half of ``Parser``, then superpixels + fusion + encoding + writing."""

    def __init__(self, parser: Parser, out_dir: Path, options: OverlayOptions, skip_existing: bool) -> None:
        self.parser = parser
        self.out_dir = out_dir
        self.options = options
        self.skip_existing = skip_existing

    def load(self, photo: _Photo) -> _Decoded | Done[dict[str, Any]]:
        files = output_files(self.out_dir, photo.name)
        if self.skip_existing and all(f.is_file() for f in files):
            return Done(read_record(files[0]))
        t0 = time.perf_counter()
        image = read_rgb(photo.path)
        return _Decoded(image, time.perf_counter() - t0)

    def detect(self, loaded: list[_Decoded]) -> list[Detected]:
        return self.parser.detect_batch([d.image for d in loaded], [d.decode_s for d in loaded])

    def finish(self, photo: _Photo, loaded: _Decoded, detected: Detected) -> dict[str, Any]:
        """Refine, encode and write one photo; returns its JSON record. Raises on failure,
        leaving none of its outputs behind."""
        with numba_guard():
            result = self.parser.refine(loaded.image, detected)
        enc = encode_result(result, loaded.image, str(photo.path), self.options)
        write_outputs(self.out_dir, photo.name, enc)
        return enc.record

    def stages(self) -> Stages[_Photo, _Decoded, Detected, dict[str, Any]]:
        return Stages(self.load, self.detect, self.finish, is_expected)


def write_outputs(out_dir: Path, name: str, enc: EncodedImage) -> None:
    """Write one photo's three files, each atomically, the JSON last; all three or none."""
    json_path, labels_path, overlay_path = output_files(out_dir, name)
    written: list[Path] = []
    try:
        for target, data in ((labels_path, enc.labels_png), (overlay_path, enc.overlay_png)):
            write_bytes(target, data)
            written.append(target)
        write_json(json_path, enc.record, indent=None)  # compact: polygons run to thousands of numbers
    except BaseException:
        for p in written:  # all three or none
            with contextlib.suppress(OSError):
                p.unlink()
        raise


def run_batch(
    parser: Parser,
    paths: Sequence[Path],
    out_dir: Path,
    options: OverlayOptions = OverlayOptions(),
    skip_existing: bool = False,
    image_ids: dict[str, int] | None = None,
    on_error: Callable[[CptError], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    batch: int = 1,
    workers: int | ThreadPlan | None = None,
) -> BatchSummary:
    """Parse ``paths`` into ``out_dir``; per-photo errors go to ``on_error`` and the batch goes on.

    Only expected per-photo errors (``clothparse.errors.is_expected``) are caught; any other exception
    propagates unchanged at the first photo it happens on (no ``results_coco.json`` then).

    ``image_ids`` (file name -> COCO image id, from ``--ann``) names the images in
    ``results_coco.json``; without it image ids are 1-based positions in ``paths``.
    With ``skip_existing`` a photo whose three outputs exist is not parsed again; its
    stored JSON still feeds ``results_coco.json`` so that file always covers the batch.

    ``batch`` photos go through the engines together. ``workers`` post-model threads
    (superpixels, fusion, encoding, writing) run beside a decoding thread and the model
    thread (``clothparse.parse.stream``; threads shared out by ``clothparse.parse.threads``);
    0 runs everything on this thread, photo after photo; None: ``DEFAULT_WORKERS``; a
    ``ThreadPlan`` sets every thread count. Both give byte-identical files, and
    ``on_error``/``on_done`` are called on this thread in input order.
    """
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    plan = workers if isinstance(workers, ThreadPlan) else plan_threads(workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = [_Photo(k, p, n) for k, (p, n) in enumerate(zip(paths, output_names(paths), strict=True))]
    if plan.workers:
        parser = copy.copy(parser)  # the same engines, SLIC limited to the workers' share
        parser.superpixels = with_slic_threads(parser.superpixels, plan.post_threads)
    stages = _PhotoStages(parser, out_dir, options, skip_existing).stages()
    summary = BatchSummary()
    summary.results_path = out_dir / RESULTS_NAME
    # results_coco.json is streamed into a temporary file (renamed over the old one at the
    # end, removed on a bug) so that its records never pile up in memory.
    with engine_threads(plan.engine), atomic_open(summary.results_path, "w") as coco_file:
        coco = JsonArrayWriter(coco_file)
        results = (
            run_pipelined(photos, stages, batch, plan.workers, partial(init_worker, plan.post_threads))
            if plan.workers else run_sequential(photos, stages, batch)
        )
        with contextlib.closing(results):
            for r in results:
                photo = r.item
                outcome = Outcome(photo.path, photo.name, "skipped" if r.done_at_load else "ok", record=r.value)
                if r.error is not None:
                    outcome.status = "failed"
                    outcome.error = as_cpt_error(r.error, photo.path)
                    if on_error is not None:
                        on_error(outcome.error)
                if outcome.record is not None:
                    image_id = photo.index + 1 if image_ids is None else image_id_for(photo.path, image_ids)
                    if image_id is None:
                        summary.missing_ids.append(photo.path)
                    else:
                        coco.extend(coco_records(outcome.record, image_id))
                if on_done is not None:
                    on_done(outcome)
                outcome.settle()
                summary.outcomes.append(outcome)
        coco.close()
    return summary


class JsonArrayWriter:
    """Writes a JSON array one element at a time, byte for byte as ``json.dumps(list) + "\n"``."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.first = True
        fh.write("[")

    def extend(self, values: Sequence[Any]) -> None:
        for v in values:
            self.fh.write(("" if self.first else ", ") + json.dumps(v))
            self.first = False

    def close(self) -> None:
        self.fh.write("]\n")


def read_record(path: Path) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record["items"], list):
            raise TypeError("items is not a list")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"existing output is unreadable ({type(exc).__name__}); delete it or drop --skip-existing", path) from None
    return record
