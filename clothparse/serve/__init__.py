"""`cpt serve`: the parse pipeline as an HTTP service (FastAPI + uvicorn) and a browser page.

Modules, one job each:

- ``app``: the FastAPI application (routes, error responses, start-up and warm-up).
- ``service``: the parser, batcher, cache, admission slots and warm-up behind the routes.
- ``uploads``: reading an upload under the byte limit (multipart or raw) and decoding it under the pixel limit.
- ``options``: the query options of ``POST /v1/parse`` and of the overlay views.
- ``batcher``: dynamic batching, the model thread and the post-model thread pool.
- ``cache``: the results kept for re-rendering, an LRU bounded in bytes.
- ``metrics``: counters and histograms in the Prometheus text format.
- ``static/``: the page at ``GET /`` (HTML, JS, CSS; no CDN).

FastAPI, uvicorn and python-multipart are the ``serve`` extra: ``pip install clothparse[serve]``.
"""
