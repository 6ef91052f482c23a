"""`cpt serve` from the command line (uvicorn replaced by a stub), and the page it serves."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers_serve import TestClient, make_parser, tiny_models
from typer.testing import CliRunner

from clothparse.cli.app import app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with")
runner = CliRunner()


def test_serve_help() -> None:
    res = runner.invoke(app, ["serve", "--help"])
    assert res.exit_code == 0
    for flag in ("--model", "--body-model", "--engine", "--host", "--port", "--max-batch", "--max-wait-ms", "--max-queue"):
        assert flag in res.output


def test_serve_missing_model_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope"), "--body-model", "none"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0], res.output


def test_serve_bad_engine_is_one_line(tmp_path: Path) -> None:
    clothing, _ = tiny_models(tmp_path)
    res = runner.invoke(app, ["serve", "--model", str(clothing), "--body-model", "none", "--engine", "bogus"])
    assert res.exit_code == 1 and res.output.strip().startswith("error: --engine")


def test_serve_builds_app_and_runs_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    clothing, body = tiny_models(tmp_path)
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda a, **kw: seen.update(app=a, **kw))
    res = runner.invoke(app, ["serve", "--model", str(clothing), "--body-model", str(body), "--device", "cpu",
                              "--port", "8123", "--max-batch", "3", "--max-wait-ms", "7", "--max-queue", "5",
                              "--max-upload-mb", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    cfg = seen["app"].state.service.config
    assert (cfg.max_batch, cfg.max_wait_ms, cfg.max_queue, cfg.max_upload_bytes) == (3, 7.0, 5, 2 << 20)
    assert seen["app"].state.service.parser.body is not None


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_page_is_served_with_local_assets_only(tmp_path: Path) -> None:

    from clothparse.serve.app import STATIC_DIR, create_app
    from clothparse.serve.service import ServeConfig

    client = TestClient(create_app(make_parser(*tiny_models(tmp_path)), ServeConfig(warmup=False)))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = _Refs()
    refs.feed(page.text)
    assert "/static/app.js" in refs.refs and "/static/app.css" in refs.refs
    for ref in refs.refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref  # this server, no CDN
        assert client.get(ref).status_code == 200, ref
    for text in [page.text, *(p.read_text() for p in STATIC_DIR.iterdir())]:
        assert not re.search(r"https?://|//cdn|@import", text)
    js = (STATIC_DIR / "app.js").read_text()
    for word in ("/v1/parse", "/overlay.png", "unpredicted_only", "superpixels", "boxes", "/v1/classes"):
        assert word in js
    for label in ("Clothing Segmentation", "Body Segmentation", "Superpixel Method", "Apply Superpixel",
                  "Display Unpredicted Only", "Display Bounding Box"):
        assert label in page.text
