"""A small HTTP/1.1 request parser and response helpers on asyncio streams."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

REASONS: dict[int, str] = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Site Overloaded",
}


class HTTPError(Exception):
    """A request that cannot be parsed; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """A parsed request. Header names are lower-case; repeated headers are comma-joined."""

    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        """Whether the client allows the connection to be reused after this request."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> HTTPRequest | None:
    """Read one request, or return ``None`` if the peer closed the connection between requests.

    Raises :class:`HTTPError` for malformed or oversized requests.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HTTPError(400, "incomplete request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise HTTPError(431, "request head too large") from exc
    lines = head[:-4].decode("latin-1").split("\r\n")
    while lines and not lines[0]:  # tolerate stray CRLF between requests
        lines.pop(0)
    if not lines:
        raise HTTPError(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HTTPError(400, f"bad request line {lines[0]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HTTPError(400, f"bad header line {line!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path, _, query = target.partition("?")
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    return HTTPRequest(method.upper(), path, query, version, headers, body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader)
        raw_length = headers.get("content-length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise HTTPError(400, "bad content-length") from exc
        if length < 0 or length > MAX_BODY_BYTES:
            raise HTTPError(413, "body too large")
        return await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise HTTPError(400, "incomplete request body") from exc
    except asyncio.LimitOverrunError as exc:
        raise HTTPError(400, "bad chunked encoding") from exc


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HTTPError(400, "bad chunk size") from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # skip trailers
                pass
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise HTTPError(413, "body too large")
        chunks.append((await reader.readexactly(size + 2))[:-2])


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """Status line and headers, terminated by the blank line."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def full_response(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    keep_alive: bool = True,
    extra_headers: list[tuple[str, str]] | None = None,
) -> bytes:
    """A complete response with ``Content-Length``."""
    headers = [
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("connection", "keep-alive" if keep_alive else "close"),
    ]
    if extra_headers:
        headers.extend(extra_headers)
    return response_head(status, headers) + body


def stream_head(*, content_type: str, keep_alive: bool, extra: list[tuple[str, str]]) -> bytes:
    """Headers of a chunked (streamed) response."""
    headers = [
        ("content-type", content_type),
        ("transfer-encoding", "chunked"),
        ("cache-control", "no-cache"),
        ("connection", "keep-alive" if keep_alive else "close"),
        *extra,
    ]
    return response_head(200, headers)


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
"""The terminating zero-length chunk of a chunked body."""
