"""Receipt records as JSON lines: one strict line per record, whatever the values hold.

A receipt carries what callers put in metadata, so a value may be a lone surrogate (bytes read
with ``surrogateescape``), a NaN or infinity, an object JSON does not know, or an object whose
``str`` raises. Each is written as readable text instead, so that one complete, valid UTF-8
line is written for every record and no record is lost to its values.

Example:
    >>> encode_record({"kind": "call", "cost": float("nan")})
    b'{"kind":"call","cost":"NaN"}\\n'
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["UNENCODABLE", "encode_record", "record_date", "text_of", "utc_date", "utf8_safe"]

_MAX_DEPTH = 64


def text_of(value: object) -> str:
    """``str(value)``, or a marker naming its type when even that fails."""
    try:
        text = str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return utf8_safe(text)


def utf8_safe(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (from ``surrogateescape`` decoding or broken
    input) become their ``\\udXXX`` spelling instead of failing the whole line (or a store's
    key); any other text is returned as it is.

    Example:
        >>> utf8_safe("caf\\udce9"), utf8_safe("café")
        ('caf\\\\udce9', 'café')
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` with what strict JSON cannot hold turned into text, for the slow path.

    Non-finite floats become ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, strings are made
    valid UTF-8 and other objects become their text. The shape is kept: a cycle (found as
    nesting deeper than ``_MAX_DEPTH``) or a key JSON has no spelling for still raises, as
    that is a bug in whoever built the record, not a value to write down.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, Mapping | list | tuple):
        if depth >= _MAX_DEPTH:
            raise ValueError(f"record nested deeper than {_MAX_DEPTH} levels (a cycle?)")
        if isinstance(value, Mapping):
            return {_key(k): _plain(v, depth + 1) for k, v in value.items()}
        return [_plain(v, depth + 1) for v in value]
    return text_of(value)


def _key(key: object) -> object:
    if isinstance(key, str):
        return utf8_safe(key)
    if key is None or isinstance(key, bool | int | float):
        return key  # the encoder spells these as JSON does
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


# One encoder for every record: ``json.dumps`` with options builds a new encoder per call,
# which costs a third of the time of a receipt write. Receipts are trees built afresh, never
# cyclic: skipping the cycle bookkeeping saves 5% of the encoding; a record that is cyclic
# anyway fails here and takes the slow path below. ``allow_nan=False``: ``NaN`` and
# ``Infinity`` are not JSON, and strict readers (jq, most languages) reject the whole line.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=text_of,
    check_circular=False,
)
UNENCODABLE = (TypeError, ValueError, RecursionError)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as one compact, strict JSON line (valid UTF-8), newline included.

    A receipt is never lost to its values: those JSON cannot hold as they are (``NaN``,
    infinities, lone surrogates, arbitrary objects, even one whose ``str`` raises) are written
    as text. A record whose shape JSON cannot hold (a cycle, a tuple as a key) raises
    ``ValueError`` or ``TypeError``; the sinks report it as a :class:`ReceiptError`.

    Example:
        >>> encode_record({"a": 1})
        b'{"a":1}\\n'
        >>> encode_record({"latency_ms": float("nan")})
        b'{"latency_ms":"NaN"}\\n'
    """
    try:
        return (_ENCODER.encode(record) + "\n").encode("utf-8")
    except (*UNENCODABLE, UnicodeEncodeError):  # UnicodeEncodeError: a lone surrogate
        return (_ENCODER.encode(_plain(record)) + "\n").encode("utf-8")


# An ISO 8601 date and time as other tools write it, read the same on every Python (3.10's
# datetime.fromisoformat refuses "Z", offsets without a colon and fractions of other than 3 or
# 6 digits, which 3.11's reads): any one character between date and time, colons optional,
# a fraction of any length after "." or ",", an offset of "Z" or +-hh[[:]mm[[:]ss[.f]]].
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2}).(\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,]\d+)?)?)? ?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.\d+)?)?)?)?",
    re.ASCII,
)


def utc_date(ts: str) -> str | None:
    """The UTC day (``YYYY-MM-DD``) of an ISO 8601 timestamp, or ``None`` if ``ts`` is not one.

    Receipts are written in UTC (``+00:00``) and read without parsing; a timestamp with
    another offset is moved to UTC first, so that its day is the day a UTC report and the
    sink's ``{date}`` file give it. One without an offset is taken as UTC, and one this reader
    does not know (an hour of 25) keeps its day as written. ``Z``, ``-0500``, ``+05:30`` and
    fractions of any length read the same on every Python; ``24:00`` (the next day's midnight)
    and a leap second (``:60``) are read as ISO 8601 means them.

    Example:
        >>> utc_date("2026-01-02T23:30:00-05:00"), utc_date("2026-01-02T03:04:05.000+00:00")
        ('2026-01-03', '2026-01-02')
        >>> utc_date("2026-01-02T23:30:00.5-0500")
        '2026-01-03'
    """
    if len(ts) < 10 or ts[4] != "-" or ts[7] != "-":
        return None
    if len(ts) == 10 or (ts.endswith(("+00:00", "Z")) and ts[11:13] != "24"):
        return ts[:10]
    match = _TIMESTAMP.fullmatch(ts)
    if match is None:
        return ts[:10]  # a form this reader does not know
    year, month, day, hour, minute, second = (int(g or 0) for g in match.group(1, 2, 3, 4, 5, 6))
    sign = -1 if match.group(8) == "-" else 1  # no offset, or Z: UTC
    off_h, off_m, off_s = (int(g or 0) for g in match.group(9, 10, 11))
    # ISO 8601 times datetime refuses: 24:00 ends the day (the next one's midnight), and a
    # leap second (:60) lies in the minute it closes.
    late = hour == 24 and minute == 0 and second == 0
    if late:
        hour = 0
    if second == 60:
        second = 59
    try:
        # A time's fraction cannot move it to another day (midnight falls on a whole second,
        # and so does it under a whole-second offset); an offset's fraction is left out.
        zone = dt.timezone(sign * dt.timedelta(hours=off_h, minutes=off_m, seconds=off_s))
        stamp = dt.datetime(year, month, day, hour, minute, second, tzinfo=zone)
        if late:
            stamp += dt.timedelta(days=1)
    except (ValueError, OverflowError):
        return ts[:10]  # out of range (hour 25, offset of 24 hours): its day as written
    return stamp.astimezone(dt.timezone.utc).date().isoformat()


def record_date(record: Mapping[str, Any]) -> str:
    """The UTC day of ``record``'s ``ts`` (today's for a record without a usable one)."""
    ts = record.get("ts")
    day = utc_date(ts) if isinstance(ts, str) else None
    return day or dt.datetime.now(dt.timezone.utc).date().isoformat()
