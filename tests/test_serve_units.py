"""`cpt serve`'s parts alone: the byte-bounded LRU, the batcher, admission (503), uploads, metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers_serve import TestClient, make_parser, photo, tiny_models

from clothparse.parse.pipeline import Parser
from clothparse.serve.batcher import Batcher, QueueFull, Slots
from clothparse.serve.cache import CachedResult, ResultCache
from clothparse.serve.metrics import Metrics, parse_samples
from clothparse.serve.service import ServeConfig
from clothparse.serve.uploads import UploadError, clean_name, read_body

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with")


@dataclass
class _Fake:
    """A ParseResult stand-in: only its arrays count."""

    label_map: np.ndarray


def _entry(nbytes: int) -> CachedResult:
    return CachedResult(_Fake(np.zeros(nbytes, np.uint8)), np.zeros((0, 0, 3), np.uint8), b"", [])  # type: ignore[arg-type]


def test_cache_lru_by_bytes() -> None:
    cache = ResultCache(3 * 10_000 + 3 * 4096)
    ids = [cache.put(_entry(10_000)) for _ in range(3)]
    assert len(cache) == 3 and cache.nbytes == 3 * (10_000 + 4096)
    assert cache.get(ids[0]) is not None  # now the most recent: ids[1] goes first
    new = cache.put(_entry(10_000))
    assert cache.get(ids[1]) is None and cache.get(ids[0]) is not None and cache.get(new) is not None
    assert cache.nbytes <= cache.capacity and cache.evictions == 1
    huge = cache.put(_entry(10**6))  # larger than the whole budget: not kept, the others stay
    assert cache.get(huge) is None and len(cache) == 3 and cache.get(new) is not None


def test_cache_counts_real_entry_bytes(tmp_path: Path) -> None:
    from clothparse.parse.outputs import encode_result
    from clothparse.serve.cache import entry_nbytes

    parser = make_parser(*tiny_models(tmp_path))
    image = photo(1)[0]
    result = parser.parse(image)
    enc = encode_result(result, image, "x")
    entry = CachedResult(result, image, enc.labels_png, [])
    assert entry_nbytes(entry) >= image.nbytes + result.label_map.nbytes + result.sp_labels.nbytes + len(enc.labels_png)


def test_batcher_groups_and_survives_errors() -> None:
    seen: list[int] = []

    def detect(items: list[int]) -> list[int]:
        seen.append(len(items))
        if -1 in items:
            raise RuntimeError("model failed")
        return [i * 10 for i in items]

    def finish(item: int, det: int, waited: float) -> int:
        if item == 7:
            raise ValueError("post failed")
        return det + 1

    b: Batcher[int, int, int] = Batcher(detect, finish, max_batch=3, max_wait_s=0.3, workers=2)
    b.start()
    try:
        futs = [b.submit(i) for i in range(5)]
        assert [f.result(10) for f in futs] == [1, 11, 21, 31, 41]
        assert seen[:2] == [3, 2]
        bad = b.submit(-1)
        with pytest.raises(RuntimeError):
            bad.result(10)
        with pytest.raises(ValueError):
            b.submit(7).result(10)
        assert b.submit(2).result(10) == 21  # still serving
        assert b.metrics.batch_size.count == len(seen)
    finally:
        b.close()


def test_batcher_drops_cancelled() -> None:
    gate = threading.Event()
    ran: list[list[int]] = []

    def detect(items: list[int]) -> list[int]:
        gate.wait(10)
        ran.append(items)
        return items

    b: Batcher[int, int, int] = Batcher(detect, lambda i, d, w: d, max_batch=1, max_wait_s=0.0, workers=1)
    b.start()
    try:
        first = b.submit(1)
        time.sleep(0.1)  # the model thread holds item 1
        second = b.submit(2)
        assert second.cancel()
        gate.set()
        assert first.result(10) == 1
        assert b.submit(3).result(10) == 3
        assert ran == [[1], [3]]
    finally:
        b.close()


def test_slots() -> None:
    s = Slots(2)
    s.acquire()
    s.acquire()
    with pytest.raises(QueueFull, match="--max-queue 2"):
        s.acquire()
    s.release()
    s.acquire()
    assert s.used == 2


def test_metrics_text_format() -> None:
    m = Metrics()
    m.observe_request("GET", "/x", 200, 0.003)
    m.observe_batch(3)
    m.observe_stages({"fusion": 0.02})
    m.gauges["queue_depth"] = ("help", lambda: 5)
    text = m.render()
    s = parse_samples(text)
    assert s['cpt_requests_total{route="/x",method="GET",status="200"}'] == 1
    assert s['cpt_batch_size_bucket{le="2"}'] == 0 and s['cpt_batch_size_bucket{le="4"}'] == 1
    assert s['cpt_batch_size_bucket{le="+Inf"}'] == 1 and s["cpt_batch_size_sum"] == 3
    assert s['cpt_stage_duration_seconds_count{stage="fusion"}'] == 1 and s["cpt_queue_depth"] == 5
    assert "# TYPE cpt_batch_size histogram" in text and text.endswith("\n")


def test_clean_name() -> None:
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\photos\\a b.jpg") == "a b.jpg"
    assert clean_name("x\ny.png") == "x y.png"
    assert clean_name("") == "upload" and clean_name(None) == "upload"


def test_disconnect_mid_upload_is_499() -> None:
    from starlette.requests import Request

    messages = [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "headers": [], "path": "/v1/parse", "query_string": b""}
    with pytest.raises(UploadError) as err:
        asyncio.run(read_body(Request(scope, receive), 1000, "x.png"))
    assert err.value.status == 499


class _GatedEngine:
    """An engine wrapper whose ``infer`` waits for ``gate``: holds requests in the server."""

    def __init__(self, inner, gate: threading.Event) -> None:
        self.inner, self.gate = inner, gate

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def infer(self, images):
        self.gate.wait(30)
        return self.inner.infer(images)


def test_full_queue_503_retry_after(tmp_path: Path) -> None:

    from clothparse.serve.app import create_app

    base = make_parser(*tiny_models(tmp_path))
    gate = threading.Event()
    parser = Parser(_GatedEngine(base.clothing, gate), None, None)  # type: ignore[arg-type]
    app = create_app(parser, ServeConfig(max_queue=2, max_batch=1, max_wait_ms=0, warmup=False))
    data = photo(1)[1]
    with TestClient(app) as c:
        out: list = []
        held = [threading.Thread(target=lambda: out.append(c.post("/v1/parse?no_superpixel=1", content=data)))
                for _ in range(2)]
        for t in held:
            t.start()
        service = app.state.service
        deadline = time.monotonic() + 10
        while service.slots.used < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.post("/v1/parse?no_superpixel=1", content=data)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "--max-queue 2" in r.json()["detail"]
        gate.set()
        for t in held:
            t.join()
        assert [o.status_code for o in out] == [200, 200]
        assert service.slots.used == 0
        assert c.post("/v1/parse?no_superpixel=1", content=data).status_code == 200
        samples = parse_samples(c.get("/metrics").text)
        assert samples['cpt_rejected_total{reason="queue_full"}'] == 1
        assert samples['cpt_requests_total{route="/v1/parse",method="POST",status="503"}'] == 1


class _Thresh:
    """An engine stand-in with a score threshold and ModaNet classes."""

    def __init__(self, inner, score_thresh: float) -> None:
        self.inner, self.score_thresh = inner, score_thresh

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_refiners_check_and_reuse(tmp_path: Path) -> None:
    from clothparse.errors import ConfigError
    from clothparse.serve.options import MAX_REFINERS, ParseOptions, Refiners

    base = make_parser(*tiny_models(tmp_path))
    refiners = Refiners(Parser(_Thresh(base.clothing, 0.3), base.body, base.superpixels, body_score_thresh=0.2))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"below the server.s clothing threshold 0\.3"):
        refiners.check(ParseOptions(score_thresh=0.1))
    with pytest.raises(ConfigError, match=r"body threshold 0\.2"):
        refiners.check(ParseOptions(body_score_thresh=0.1))
    refiners.check(ParseOptions(score_thresh=0.5, body_score_thresh=0.2))
    a = refiners.get(ParseOptions(vote="soft"))
    assert refiners.get(ParseOptions(vote="soft", score_thresh=0.9)) is a and a.params.vote == "soft"
    assert refiners.get(ParseOptions(no_superpixel=True)).superpixels is None
    for n in range(MAX_REFINERS + 5):
        refiners.get(ParseOptions(n_segments=n + 1))
    assert len(refiners._parsers) == MAX_REFINERS
    with pytest.raises(ConfigError, match="pixel level"):
        Refiners(Parser(base.clothing, None, None)).check(ParseOptions())
