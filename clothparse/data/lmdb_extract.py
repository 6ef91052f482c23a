"""Extract the photos an annotation file names from the Paperdoll ``photos.lmdb``.

The LMDB maps the photo id as ASCII text (``b"100014"``) to the encoded JPEG bytes.
Each image ``{id, file_name}`` of the annotation file becomes ``out/<file_name>``.

Resumable: a file already in ``out`` with exactly the byte length of its LMDB value is
skipped (every write is atomic, so a file of the right length is a complete one; a
file of another length is rewritten). Temporary files left by a killed run are removed.
Values are checked cheaply before writing (image magic bytes, then PIL's header
parse); values that fail are counted as undecodable and not written.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import lmdb
from PIL import Image, UnidentifiedImageError

from clothparse.data.coco_json import read_coco_json
from clothparse.errors import DataError
from clothparse.io.atomic import write_bytes

MAX_EXAMPLES = 5
#: How far from the end of a JPEG its end-of-image marker may lie (trailing padding).
JPEG_TAIL = 4096
#: Leading bytes of the formats a photo may be stored in.
IMAGE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
)


@dataclass
class ExtractReport:
    """What ``extract_images`` did, per image of the annotation file."""

    wanted: int = 0
    extracted: int = 0
    skipped: int = 0
    missing_keys: int = 0
    undecodable: int = 0
    bad_names: int = 0
    size_mismatch: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, what: str, example: object) -> None:
        setattr(self, what, getattr(self, what) + 1)
        ex = self.examples.setdefault(what, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(str(example))

    @property
    def failed(self) -> int:
        """Images that could not be produced (missing, undecodable, unsafe name)."""
        return self.missing_keys + self.undecodable + self.bad_names

    def lines(self) -> list[str]:
        out = [
            f"{self.wanted} images wanted: {self.extracted} extracted, {self.skipped} already present,"
            f" {self.missing_keys} missing keys, {self.undecodable} undecodable"
        ]
        for key, label in (
            ("missing_keys", "ids not in the LMDB"),
            ("undecodable", "values that are not complete images"),
            ("bad_names", "image records without an integer id or a safe relative file_name"),
            ("size_mismatch", "photos whose size differs from the annotation (written anyway)"),
        ):
            if getattr(self, key):
                out.append(f"  {getattr(self, key)} {label}; e.g. {', '.join(self.examples[key])}")
        return out


def check_image_bytes(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from the header of encoded image bytes, or None if not an image.

    Cheap: a magic-number test, PIL's header parse and ``verify`` (no pixel decode),
    and for JPEG an end-of-image marker near the end, which a truncated file lacks
    (0xFFD9 cannot occur inside entropy-coded data, where 0xFF is byte-stuffed).
    """
    head = bytes(data[:12])
    is_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if not (any(head.startswith(m) for m in IMAGE_MAGIC) or is_webp):
        return None
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in bytes(data[-JPEG_TAIL:]):
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size
            img.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return (int(size[0]), int(size[1]))


def _safe_relpath(file_name: str) -> PurePosixPath | None:
    rel = PurePosixPath(file_name.replace("\\", "/"))
    if not file_name or rel.is_absolute() or ".." in rel.parts:
        return None
    return rel


def _remove_stale_temps(folder: Path, names: set[str]) -> None:
    """Delete ``.<name>.<random>.tmp`` files ``atomic_open`` left when a run was killed."""
    if not folder.is_dir():
        return
    for tmp in folder.glob(".*.tmp"):
        stem = tmp.name[1 : -len(".tmp")]
        if stem.rsplit(".", 1)[0] in names:
            tmp.unlink(missing_ok=True)


def open_lmdb(path: str | Path) -> lmdb.Environment:
    """Open an LMDB read-only (a folder holding data.mdb, or the data file itself)."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such LMDB (expected a folder with data.mdb, or an .mdb file)", path)
    try:
        return lmdb.open(
            str(path),
            readonly=True,
            lock=False,
            readahead=False,
            subdir=path.is_dir(),
            max_readers=8,
        )
    except lmdb.Error as exc:
        raise DataError(f"cannot open as LMDB ({str(exc).splitlines()[0]})", path) from None


def extract_images(
    lmdb_path: str | Path,
    ann_path: str | Path,
    out_dir: str | Path,
    progress: Callable[[int, int], Any] | None = None,
) -> ExtractReport:
    """Write every image of ``ann_path`` from ``lmdb_path`` to ``out_dir/<file_name>``.

    ``progress(advance, total)`` is called once per image handled (``advance`` = 1,
    ``total`` = images to handle), e.g. to drive a rich progress bar.
    Raises DataError only for an unusable LMDB or annotation file; per-image problems
    are counted in the returned report.
    """
    data = read_coco_json(ann_path)
    out = Path(out_dir)
    jobs: dict[str, tuple[str, tuple[int, int] | None]] = {}  # file_name -> (key, (w, h))
    report = ExtractReport()
    for im in data["images"]:
        name = im.get("file_name")
        rel = _safe_relpath(str(name)) if isinstance(name, str) else None
        try:
            key = str(int(im["id"]))
        except (KeyError, TypeError, ValueError):
            rel = None
        if rel is None:
            report.note("bad_names", name)
            continue
        try:
            wh: tuple[int, int] | None = (int(im["width"]), int(im["height"]))
        except (KeyError, TypeError, ValueError):
            wh = None  # size unknown: nothing to compare the photo with
        jobs.setdefault(str(rel), (key, wh))
    report.wanted = len(jobs) + report.bad_names
    folders: dict[Path, set[str]] = {}
    for rel_name in jobs:
        dest = out / rel_name
        folders.setdefault(dest.parent, set()).add(dest.name)
    for folder, names in folders.items():
        _remove_stale_temps(folder, names)

    env = open_lmdb(lmdb_path)
    try:
        with env.begin(buffers=True) as txn:
            for rel_name, (key, wh) in jobs.items():
                _extract_one(txn, key, out / rel_name, wh, report)
                if progress is not None:
                    progress(1, len(jobs))
    except lmdb.Error as exc:
        raise DataError(f"LMDB read failed ({str(exc).splitlines()[0]})", lmdb_path) from None
    finally:
        env.close()
    return report


def _extract_one(
    txn: lmdb.Transaction,
    key: str,
    dest: Path,
    size: tuple[int, int] | None,
    report: ExtractReport,
) -> None:
    value = txn.get(key.encode("ascii"))
    if value is None:
        report.note("missing_keys", key)
        return
    if dest.is_file() and dest.stat().st_size == len(value):
        report.skipped += 1
        return
    wh = check_image_bytes(value)
    if wh is None:
        report.note("undecodable", key)
        return
    if size is not None and wh != size:
        report.note("size_mismatch", f"{dest.name} is {wh[0]}x{wh[1]}")
    write_bytes(dest, bytes(value))
    report.extracted += 1
