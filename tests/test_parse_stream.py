"""The pipelined `cpt parse`: the ordered stream (fake stages), byte-identical outputs against
the sequential path, errors and bugs in the middle of a stream, input order, bounded memory,
batching into fixed-batch engines, and the thread plan."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_parse import save_tiny, synthetic_photo
from PIL import Image

from clothparse.engines.torch_engine import TorchEngine
from clothparse.errors import ConfigError, CptError, DataError, ModelError, is_expected
from clothparse.parse import batch as batch_mod
from clothparse.parse.batch import RESULTS_NAME, Outcome, run_batch
from clothparse.parse.fusion import FusionParams
from clothparse.parse.pipeline import Parser, SlicParams
from clothparse.parse.stream import Done, Stages, run_pipelined, run_sequential
from clothparse.parse.superpixels import get_backend
from clothparse.parse.threads import (
    NativeSlicThreads,
    ThreadPlan,
    init_worker,
    plan_threads,
    with_slic_threads,
)

# ---------------------------------------------------------------- the stream, fake stages


def _cpt_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("cpt-")]


class Fake:
    """Stages over ints: load fails on ``bad``, is Done on ``done``; detect multiplies by 10
    (and fails for a batch holding ``refuse``); finish sleeps a little at random."""

    def __init__(self, bad=(), done=(), refuse=(), bug_at: tuple[str, int] | None = None) -> None:
        self.bad, self.done, self.refuse, self.bug_at = set(bad), set(done), set(refuse), bug_at
        self.groups: list[list[int]] = []
        self.lock = threading.Lock()
        self.finished: list[int] = []

    def _bug(self, stage: str, x: int) -> None:
        if self.bug_at == (stage, x):
            raise RuntimeError(f"bug in {stage} at {x}")

    def load(self, x: int):
        self._bug("load", x)
        if x in self.bad:
            raise DataError("cannot decode", f"photo{x}")
        return Done(-x) if x in self.done else x

    def detect(self, xs: list[int]) -> list[int]:
        with self.lock:
            self.groups.append(list(xs))
        for x in xs:
            self._bug("detect", x)
        if len(xs) > 0 and self.refuse & set(xs):
            raise ModelError("engine refused")
        return [x * 10 for x in xs]

    def finish(self, x: int, loaded: int, detected: int) -> tuple[int, int]:
        self._bug("finish", x)
        time.sleep(random.uniform(0, 0.004))
        with self.lock:
            self.finished.append(x)
        return (loaded, detected)

    def stages(self) -> Stages:
        return Stages(self.load, self.detect, self.finish, is_expected)


def _summary(results) -> list[tuple]:
    return [(r.item, r.value, None if r.error is None else str(r.error), r.done_at_load) for r in results]


@pytest.mark.parametrize(("batch", "workers"), [(1, 1), (3, 2), (4, 3)])
def test_stream_matches_sequential_in_order(batch: int, workers: int) -> None:
    random.seed(batch)
    items = list(range(23))
    kw = dict(bad={2, 11}, done={5, 6, 20}, refuse={14})
    seq, pipe = Fake(**kw), Fake(**kw)
    expected = _summary(run_sequential(items, seq.stages(), batch))
    got = _summary(run_pipelined(items, pipe.stages(), batch, workers))
    assert got == expected and [r[0] for r in got] == items
    assert pipe.groups == seq.groups and len(pipe.groups) > 3  # the same groups reach the model
    assert all(len(g) <= batch for g in pipe.groups)
    by_item = {r[0]: r for r in got}
    assert by_item[2][2] == "photo2: cannot decode" and by_item[5][1:] == (-5, None, True)
    assert by_item[14][2] == "engine refused" and by_item[13][1] == (13, 130)  # only 14 fails
    assert by_item[7][1] == (7, 70)
    assert not _cpt_threads()


def test_failed_batch_is_retried_one_by_one() -> None:
    fake = Fake(refuse={4})
    out = _summary(run_pipelined(range(6), fake.stages(), batch=3, workers=2))
    assert [r[2] for r in out] == [None, None, None, None, "engine refused", None]
    assert [3, 4, 5] in fake.groups and [3] in fake.groups and [5] in fake.groups


@pytest.mark.parametrize("stage", ["load", "detect", "finish"])
@pytest.mark.parametrize("pipelined", [False, True])
def test_bug_stops_the_stream_and_propagates(stage: str, pipelined: bool) -> None:
    fake = Fake(bug_at=(stage, 5))
    stream = (run_pipelined(range(40), fake.stages(), 1, 2) if pipelined
              else run_sequential(range(40), fake.stages(), 1))
    seen = []
    with pytest.raises(RuntimeError, match=f"bug in {stage} at 5"):
        for r in stream:
            seen.append(r.item)
    assert seen == [0, 1, 2, 3, 4]  # every earlier item, none after
    if stage != "finish":  # nothing after the bug reached the model
        assert max(x for g in fake.groups for x in g) <= 5
    assert not _cpt_threads()


def test_memory_stays_bounded_and_closing_joins_threads() -> None:
    alive = 0
    peak = 0
    lock = threading.Lock()

    def load(x: int) -> int:
        nonlocal alive, peak
        with lock:
            alive += 1
            peak = max(peak, alive)
        return x

    stages = Stages(load, lambda xs: xs, lambda x, lo, d: x, is_expected)
    batch, workers = 2, 2
    for r in run_pipelined(range(300), stages, batch, workers):
        time.sleep(0.001)  # a slow consumer: every queue fills up
        with lock:
            alive -= 1
        assert r.error is None
    assert batch < peak < 3 * batch + 2 * workers + 5
    stream = run_pipelined(range(300), stages, batch, workers)
    assert [next(stream).item for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert not _cpt_threads()


# ---------------------------------------------------------------- photos, tiny models

SIZES = [(160, 120), (128, 128), (100, 140), (96, 200), (150, 110)]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TorchEngine, TorchEngine]:
    d = tmp_path_factory.mktemp("models")
    clothing = TorchEngine.from_checkpoint(save_tiny(d / "clothing"), device="cpu")
    body = TorchEngine.from_checkpoint(save_tiny(d / "body", ["person"], seed=1), device="cpu")
    return d, clothing, body


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("photos")
    paths = []
    for k, (h, w) in enumerate(SIZES):
        p = d / f"p{k}.png"
        Image.fromarray(synthetic_photo(h, w, seed=k)).save(p)
        paths.append(p)
    return paths


def _parser(engines, backend: str = "auto") -> Parser:
    _, clothing, body = engines
    return Parser(clothing, body, get_backend(backend), FusionParams(), SlicParams(n_segments=60), body_score_thresh=0.0)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture()
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timings go into the JSON records: freeze them so whole files can be compared."""
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)


@pytest.mark.parametrize(("batch", "workers"), [(1, 1), (1, 2), (2, 2), (3, 1)])
def test_pipelined_writes_the_same_bytes(engines, photos, tmp_path: Path, frozen_clock, batch: int, workers: int) -> None:
    parser = _parser(engines)
    seq, pipe = tmp_path / "seq", tmp_path / "pipe"
    run_batch(parser, photos, seq, batch=batch, workers=0)
    summary = run_batch(parser, photos, pipe, batch=batch, workers=workers)
    assert summary.count("ok") == len(photos) and summary.items_per_class().total() > 0
    a, b = _files(seq), _files(pipe)
    assert len(a) == 3 * len(photos) + 1 and sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
    assert len(a[RESULTS_NAME]) > 10  # results_coco.json has detections in it


def test_corrupt_photo_in_the_middle(engines, photos, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    paths = [photos[0], photos[1], bad, photos[2], photos[3]]
    errors: list[CptError] = []
    done: list[Outcome] = []
    out = tmp_path / "out"
    summary = run_batch(_parser(engines), paths, out, on_error=errors.append, on_done=done.append, batch=2, workers=2)
    assert [e.path for e in errors] == [str(bad)] and str(errors[0]).startswith(f"{bad}: ")
    assert [o.path for o in done] == paths and [o.status for o in done] == ["ok", "ok", "failed", "ok", "ok"]
    assert summary.failed == 1 and not list(out.glob("broken*"))
    for p in (photos[0], photos[1], photos[2], photos[3]):
        assert all((out / f"{p.stem}{s}").is_file() for s in (".json", "_labels.png", "_overlay.png"))
    ids = {r["image_id"] for r in json.loads((out / RESULTS_NAME).read_text())}
    assert ids and 3 not in ids and ids <= {1, 2, 4, 5}


def test_bug_in_the_engine_stops_the_batch(engines, photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, clothing, _ = engines
    calls: list[int] = []

    def broken(images):
        calls.append(len(images))
        raise RuntimeError("engine bug")

    monkeypatch.setattr(clothing, "infer", broken)
    done: list[Outcome] = []
    with pytest.raises(RuntimeError, match="engine bug"):
        run_batch(_parser(engines), photos, tmp_path / "out", on_done=done.append, workers=2)
    assert calls == [1] and done == []  # stopped at the first photo, reported once
    assert not (tmp_path / "out" / RESULTS_NAME).exists() and not _cpt_threads()


def test_bug_after_the_model_stops_the_batch(engines, photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Parser.refine

    def refine(self, image, detected):
        if image.shape[:2] == SIZES[2]:
            raise KeyError("post-model bug")
        return real(self, image, detected)

    monkeypatch.setattr(Parser, "refine", refine)
    done: list[Outcome] = []
    with pytest.raises(KeyError, match="post-model bug"):
        run_batch(_parser(engines), photos, tmp_path / "out", on_done=done.append, workers=2)
    assert [o.path for o in done] == photos[:2]
    assert not (tmp_path / "out" / RESULTS_NAME).exists() and not _cpt_threads()


def test_input_order_with_a_slow_first_photo(engines, photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = batch_mod.encode_result
    finished: list[str] = []

    def slow_first(result, image, source, options):
        if source == str(photos[0]):
            time.sleep(1.0)
        enc = real(result, image, source, options)
        finished.append(source)
        return enc

    monkeypatch.setattr(batch_mod, "encode_result", slow_first)
    done: list[Outcome] = []
    summary = run_batch(_parser(engines), photos, tmp_path / "out", on_done=done.append, workers=2)
    assert finished[0] != str(photos[0])  # the others overtook it...
    assert [o.path for o in done] == photos  # ...but the outcomes keep the input order
    assert [o.path for o in summary.outcomes] == photos
    ids = [r["image_id"] for r in json.loads((tmp_path / "out" / RESULTS_NAME).read_text())]
    assert ids and ids == sorted(ids)


def test_skip_existing_in_the_pipeline(engines, photos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_batch(_parser(engines), photos, out, workers=2)
    (out / f"{photos[1].stem}_overlay.png").unlink()
    again = run_batch(_parser(engines), photos, out, skip_existing=True, workers=2)
    assert [o.status for o in again.outcomes] == ["skipped", "ok", "skipped", "skipped", "skipped"]
    assert again.items_per_class() == first.items_per_class() and sum(first.items_per_class().values()) > 0


def test_fixed_batch_export_is_fed_in_chunks(engines, photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export with a fixed batch 2 takes groups of 3 photos as a full and a padded call."""
    import torch
    from clothparse.export.exporter import ExportSpec, export_onnx_model

    from clothparse.config import ModelConfig
    from clothparse.engines.onnx_engine import OnnxEngine
    from clothparse.model.builder import build_model

    torch.manual_seed(0)
    cfg = ModelConfig.small(min_size=128, max_size=160, detections_per_img=12, score_thresh=0.0)
    path = tmp_path / "model.onnx"
    export_onnx_model(build_model(cfg, init="none").eval(), cfg.class_names, path, ExportSpec(batch=2))
    engine = OnnxEngine(path, device="cpu", threads=1)
    runs: list[int] = []
    real_run = engine.run_raw

    def counted(images, sizes):
        runs.append(int(images.shape[0]))
        return real_run(images, sizes)

    engine.run_raw = counted  # type: ignore[method-assign]
    _, _, body = engines
    parser = Parser(engine, body, get_backend("auto"), FusionParams(), SlicParams(n_segments=60), body_score_thresh=0.0)
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)  # whole files compared below
    pipe = run_batch(parser, photos, tmp_path / "pipe", batch=3, workers=2)
    assert runs == [2, 2, 2] and pipe.count("ok") == 5  # photos 1-3: 2 + 2 (padded), 4-5: 2
    seq = run_batch(parser, photos, tmp_path / "seq", batch=3, workers=0)
    assert seq.count("ok") == 5 and sum(len(o.item_classes) for o in seq.outcomes) > 0
    a, b = _files(tmp_path / "seq"), _files(tmp_path / "pipe")
    assert a == b and len(a) == 16


# ---------------------------------------------------------------- the thread plan


def test_thread_plan() -> None:
    assert plan_threads(0, cores=2) == ThreadPlan(0)
    assert plan_threads(1, cores=2) == ThreadPlan(1, engine=0, post_threads=2)
    assert plan_threads(2, cores=2) == ThreadPlan(2, engine=0, post_threads=1)
    assert plan_threads(3, cores=2).post_threads == 1
    assert plan_threads(None, cores=2).workers >= 1
    with pytest.raises(ConfigError, match="--workers"):
        plan_threads(-1)
    with pytest.raises(ConfigError):
        ThreadPlan(1, post_threads=-2)


def test_slic_threads_wrapper_gives_the_same_labels() -> None:
    assert with_slic_threads(None, 1) is None
    skimage = get_backend("skimage")
    assert with_slic_threads(skimage, 1) is skimage
    from clothparse.parse import slic_native

    if not slic_native.available():
        pytest.skip("the native SLIC is not built")
    native = get_backend("native")
    limited = with_slic_threads(native, 1)
    assert isinstance(limited, NativeSlicThreads) and limited.num_threads == 1
    image = synthetic_photo(120, 90, seed=7)
    labels = native.segment(image, 50)
    assert labels.max() > 10
    np.testing.assert_array_equal(limited.segment(image, 50), labels)


def test_numba_threads_are_set_per_worker() -> None:
    import numba

    before = numba.get_num_threads()
    seen: list[int] = []

    def worker() -> None:
        init_worker(1)
        seen.append(numba.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [1] and numba.get_num_threads() == before


@pytest.mark.parametrize("groups", [[], [[]], [[{"a": 1}]], [[{"a": 1}, {"b": [1.5, None]}], [], [{"c": "x"}]]])
def test_streamed_results_json_equals_a_dumped_list(groups: list[list[dict]]) -> None:
    """results_coco.json is written a photo at a time, byte for byte as the whole list dumped at once."""
    fh = io.StringIO()
    w = batch_mod.JsonArrayWriter(fh)
    for g in groups:
        w.extend(g)
    w.close()
    assert fh.getvalue() == json.dumps([v for g in groups for v in g]) + "\n"
