"""The one reader of COCO annotation files: parse once, check the structure, fail in one line.

The loader (``clothparse.data.coco.load_coco``), evaluation (``load_gt``), ``cpt parse
--ann`` (``load_image_ids``), ``cpt data split``/``lmdb`` and the parsing-quality bench all
go through ``read_coco_json``, each asking for the image fields (and categories) it needs,
so a bad file gives the same one-line ``DataError`` everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clothparse.errors import DataError

#: Image fields a caller may require (``read_coco_json(image_fields=...)``); all but
#: ``file_name`` are integers (``height``/``width`` positive).
IMAGE_FIELDS = ("id", "file_name", "height", "width")


def read_json(path: str | Path, what: str = "annotation file") -> Any:
    """Parse one JSON file; a one-line DataError naming the file when it cannot be read or parsed.

    ``what`` names the file in the messages (``"annotation file"``, ``"results file"``).
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(f"no such {what}", path) from None
    except IsADirectoryError:
        raise DataError(f"is a folder, not a file ({what} expected)", path) from None
    except OSError as exc:
        raise DataError(f"cannot read the {what} ({exc.strerror or exc})", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON, so not a COCO {what} ({exc})", path) from None


def int_field(entry: Any, key: str, what: str, path: str | Path | None) -> int:
    """``entry[key]`` as an int; a one-line DataError naming the file when missing or not a number."""
    if not isinstance(entry, Mapping) or key not in entry:
        raise DataError(f"{what} has no '{key}'", path)
    try:
        return int(entry[key])
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{what} has a non-integer '{key}' ({entry[key]!r})", path) from None


def _check_image(im: Mapping[str, Any], k: int, fields: Sequence[str], path: str | Path | None) -> None:
    what = f"image #{k}"
    for key in fields:
        if key == "file_name":
            if key not in im:
                raise DataError(f"{what} has no 'file_name'", path)
            if not isinstance(im[key], str) or not im[key]:
                raise DataError(f"{what} has a 'file_name' that is not a non-empty string ({im[key]!r})", path)
        elif key in ("height", "width"):
            if int_field(im, key, what, path) <= 0:
                raise DataError(f"{what} has a non-positive '{key}' ({im[key]!r})", path)
        elif key == "id":
            int_field(im, key, what, path)
        else:
            raise ValueError(f"unknown image field {key!r} (expected some of {IMAGE_FIELDS})")


def check_coco(
    data: Any,
    path: str | Path | None = None,
    *,
    categories: bool = False,
    image_fields: Sequence[str] = (),
) -> dict[str, Any]:
    """Check that ``data`` (a parsed JSON document) is a COCO annotation file; return it.

    Always: a JSON object with an ``images`` list of objects; ``annotations`` and
    ``categories``, when present, lists. ``categories=True`` also needs a non-empty
    ``categories`` list of objects with an integer ``id`` and a ``name``. Every image
    must have each of ``image_fields`` (see ``IMAGE_FIELDS``). Each problem is a
    one-line DataError naming ``path``.
    """
    if not isinstance(data, dict):
        raise DataError("not a COCO annotation file (top level is not a JSON object)", path)
    if not isinstance(data.get("images"), list):
        raise DataError("not a COCO annotation file (no 'images' list)", path)
    if not isinstance(data.get("annotations", []), list):
        raise DataError("not a COCO annotation file ('annotations' is not a list)", path)
    if not all(isinstance(im, dict) for im in data["images"]):
        raise DataError("not a COCO annotation file ('images' holds non-objects)", path)
    cats = data.get("categories")
    if cats is not None and not isinstance(cats, list):
        raise DataError("not a COCO annotation file ('categories' is not a list)", path)
    if categories:
        if not cats:
            raise DataError("no categories (the file has no 'categories' list)", path)
        for k, c in enumerate(cats):
            if not isinstance(c, dict):
                raise DataError(f"category #{k} is not an object ({c!r})", path)
            int_field(c, "id", f"category #{k}", path)
            if "name" not in c:
                raise DataError(f"category #{k} has no 'name'", path)
        ids = [int(c["id"]) for c in cats]
        if len(set(ids)) != len(ids):
            raise DataError(f"duplicate category ids {sorted(ids)}", path)
    if image_fields:
        for k, im in enumerate(data["images"]):
            _check_image(im, k, image_fields, path)
    return data


def read_coco_json(
    path: str | Path, *, categories: bool = False, image_fields: Sequence[str] = ()
) -> dict[str, Any]:
    """Read a COCO annotation file as a dict: the one reader every command goes through.

    One JSON parse (``read_json``), then ``check_coco``: a JSON object with an
    ``images`` list of objects (``annotations``/``categories``, when present, lists);
    ``categories`` and ``image_fields`` ask for more (see ``check_coco``). Every
    problem is a one-line DataError naming the file.
    """
    path = Path(path)
    return check_coco(read_json(path), path, categories=categories, image_fields=image_fields)
