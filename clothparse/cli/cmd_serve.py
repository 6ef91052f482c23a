"""`cpt serve`: the parse pipeline as an HTTP service and a browser page (FastAPI + uvicorn).

  cpt serve --model RUN [--body-model B|none] [--engine torch|onnx|openvino|trt] [--port 8000]

The models load once, before the server starts (a missing or bad model is one `error:` line,
exit 1); `/readyz` turns ready after a warm-up inference. Concurrent requests are batched
(--max-batch photos per engine call, the first waiting at most --max-wait-ms for others).
API and page: see `clothparse.serve.app` and http://HOST:PORT/docs. Needs the `serve` extra
(`pip install clothparse[serve]`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from clothparse.cli.errors import handle_errors
from clothparse.cli.options import (
    BodyModelOrNone,
    BodyScore,
    Device,
    EngineName,
    EnginePrecision,
    EngineThreads,
    ModelPath,
    Quiet,
    ScoreThresh,
    SpBackend,
)
from clothparse.errors import ConfigError, DependencyError
from clothparse.parse.build import EngineChoice, build_parser, fusion_params
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.superpixels import SlicParams

Host = Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")]
Port = Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")]
MaxBatch = Annotated[int, typer.Option("--max-batch", min=1, max=64, help="Most photos per engine call.")]
MaxWait = Annotated[
    float,
    typer.Option("--max-wait-ms", min=0.0, max=10_000.0,
                 help="How long the first photo of a batch waits for others (0: no batching wait)."),
]
MaxQueue = Annotated[
    int, typer.Option("--max-queue", min=1, help="Requests in the server at once; one more gets 503 with Retry-After.")
]
MaxUpload = Annotated[float, typer.Option("--max-upload-mb", min=0.001, help="Largest upload (MiB); larger: 413.")]
MaxPixels = Annotated[int, typer.Option("--max-pixels", min=1, help="Most pixels (width x height) a photo may have; more: 413.")]
CacheMb = Annotated[
    float, typer.Option("--cache-mb", min=0.0, help="Memory for cached results (MiB, LRU): the overlay views re-render from them.")
]
Workers = Annotated[int, typer.Option("--workers", min=1, help="Post-model threads (superpixels, fusion, encoding).")]
PngLevel = Annotated[int, typer.Option("--png-level", min=0, max=9, help="Overlay PNG zlib level 0-9.")]
NoSp = Annotated[bool, typer.Option("--no-superpixel", help="Pixel level only: load no SLIC backend.")]


def serve(
    model: ModelPath,
    body_model: BodyModelOrNone = None,
    engine: EngineName = None,
    precision: EnginePrecision = "auto",
    threads: EngineThreads = 0,
    device: Device = "auto",
    score_thresh: ScoreThresh = None,
    body_score_thresh: BodyScore = 0.5,
    superpixels: SpBackend = "auto",
    no_superpixel: NoSp = False,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    max_batch: MaxBatch = 4,
    max_wait_ms: MaxWait = 10.0,
    max_queue: MaxQueue = 64,
    max_upload_mb: MaxUpload = 32.0,
    max_pixels: MaxPixels = 40_000_000,
    cache_mb: CacheMb = 512.0,
    workers: Workers = 2,
    png_level: PngLevel = 1,
    quiet: Quiet = False,
) -> None:
    """Serve parsing over HTTP: a JSON API (/v1/parse, /docs), re-rendered views and a page at /."""
    with handle_errors():
        try:
            import uvicorn

            from clothparse.serve.app import create_app
            from clothparse.serve.service import MIB, ServeConfig
        except ImportError as exc:
            raise DependencyError(f"cpt serve needs the serve extra ({exc.name} is missing): "
                                  "pip install 'clothparse[serve]'") from None
        if host not in ("127.0.0.1", "localhost", "::1") and not quiet:
            print(f"warning: --host {host}: the server has no authentication; anyone who reaches it can use it",
                  file=sys.stderr)
        if max_pixels > 268_435_456:
            raise ConfigError("--max-pixels cannot exceed the decoder's limit 268435456")
        parser = build_parser(
            model, body_model, EngineChoice(engine, device, precision, threads), score_thresh, body_score_thresh,
            None if no_superpixel else superpixels, fusion_params(FusionParams.vote, FusionParams.skin_rule,
                                                                   FusionParams.soft_thresh),
            SlicParams(), max_batch, quiet,
        )
        config = ServeConfig(
            max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
            max_upload_bytes=int(max_upload_mb * MIB), max_pixels=max_pixels, cache_bytes=int(cache_mb * MIB),
            workers=workers, png_level=png_level,
        )
        app = create_app(parser, config)
        if not quiet:
            print(f"cpt serve: http://{host}:{port}/ (API docs: /docs)", file=sys.stderr)
        uvicorn.run(app, host=host, port=port, log_level="warning" if quiet else "info", timeout_graceful_shutdown=5)
