"""``cpt parse --ray``: the same per-photo outputs as ``cpt parse``, from a Ray Data pipeline.

Modules, one job each:

* ``manifest``  -- the inputs: files/folders/globs (``clothparse.parse.batch.expand_inputs``)
  plus an input manifest (text, JSONL or Parquet; local paths or pyarrow filesystem URIs),
  output names, and reading one source's bytes.
* ``actor``     -- ``ParserSpec`` (how to build the ``Parser`` inside a worker) and
  ``PhotoParser``, the Ray Data actor: decode, parse, encode and write a batch of photos.
* ``results``   -- the results manifest (Parquet, one row per photo), ``results_coco.json``
  assembled from the per-photo JSONs, and the ``BatchSummary`` the CLI prints.
* ``ray_parse`` -- the driver: start or join Ray, plan the actors' resources, run the
  pipeline, collect the rows.

Ray is an optional dependency (``pip install 'clothparse[ray]'``); only ``ray_parse`` and the
actor's Ray-facing code import it, and only when ``--ray`` is given.
"""
