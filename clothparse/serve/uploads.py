"""Reading one uploaded photo: the body under a byte limit, multipart or raw, and decoding it
under a pixel limit.

Errors are ``UploadError``s carrying the HTTP status and the one-line message ``cpt parse``
prints for the same problem (``error: NAME: problem``, formatted by ``clothparse.cli.errors``).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import AsyncGenerator
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from clothparse.cli.errors import format_error
from clothparse.errors import DataError
from clothparse.io.images import decode_rgb

#: The name of a photo sent as a raw body without ``?name=``.
RAW_NAME = "upload"
#: The multipart field the photo is looked for in first (any file field is taken otherwise).
FILE_FIELD = "file"


class UploadError(Exception):
    """An upload the server refuses: ``status`` (400, 413, 499) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_line(exc: BaseException) -> str:
    """The CLI's one line for ``exc``: ``error: NAME: problem``."""
    return f"error: {format_error(exc)}"


def clean_name(name: str | None) -> str:
    """A file name fit for the record and one-line messages: its last path component, one
    line, at most 200 characters; ``RAW_NAME`` when empty."""
    if not name:
        return RAW_NAME
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = " ".join(base.split())[:200]
    return base or RAW_NAME


async def read_body(request: Request, limit: int, name: str) -> bytes:
    """The request body, or UploadError 413 past ``limit`` bytes (Content-Length checked
    first, then counted while streaming), 499 when the client disconnects mid-upload."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadError(413, _too_big(name, int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise UploadError(413, _too_big(name, None, limit))
            chunks.append(chunk)
    except ClientDisconnect:
        raise UploadError(499, f"error: {name}: the client disconnected during the upload") from None
    return b"".join(chunks)


def _too_big(name: str, size: int | None, limit: int) -> str:
    got = f"{size} bytes" if size is not None else "more"
    return f"error: {name}: upload is too large ({got} > {limit} bytes, the server's --max-upload-mb)"


async def photo_bytes(request: Request, limit: int, raw_name: str | None) -> tuple[bytes, str]:
    """(photo bytes, its name) of a multipart upload (field ``file``, or the first file) or of
    a raw body (named ``raw_name``)."""
    ctype = request.headers.get("content-type", "")
    multipart = ctype.lower().startswith("multipart/form-data")
    name = clean_name(raw_name)
    body = await read_body(request, limit, name)
    if not multipart:
        return body, name

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=4, max_fields=32).parse()
    except MultiPartException as exc:
        raise UploadError(400, f"error: {name}: malformed multipart body ({exc.message})") from None
    try:
        files = [v for k, v in form.multi_items() if isinstance(v, UploadFile) and k == FILE_FIELD]
        files += [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise UploadError(400, f"error: {name}: the multipart body has no file (send the photo as field '{FILE_FIELD}')")
        upload = files[0]
        data = await upload.read()
        return data, clean_name(upload.filename) if upload.filename else name
    finally:
        await form.close()


def decode_photo(data: bytes, name: str, max_pixels: int) -> tuple[np.ndarray, float]:
    """(RGB uint8 [H, W, 3], seconds) of encoded photo bytes. UploadError 413 when the header
    declares more than ``max_pixels`` pixels (checked before decoding), 400 with
    ``decode_rgb``'s one-line message when the bytes are not a readable photo."""
    t0 = time.perf_counter()
    size = _peek_size(data, name)
    if size is not None and size[0] * size[1] > max_pixels:
        w, h = size
        raise UploadError(413, f"error: {name}: image is too large ({w}x{h} > {max_pixels} pixels, the server's --max-pixels)")
    try:
        image = decode_rgb(data, name)
    except DataError as exc:
        raise UploadError(400, error_line(exc)) from None
    return image, time.perf_counter() - t0


def _peek_size(data: bytes, name: str) -> tuple[int, int] | None:
    """(width, height) from the image header alone, None when PIL cannot read one (decoding
    then reports the problem); UploadError 413 for a decompression bomb."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return int(img.size[0]), int(img.size[1])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(413, f"error: {name}: image is too large (decompression bomb limit)") from None
    except Exception:
        return None
