"""The FastAPI application of ``cpt serve``: routes, error responses, metrics middleware.

Routes (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``POST /v1/parse``: a photo (multipart field ``file``, or the raw body with ``?name=``) ->
  the ``cpt parse`` JSON record (NAME.json) plus ``id``; query options as ``cpt parse``.
- ``GET /v1/results/{id}/labels.png`` and ``/overlay.png?view=&superpixels=&unpredicted_only=
  &boxes=&detector_boxes=``: from the cached result, no model runs; unknown or evicted: 404.
- ``GET /v1/classes`` (the label colours), ``/v1/info`` (the limits), ``/healthz``,
  ``/readyz`` (503 until the warm-up inference has run), ``/metrics`` (Prometheus text).
- ``GET /``: the page (``static/``).

Errors are JSON ``{"detail": "error: NAME: problem"}``, one line as ``cpt parse`` prints:
400 bad photo, 404 unknown id, 413 upload or pixels over the limits, 422 bad query, 503
queue full (with ``Retry-After``), 500 a failure while parsing (the server goes on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from clothparse import __version__
from clothparse.cli.errors import format_error
from clothparse.errors import ConfigError, CptError, is_expected
from clothparse.parse.fusion_params import FusionInputError
from clothparse.parse.outputs import OverlayOptions
from clothparse.parse.pipeline import Parser
from clothparse.serve.batcher import QueueFull
from clothparse.serve.options import (
    ParseOptions,
    make_overlay_options,
    overlay_options,
    parse_options,
)
from clothparse.serve.service import Job, Parsed, ParseService, ServeConfig
from clothparse.serve.uploads import UploadError, decode_photo, photo_bytes
from clothparse.taxonomy import PALETTE, PARSING_LABELS

log = logging.getLogger("clothparse.serve")

STATIC_DIR = Path(__file__).parent / "static"
#: Seconds a client is told to wait after a 503 (queue full).
RETRY_AFTER_S = 1

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                           "required": ["file"]}
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _busy(exc: QueueFull) -> JSONResponse:
    return error_response(503, f"error: {exc}", {"Retry-After": str(RETRY_AFTER_S)})


def _failure(exc: BaseException, name: str) -> JSONResponse:
    """A 500 for an exception while parsing: ``error: NAME: problem`` for an expected one (out of
    memory, a CptError), else one ``internal error`` line (the traceback goes to the log)."""
    if is_expected(exc):
        text = format_error(exc)
        named = isinstance(exc, CptError) and exc.path is not None
        return error_response(500, f"error: {text}" if named else f"error: {name}: {text}")
    log.error("internal error while parsing %s", name, exc_info=exc)
    return error_response(500, f"internal error: {format_error(exc)} (a bug in cpt; see the server log)")


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status, and times it."""

    def __init__(self, app: ASGIApp, service: ParseService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            self.service.metrics.observe_request(scope.get("method", "?"), path, status[0], time.perf_counter() - t0)


def create_app(parser: Parser, config: ServeConfig | None = None) -> FastAPI:
    """The application serving ``parser`` (its engines already loaded) under ``config``'s limits.
    The threads start with the app's lifespan (uvicorn, or ``with TestClient(app)``)."""
    service = ParseService(parser, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(title="clothparse", version=__version__, lifespan=lifespan,
                  description="Clothing parsing of fashion photos (`cpt serve`). The page is at `/`.")
    app.state.service = service
    app.add_middleware(MetricsMiddleware, service=service)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _routes(app, service)
    return app


def _routes(app: FastAPI, service: ParseService) -> None:
    cfg = service.config

    @app.post("/v1/parse", openapi_extra=_UPLOAD_BODY, tags=["parse"],
              summary="Parse one photo: the cpt parse JSON record plus a result id")
    async def parse(
        request: Request,
        options: Annotated[ParseOptions, Depends(parse_options)],
        name: Annotated[str | None, Query(max_length=255, description="Raw body: the photo's name.")] = None,
    ) -> Response:
        try:
            service.slots.acquire()
        except QueueFull as exc:
            service.metrics.reject("queue_full")
            return _busy(exc)
        fut: Future[Parsed] | None = None
        source = name or "upload"
        try:
            service.refiners.check(options)
            refiner = service.refiners.get(options)
            data, source = await photo_bytes(request, cfg.max_upload_bytes, name)
            image, decode_s = await run_in_threadpool(decode_photo, data, source, cfg.max_pixels)
            del data
            fut = service.batcher.submit(Job(image, decode_s, source, options, refiner))
            parsed = await asyncio.wrap_future(fut)
        except (ConfigError, FusionInputError) as exc:
            return error_response(422, f"error: {format_error(exc)}")
        except UploadError as exc:
            service.metrics.reject({400: "bad_image", 413: "too_large"}.get(exc.status, "disconnected"))
            return error_response(exc.status, exc.message)
        except Exception as exc:
            return _failure(exc, source)
        finally:
            if fut is None:
                service.slots.release()
            else:  # the slot is held until the photo leaves the pipeline, even if the client left
                fut.add_done_callback(service.slots.release)
        return JSONResponse({"id": parsed.id, **parsed.record})

    def _entry(result_id: str) -> Any:
        entry = service.cache.get(result_id)
        if entry is None:
            return error_response(404, f"error: result {result_id[:64]}: not found (an unknown id, or evicted from "
                                  "the result cache: POST the photo to /v1/parse again)")
        return entry

    @app.get("/v1/results/{result_id}/labels.png", tags=["results"], response_class=Response,
             summary="The palette label map (values 0-14) of a cached result")
    async def labels_png(result_id: str) -> Response:
        entry = _entry(result_id)
        if isinstance(entry, Response):
            return entry
        return Response(entry.labels_png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/results/{result_id}/overlay.png", tags=["results"], response_class=Response,
             summary="An overlay view of a cached result (re-rendered, no model runs)")
    async def overlay_png(
        result_id: str, query: Annotated[tuple[str, bool, bool, bool, bool], Depends(overlay_options)]
    ) -> Response:
        try:
            opts: OverlayOptions = make_overlay_options(query, cfg.png_level)
        except ConfigError as exc:
            return error_response(422, f"error: {format_error(exc)}")
        entry = _entry(result_id)
        if isinstance(entry, Response):
            return entry
        try:
            service.slots.acquire()
        except QueueFull as exc:
            service.metrics.reject("queue_full")
            return _busy(exc)
        try:
            png = await run_in_threadpool(service.overlay_png, result_id, entry, opts)
        except Exception as exc:
            return _failure(exc, f"result {result_id}")
        finally:
            service.slots.release()
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/classes", tags=["info"], summary="The parsing labels 0-14 and their colours")
    async def classes() -> list[dict[str, Any]]:
        return [{"id": i, "name": n, "rgb": [int(v) for v in PALETTE[i]]} for i, n in enumerate(PARSING_LABELS)]

    @app.get("/v1/info", tags=["info"], summary="The server's limits and models")
    async def info() -> dict[str, Any]:
        p = service.parser
        return {
            "version": __version__,
            "clothing_classes": list(p.clothing.class_names),
            "body_model": p.body is not None,
            "superpixels": service.refiners.backend is not None,
            "max_upload_bytes": cfg.max_upload_bytes,
            "max_pixels": cfg.max_pixels,
            "max_batch": cfg.max_batch,
            "max_wait_ms": cfg.max_wait_ms,
            "max_queue": cfg.max_queue,
        }

    @app.get("/healthz", tags=["ops"], summary="The process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Ready once the warm-up inference has run (else 503)")
    async def readyz() -> Response:
        r = service.readiness
        if r.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": r.error or "warming up"}, status_code=503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse, summary="Prometheus text format")
    async def metrics() -> Response:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
