"""Receive a multipart upload straight to disk, with a size limit, never holding it in memory.

The body is parsed as it arrives (``python-multipart``'s streaming parser); the part named
``file`` goes to a temporary file under the service's ``tmp/`` folder, the other parts are small
text fields (the scan options). The temporary file is removed on every error path, including a
client that disconnects mid-upload; on success the caller owns it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from vidshield.io import VIDEO_EXTENSIONS

__all__ = ["Upload", "UploadError", "ClientGone", "receive_upload", "display_name"]

_MAX_FIELDS = 16
_MAX_FIELD_BYTES = 1024
_MULTIPART_SLACK = 64 * 1024  # headers and boundaries around the file part
#: A refused (413) body is read and discarded up to this many bytes so the client can read the answer.
DRAIN_BYTES = 16 * 1024 * 1024


class UploadError(Exception):
    """An upload refused with an HTTP status and a one-line reason."""

    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail
        super().__init__(detail)


class ClientGone(Exception):
    """The client disconnected before the upload was complete."""


@dataclass
class Upload:
    """A received upload: the temporary file, its size in bytes, the client's file name (display
    text only), the suffix kept for the stored input (one of :data:`vidshield.io.VIDEO_EXTENSIONS`,
    else none), and the text fields."""

    path: Path
    size: int
    name: str
    suffix: str
    fields: dict[str, str]


def display_name(filename: str) -> str:
    """The client's file name reduced to display text: last path component, no control
    characters, at most 120 characters. Never used to build a path."""
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:120] or "upload"


async def receive_upload(request: Request, tmp_dir: Path, max_bytes: int) -> Upload:
    """Stream a ``multipart/form-data`` body to a temporary file in ``tmp_dir``.

    Raises:
        UploadError: 413 over ``max_bytes`` (from Content-Length before reading, or while
            reading), 415 not multipart, 422 malformed body or no ``file`` part.
        ClientGone: the client disconnected (nothing is left on disk).
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(415, "expected a multipart/form-data body with the video in a part named 'file'")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + _MULTIPART_SLACK:
        if int(length) <= DRAIN_BYTES:
            await _drain(request)
        raise UploadError(413, f"upload of {int(length)} bytes exceeds the limit of {max_bytes} bytes")

    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="upload-", suffix=".part")
    state = _PartState(os.fdopen(fd, "wb"), max_bytes)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": state.part_begin,
            "on_header_field": state.header_field,
            "on_header_value": state.header_value,
            "on_header_end": state.header_end,
            "on_headers_finished": state.headers_finished,
            "on_part_data": state.part_data,
            "on_part_end": state.part_end,
        },
    )
    body_done = False
    try:
        try:
            while not body_done:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                body_done = not message.get("more_body", False)
                parser.write(message.get("body", b""))
            parser.finalize()
        except FormParserError as e:
            raise UploadError(422, f"malformed multipart body ({e})") from None
        except UploadError as e:
            if e.status == 413 and not body_done:
                await _drain(request)
            raise
        state.out.close()
        if state.filename is None:
            raise UploadError(422, "no file part: send the video as a multipart part named 'file'")
        name = display_name(state.filename)
        suffix = Path(name).suffix.lower()
        return Upload(
            path=Path(tmp),
            size=state.size,
            name=name,
            suffix=suffix if suffix in VIDEO_EXTENSIONS else "",  # FFmpeg probes the content anyway
            fields=state.fields,
        )
    except BaseException:
        state.out.close()
        Path(tmp).unlink(missing_ok=True)
        raise


async def _drain(request: Request) -> None:
    """Read and discard the rest of a refused body (call it only while more body is to come), up
    to :data:`DRAIN_BYTES` in all: a client still sending when the server closes gets a reset
    instead of the answer. Longer bodies are cut off (the connection is closed after the answer)."""
    seen = 0
    while seen <= DRAIN_BYTES:
        message = await request.receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class _PartState:
    """Callbacks of the streaming parser: headers of the current part, then its data."""

    def __init__(self, out, max_bytes: int):
        self.out, self.max_bytes = out, max_bytes
        self.size = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._target: str | None = None  # "file", a field name, or None (ignored part)
        self._data = bytearray()

    def part_begin(self):
        self._headers, self._target, self._data = {}, None, bytearray()

    def header_field(self, data, start, end):
        self._field += data[start:end]
        if len(self._field) > 256:
            raise UploadError(422, "a multipart header is too long")

    def header_value(self, data, start, end):
        self._value += data[start:end]
        if len(self._value) > 4096:
            raise UploadError(422, "a multipart header is too long")

    def header_end(self):
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def headers_finished(self):
        kind, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if kind != b"form-data" or not name:
            raise UploadError(422, "every multipart part needs Content-Disposition: form-data; name=...")
        if name == "file":
            if self.filename is not None:
                raise UploadError(422, "send one file per request")
            self.filename = params.get(b"filename", b"upload").decode("utf-8", "replace")
            self._target = "file"
        else:
            if len(self.fields) >= _MAX_FIELDS:
                raise UploadError(422, "too many form fields")
            self._target = name

    def part_data(self, data, start, end):
        n = end - start
        if self._target == "file":
            self.size += n
            if self.size > self.max_bytes:
                raise UploadError(413, f"upload exceeds the limit of {self.max_bytes} bytes")
            self.out.write(data[start:end])
        elif self._target is not None:
            if len(self._data) + n > _MAX_FIELD_BYTES:
                raise UploadError(422, f"form field {self._target!r} is longer than {_MAX_FIELD_BYTES} bytes")
            self._data += data[start:end]

    def part_end(self):
        if self._target not in (None, "file"):
            self.fields[self._target] = self._data.decode("utf-8", "replace")
