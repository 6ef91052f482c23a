"""The results of ``cpt parse --ray``: the results manifest, ``results_coco.json`` and the summary.

The results manifest (``OUT/results_manifest.parquet``, written atomically at the end of a
run) has one row per photo, in input order, with the columns of ``result_schema()``:

=============  ========  =========================================================
index          int64     0-based position in the run (COCO image id - 1 without --ann)
path           string    the photo as given (local path or URI)
name           string    output name: NAME.json, NAME_labels.png, NAME_overlay.png
status         string    ``ok`` (parsed now), ``skipped`` (outputs existed) or ``error``
error          string    the one-line message ``cpt parse`` prints after ``error: ``; null
items          int32     clothing items in NAME.json; null on error
<stage>_ms     float64   ``timings_ms`` of NAME.json per stage (``STAGES``); null unless ok
worker         string    ``host:pid`` of the actor that handled the photo; null if skipped
=============  ========  =========================================================

``results_coco.json`` is assembled afterwards from the NAME.json of every ``ok`` and
``skipped`` row, in input order, with ``clothparse.parse.batch.coco_records``: the same bytes
as ``cpt parse`` writes for the same photos.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clothparse.errors import CptError, DataError
from clothparse.io.atomic import atomic_open
from clothparse.parse.batch import (
    RESULTS_NAME,
    BatchSummary,
    JsonArrayWriter,
    Outcome,
    coco_records,
    image_id_for,
    output_files,
    read_record,
)
from clothparse.parse.pipeline import STAGES

RESULTS_MANIFEST_NAME = "results_manifest.parquet"
STATUSES = ("ok", "skipped", "error")
TIMING_COLUMNS = tuple(f"{s}_ms" for s in STAGES)

Row = dict[str, Any]


def result_schema() -> Any:
    """The pyarrow schema of result rows (the actor's output and the results manifest)."""
    import pyarrow as pa

    return pa.schema(
        [("index", pa.int64()), ("path", pa.string()), ("name", pa.string()), ("status", pa.string()),
         ("error", pa.string()), ("items", pa.int32())]
        + [(c, pa.float64()) for c in TIMING_COLUMNS]
        + [("worker", pa.string())]
    )


def make_row(index: int, path: str, name: str, status: str, error: str | None = None,
             record: dict[str, Any] | None = None, worker: str | None = None) -> Row:
    """One result row; ``record`` (the photo's NAME.json content) gives the item count and,
    for ``ok``, the timings."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    timings = ((record or {}).get("timings_ms") or {}) if status == "ok" else {}
    row: Row = {"index": index, "path": path, "name": name, "status": status, "error": error,
                "items": None if record is None else len(record["items"]), "worker": worker}
    row.update({f"{s}_ms": timings.get(s) for s in STAGES})
    return row


def rows_table(rows: Iterable[Row]) -> Any:
    """pyarrow Table of ``rows`` with ``result_schema()``."""
    import pyarrow as pa

    return pa.Table.from_pylist(list(rows), schema=result_schema())


def write_results_manifest(path: Path, rows: list[Row]) -> None:
    """Write ``rows`` (already in input order) as Parquet to ``path``, atomically."""
    import pyarrow.parquet as pq

    table = rows_table(rows)
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh)


def assemble(
    out_dir: Path, rows: list[Row], image_ids: dict[str, int] | None, input_errors: list[CptError]
) -> BatchSummary:
    """Write ``out_dir/results_coco.json`` from the NAME.json of every ``ok``/``skipped`` row
    (``rows`` in input order) and return the run's ``BatchSummary`` (statuses as
    ``cpt parse`` counts them: ``error`` rows are ``failed``).

    A ``skipped`` row whose NAME.json cannot be read becomes an ``error`` row, with the
    message ``cpt parse --skip-existing`` gives (``rows`` is updated in place).
    Image ids: ``index + 1``, or the id of ``image_ids`` (``--ann``) for the photo's path;
    photos without one are left out of the COCO file and listed in ``missing_ids``."""
    summary = BatchSummary(input_errors=list(input_errors))
    summary.results_path = out_dir / RESULTS_NAME
    with atomic_open(summary.results_path, "w") as fh:
        coco = JsonArrayWriter(fh)
        for row in rows:
            path = Path(row["path"])
            outcome = Outcome(path, row["name"], "failed" if row["status"] == "error" else row["status"])
            if row["status"] != "error":
                try:
                    record = read_record(output_files(out_dir, row["name"])[0])
                except DataError as exc:
                    row.update(make_row(row["index"], row["path"], row["name"], "error", str(exc)))
                    outcome.status, outcome.error = "failed", exc
                else:
                    image_id = row["index"] + 1 if image_ids is None else image_id_for(path, image_ids)
                    if image_id is None:
                        summary.missing_ids.append(path)
                    else:
                        coco.extend(coco_records(record, image_id))
                    row["items"] = len(record["items"])
                    outcome.item_classes = tuple(it["class"] for it in record["items"] if it["area"] > 0)
                    if row["status"] == "ok":
                        outcome.timings_ms = {s: row[f"{s}_ms"] for s in STAGES if row[f"{s}_ms"] is not None}
            else:
                outcome.error = CptError(row["error"] or "failed")
            summary.outcomes.append(outcome)
        coco.close()
    return summary
