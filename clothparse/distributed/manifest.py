"""The inputs of ``cpt parse --ray``: which photos, under which output names, and their bytes.

Photos come from the same files/folders/globs as ``cpt parse``
(``clothparse.parse.batch.expand_inputs``, then ``drop_own_outputs``) followed by the
entries of an input manifest (``--manifest``):

* text (any other suffix): one path a line; blank lines and lines starting with ``#`` skipped;
* JSONL (``.jsonl``, ``.ndjson``): one JSON object a line with a string ``path`` field;
* Parquet (``.parquet``, ``.pq``): a string ``path`` column.

An entry is a local path or a URI that pyarrow's filesystems open (``s3://``, ``gs://``,
``hdfs://``, ``file://``); the manifest itself may be such a URI too. Every photo keeps the
text it was given as (a local path normalised as ``pathlib.Path`` prints it, as ``cpt parse``
writes it into NAME.json); output names are ``clothparse.parse.batch.output_names`` over
the whole list, so both commands name a photo's outputs alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clothparse.errors import CptError, DataError, DependencyError
from clothparse.parse.batch import drop_own_outputs, expand_inputs, output_files, output_names

#: Suffixes (lower case) read as JSONL and Parquet manifests; anything else is text.
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")  # two+ letters: "C:/..." is a Windows path

RAY_EXTRA_HINT = "pip install 'clothparse[ray]'"


@dataclass(frozen=True)
class Source:
    """One photo of a run: ``index`` its 0-based position (its COCO image id is ``index + 1``
    without ``--ann``), ``path`` the local path or URI as given, ``name`` its output name."""

    index: int
    path: str
    name: str


def is_uri(text: str) -> bool:
    """True for ``scheme://...`` (two or more letters of scheme), False for local paths."""
    return bool(_URI.match(text))


def _pyarrow_fs() -> Any:
    try:
        from pyarrow import fs
    except ImportError:
        raise DependencyError(f"reading URIs and Parquet manifests needs pyarrow: {RAY_EXTRA_HINT}") from None
    return fs


def read_bytes(path: str) -> bytes:
    """The whole file at a local path or a pyarrow filesystem URI.

    Raises ``DataError`` naming ``path`` (``no such file``, as ``clothparse.io.images.read_rgb``
    says it) or an ``OSError`` from the filesystem; an empty file is returned as ``b""``
    (decoding rejects it with ``read_rgb``'s message)."""
    if not is_uri(path):
        p = Path(path)
        if not p.is_file():
            raise DataError("no such file", path)
        return p.read_bytes()
    fs = _pyarrow_fs()
    filesystem, inner = fs.FileSystem.from_uri(path)
    info = filesystem.get_file_info(inner)
    if info.type != fs.FileType.File:
        raise DataError("no such file", path)
    with filesystem.open_input_stream(inner) as stream:
        return bytes(stream.readall())


def read_manifest(manifest: str | Path) -> list[str]:
    """The photo paths listed in an input manifest (text, JSONL or Parquet; see the module doc),
    in file order. ``DataError`` (one line, naming the manifest and the line) when it cannot
    be read or an entry is malformed."""
    text = str(manifest)
    suffix = Path(text.split("?", 1)[0]).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet_manifest(text)
    try:
        data = read_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("manifest is not UTF-8 text (a Parquet manifest needs a .parquet suffix)", text) from None
    except DataError:
        raise DataError("no such manifest file", text) from None
    lines = data.splitlines()
    if suffix in JSONL_SUFFIXES:
        return _jsonl_paths(lines, text)
    return [s for s in (ln.strip() for ln in lines) if s and not s.startswith("#")]


def _jsonl_paths(lines: Sequence[str], where: str) -> list[str]:
    paths = []
    for k, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"line {k}: not JSON ({exc.msg})", where) from None
        value = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(value, str) or not value:
            raise DataError(f"line {k}: needs a string \"path\" field", where)
        paths.append(value)
    return paths


def _read_parquet_manifest(where: str) -> list[str]:
    _pyarrow_fs()
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not is_uri(where) and not Path(where).is_file():
        raise DataError("no such manifest file", where)
    try:
        schema = pq.read_schema(where)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read the Parquet manifest ({exc})", where) from None
    if "path" not in schema.names or not (pa.types.is_string(schema.field("path").type)
                                          or pa.types.is_large_string(schema.field("path").type)):
        raise DataError(f"the Parquet manifest needs a string 'path' column (columns: {', '.join(schema.names)})", where)
    column = pq.read_table(where, columns=["path"]).column("path").to_pylist()
    if any(not v for v in column):
        raise DataError("the 'path' column has empty or null entries", where)
    return [str(v) for v in column]


def collect_sources(
    inputs: Sequence[str], manifest: str | Path | None, out_dir: Path
) -> tuple[list[Source], list[CptError]]:
    """Every photo of a run, in order: ``inputs`` (as ``cpt parse`` expands them) then the
    manifest's entries; duplicates (the same resolved local file, the same URI) once, the
    outputs of an earlier run in ``out_dir`` left out. Returns (sources, input errors).

    Manifest entries are not checked here: a missing one becomes that photo's error row."""
    paths, errors = expand_inputs(list(inputs)) if inputs else ([], [])
    texts = [str(p) for p in drop_own_outputs(paths, out_dir)]
    if manifest is not None:
        listed = [e if is_uri(e) else str(Path(e)) for e in read_manifest(manifest)]
        local = drop_own_outputs([Path(e) for e in listed if not is_uri(e)], out_dir)
        keep = {str(p) for p in local}
        texts.extend(e for e in listed if is_uri(e) or e in keep)
    unique: dict[str, str] = {}
    for t in texts:
        unique.setdefault(t if is_uri(t) else str(Path(t).resolve()), t)
    ordered = list(unique.values())
    names = output_names([Path(t) for t in ordered])  # only the stems are used: URIs are fine
    return [Source(k, t, n) for k, (t, n) in enumerate(zip(ordered, names, strict=True))], errors


def outputs_exist(out_dir: Path, name: str) -> bool:
    """Whether all three outputs of ``name`` are in ``out_dir`` (the JSON is written last)."""
    return all(f.is_file() for f in output_files(out_dir, name))
