"""`cpt serve`'s HTTP API against the app object (no network): results equal `cpt parse`'s,
re-rendered views equal `render_view`, batching, and every error status."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers_serve import (
    N_SEGMENTS,
    TestClient,
    decode_png,
    make_parser,
    photo,
    png_bytes,
    tiny_models,
    wait_ready,
)

from clothparse.io.images import decode_rgb
from clothparse.parse.outputs import encode_result, label_png
from clothparse.parse.views import OverlayOptions, render_view
from clothparse.serve.app import create_app
from clothparse.serve.metrics import parse_samples
from clothparse.serve.service import ServeConfig

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with")
QUERY = {"n_segments": N_SEGMENTS}


@pytest.fixture(scope="module")
def parser(tmp_path_factory: pytest.TempPathFactory):
    return make_parser(*tiny_models(tmp_path_factory.mktemp("serve_models")))


@pytest.fixture(scope="module")
def client(parser):
    app = create_app(parser, ServeConfig(max_batch=4, max_wait_ms=400, max_queue=16, workers=2))
    with TestClient(app) as c:
        wait_ready(c)
        yield c


def _expected(parser, image: np.ndarray, name: str):
    """What `cpt parse` computes for ``image``: its ParseResult and JSON record."""
    result = parser.parse(image)
    return result, encode_result(result, image, name, OverlayOptions()).record


def _same_record(got: dict, want: dict) -> None:
    got = {k: v for k, v in got.items() if k not in ("id", "timings_ms")}
    want = {k: v for k, v in want.items() if k != "timings_ms"}
    assert got == want
    assert len(want["items"]) > 0 and len(want["label_counts"]) > 1  # not vacuous: clothing pixels


def test_parse_multipart_equals_cpt_parse(client, parser) -> None:
    image, data = photo(1)
    r = client.post("/v1/parse", params=QUERY, files={"file": ("one.png", data, "image/png")})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert len(rec["id"]) == 32
    _same_record(rec, _expected(parser, image, "one.png")[1])
    assert set(rec["timings_ms"]) >= {"decode", "clothing_model", "superpixels", "fusion", "encode"}


def test_parse_raw_body_and_options(client, parser) -> None:
    image, data = photo(2)
    r = client.post("/v1/parse", params={**QUERY, "name": "dir/two.png", "no_superpixel": 1}, content=data)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["image"]["file"] == "two.png" and rec["superpixels"] is False
    want = make_parser_like(parser, no_superpixel=True).parse(image)
    assert rec["items"] == encode_result(want, image, "two.png").record["items"]
    thr = sorted(it["score"] for it in rec["items"])[len(rec["items"]) // 2]
    r2 = client.post("/v1/parse", params={**QUERY, "score_thresh": thr, "vote": "centroid"}, content=data)
    assert r2.status_code == 200
    assert r2.json()["items"] and all(it["score"] >= thr for it in r2.json()["items"])
    assert len(r2.json()["items"]) < len(rec["items"])


def make_parser_like(parser, no_superpixel: bool = False):
    from clothparse.parse.pipeline import Parser

    return Parser(parser.clothing, parser.body, None if no_superpixel else parser.superpixels, parser.params,
                  parser.slic, body_score_thresh=parser.body_score_thresh)


def test_views_rerender_equal_render_view(client, parser) -> None:
    image, data = photo(3)
    rid = client.post("/v1/parse", params=QUERY, files={"file": ("three.png", data)}).json()["id"]
    result = parser.parse(image)
    labels = client.get(f"/v1/results/{rid}/labels.png")
    assert labels.status_code == 200 and labels.headers["content-type"] == "image/png"
    assert labels.content == label_png(result.label_map)
    cases = [
        ({}, OverlayOptions()),
        ({"view": "parse", "superpixels": 1, "unpredicted_only": 1, "boxes": 1},
         OverlayOptions(show_boxes=True, show_superpixels=True, unpredicted_only=True)),
        ({"view": "clothing", "boxes": 1}, OverlayOptions(view="clothing", show_boxes=True)),
        ({"view": "body", "detector_boxes": 1, "superpixels": 1},
         OverlayOptions(view="body", detector_boxes=True, show_superpixels=True)),
        ({"view": "parse", "detector_boxes": "true"}, OverlayOptions(detector_boxes=True)),
    ]
    before = parse_samples(client.get("/metrics").text)
    for query, opts in cases:
        r = client.get(f"/v1/results/{rid}/overlay.png", params=query)
        assert r.status_code == 200, (query, r.text)
        np.testing.assert_array_equal(decode_png(r.content), render_view(result, image, opts), err_msg=str(query))
    after = parse_samples(client.get("/metrics").text)
    assert after["cpt_batch_size_count"] == before["cpt_batch_size_count"]  # no model ran


def test_concurrent_requests_are_batched_and_correct(client, parser) -> None:
    photos = [photo(10 + i) for i in range(4)]
    before = parse_samples(client.get("/metrics").text)
    results: list = [None] * len(photos)

    def post(i: int) -> None:
        results[i] = client.post("/v1/parse", params=QUERY, files={"file": (f"p{i}.png", photos[i][1])})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(photos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A photo alone and in a batch differ in the last float bits (torch's batched convolutions), so a
    # response must equal exactly one of the two: never another photo's result.
    batched = parser.parse_batch([im for im, _ in photos])
    for i, r in enumerate(results):
        assert r.status_code == 200, r.text
        alone = _expected(parser, photos[i][0], f"p{i}.png")[1]
        together = encode_result(batched[i], photos[i][0], f"p{i}.png").record
        try:
            _same_record(r.json(), together)
        except AssertionError:
            _same_record(r.json(), alone)
    assert len({r.json()["id"] for r in results}) == len(photos)
    after = parse_samples(client.get("/metrics").text)
    calls = after["cpt_batch_size_count"] - before["cpt_batch_size_count"]
    photos_done = after["cpt_batch_size_sum"] - before["cpt_batch_size_sum"]
    assert photos_done == len(photos) and calls < len(photos)  # some engine call took > 1 photo
    assert after['cpt_requests_in_progress'] == 0


def test_health_ready_metrics_info(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    samples = parse_samples(text.text)
    for key in ("cpt_queue_depth", "cpt_cache_bytes", "cpt_batch_size_count", "cpt_ready"):
        assert key in samples
    assert any(k.startswith('cpt_stage_duration_seconds_count{stage="clothing_model"') for k in samples)
    assert any(k.startswith('cpt_requests_total{route="/v1/parse",method="POST",status="200"') for k in samples)
    assert client.get("/v1/info").json()["max_batch"] == 4
    classes = client.get("/v1/classes").json()
    assert len(classes) == 15 and classes[14]["name"] == "skin/body"
    assert client.get("/openapi.json").json()["paths"]["/v1/parse"]["post"]["requestBody"]


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"", "empty.png"), (b"not an image at all", "text.jpg"), (None, "cut.png")],
)
def test_bad_image_400_same_line_as_cpt_parse(client, data, name) -> None:
    if data is None:
        data = photo(4)[1][:200]  # truncated
    r = client.post("/v1/parse", params={"name": name}, content=data)
    assert r.status_code == 400
    try:
        decode_rgb(data, name)
    except Exception as exc:  # the message `cpt parse` prints for this file
        assert r.json()["detail"] == f"error: {exc}"
    else:
        raise AssertionError("decode_rgb accepted a bad photo")
    assert client.get("/healthz").status_code == 200


def test_multipart_without_file_400(client) -> None:
    r = client.post("/v1/parse", data={"note": "no file"}, files={"other": ("", b"")})
    assert r.status_code in (400,)
    assert r.json()["detail"].startswith("error: ")


def test_unknown_id_404(client) -> None:
    for path in ("labels.png", "overlay.png"):
        r = client.get(f"/v1/results/{'0' * 32}/{path}")
        assert r.status_code == 404
        assert "not found" in r.json()["detail"] and "evicted" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/parse", {"vote": "bogus"}),
        ("/v1/parse", {"score_thresh": 2}),
        ("/v1/parse", {"n_segments": 0}),
        ("/v1/parse", {"soft_thresh": "x"}),
        ("/v1/results/abc/overlay.png", {"view": "nope"}),
        ("/v1/results/abc/overlay.png", {"boxes": "maybe"}),
        ("/v1/results/abc/overlay.png", {"view": "body", "unpredicted_only": 1}),
    ],
)
def test_bad_query_422(client, path: str, params: dict) -> None:
    _, data = photo(5)
    r = client.post(path, params=params, content=data) if path == "/v1/parse" else client.get(path, params=params)
    assert r.status_code == 422, r.text


@pytest.fixture(scope="module")
def small_server(parser):
    """A server with tight limits and no warm-up."""
    cfg = ServeConfig(max_upload_bytes=20_000, max_pixels=150 * 150, cache_bytes=1 << 30, warmup=False, max_wait_ms=0)
    app = create_app(parser, cfg)
    with TestClient(app) as c:
        yield c, app.state.service


def test_upload_too_large_413(small_server) -> None:
    c, _ = small_server
    noise = np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    data = png_bytes(noise)
    assert len(data) > 20_000
    r = c.post("/v1/parse", params={"name": "big.png"}, content=data)
    assert r.status_code == 413 and r.json()["detail"].startswith("error: big.png: upload is too large")
    r = c.post("/v1/parse", files={"file": ("big.png", data)})
    assert r.status_code == 413


def test_too_many_pixels_413(small_server) -> None:
    c, _ = small_server
    data = png_bytes(np.zeros((200, 200, 3), np.uint8))  # compresses far under the byte limit
    assert len(data) < 20_000
    r = c.post("/v1/parse", params={"name": "wide.png"}, content=data)
    assert r.status_code == 413
    assert r.json()["detail"] == "error: wide.png: image is too large (200x200 > 22500 pixels, the server's --max-pixels)"


def test_evicted_id_404(small_server) -> None:
    c, service = small_server
    first = c.post("/v1/parse", params=QUERY, content=photo(6)[1]).json()["id"]
    assert c.get(f"/v1/results/{first}/labels.png").status_code == 200
    service.cache.capacity = int(service.cache.nbytes * 1.5)  # room for one result, not two
    second = c.post("/v1/parse", params=QUERY, content=photo(7)[1]).json()["id"]
    assert c.get(f"/v1/results/{second}/labels.png").status_code == 200
    r = c.get(f"/v1/results/{first}/overlay.png")
    assert r.status_code == 404 and "evicted" in r.json()["detail"]
    assert service.cache.nbytes <= service.cache.capacity and service.cache.evictions >= 1
