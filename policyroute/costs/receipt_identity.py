"""Which receipt a record is, and whether a copy of it was already read.

The same receipt can reach a report through two inputs: a rotated file and its copy,
``receipts.jsonl`` and an overlapping ``receipts.jsonl.1.gz``, or the JSON-lines file and the
SQLite database one process writes both of. Added up twice, it overstates spend.

A receipt's identity is its ``kind`` and ``request_id`` (unique per call; see
:class:`~policyroute.request.Request`), plus, for an attempt, its ``attempt`` number (which
counts the attempts of a call from 1): a call writes one call receipt and one attempt receipt
per attempt. A record without these (written by hand, by an older tool, or a bare receipt whose
building failed, which has no ``attempt`` number) cannot be told apart from others and is
always counted.

Example:
    >>> seen = ReceiptDeduplicator()
    >>> call = {"kind": "call", "request_id": "r1", "cost": "0.5"}
    >>> seen.check(call), seen.check(dict(call)), seen.check({**call, "cost": "0.7"})
    ('new', 'duplicate', 'conflict')
    >>> receipt_identity({"kind": "attempt", "request_id": "r1", "attempt": 2})
    ('attempt', 'r1', 2)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "DIGEST_BYTES",
    "ReceiptCheck",
    "ReceiptDeduplicator",
    "ReceiptIdentity",
    "conflict_reason",
    "receipt_identity",
]

ReceiptIdentity = tuple[str, str, int | None]
"""``(kind, request_id, attempt)``; ``attempt`` is ``None`` for a call receipt."""

ReceiptCheck = Literal["new", "duplicate", "conflict", "unidentified"]
"""What :meth:`ReceiptDeduplicator.check` found: a receipt not seen before, an exact copy of
one seen, one with a seen identity but other content, or a record with no identity."""

DIGEST_BYTES = 15
"""Bytes of an identity's BLAKE2b digest kept per receipt: 120 bits, so that two receipts
among a billion share one with odds below 1e-18 (15 bytes make a bytes object of 48, the
allocator's size for 16 too)."""

# The content digest is kept as an int below 2**60: CPython stores it in two 30-bit digits,
# the smallest int object past a one-digit one (32 bytes with the allocator's rounding).
_CONTENT_BITS = 60


def receipt_identity(record: Mapping[str, Any]) -> ReceiptIdentity | None:
    """``(kind, request_id, attempt)`` of a call or attempt receipt; ``None`` when it has none.

    Example:
        >>> receipt_identity({"kind": "call", "request_id": "r1", "attempt": 9})
        ('call', 'r1', None)
        >>> receipt_identity({"kind": "attempt", "request_id": "r1"}) is None
        True
    """
    kind = record.get("kind")
    request_id = record.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return None
    if kind == "call":
        return ("call", request_id, None)
    if kind == "attempt":
        number = record.get("attempt")
        if isinstance(number, int) and not isinstance(number, bool):
            return ("attempt", request_id, number)
    return None


def conflict_reason(record: Mapping[str, Any]) -> str:
    """Why a record that :meth:`ReceiptDeduplicator.check` found in ``conflict`` is left out
    (a long request id cut to 80 characters).

    Example:
        >>> conflict_reason({"kind": "attempt", "request_id": "r1", "attempt": 2}).split(":")[0]
        "the receipt of attempt 2 of request 'r1' was read before with other content"
    """
    identity = receipt_identity(record)
    if identity is None:
        what = "a receipt"
    else:
        kind, request_id, number = identity
        shown = request_id if len(request_id) <= 80 else request_id[:79] + "…"
        what = (
            f"the {kind} receipt of request {shown!r}"
            if number is None
            else f"the receipt of {kind} {number} of request {shown!r}"
        )
    return (
        f"{what} was read before with other content: this copy is left out"
        " (the first one read counts)"
    )


def _identity_digest(identity: ReceiptIdentity) -> bytes:
    kind, request_id, number = identity
    # NUL cannot occur in the kind or the number's digits; the request id comes last.
    text = f"{kind}\x00{'' if number is None else number}\x00{request_id}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


# Canonical JSON (sorted keys, ASCII) so that the same receipt read from a JSON line and from
# a database row, or re-serialised by a tool (a log shipper) that reorders keys or spaces them
# otherwise, digests the same. One encoder for all: json.dumps with options builds one a call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
# The same text for records a JSON reader made, which cannot refer to themselves: the check
# for cycles (a tenth of the encoding) is left out.
_CANONICAL_PARSED = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), default=str, check_circular=False
)


def _content_digest(record: Mapping[str, Any], encoder: json.JSONEncoder = _CANONICAL) -> int:
    text = encoder.encode(record)
    digest = hashlib.blake2b(text.encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - _CONTENT_BITS)


class ReceiptDeduplicator:
    """Remembers the receipts seen so far, as digests, to tell copies from new receipts.

    For each identified receipt it keeps a 120-bit digest of the identity (a 48-byte bytes
    object) mapped to a 60-bit digest of the content (a 32-byte int) in one dict. Measured
    with ``tracemalloc`` over 1,000,000 synthetic identities: about 126 bytes per receipt,
    dict slots included (the process grew by about 137 bytes per receipt), so about 130 MB
    per million receipts; the records themselves (several kB each as dicts) are never kept.
    Records without an identity cost nothing.

    Example:
        >>> seen = ReceiptDeduplicator()
        >>> seen.check({"kind": "call", "cost": "0.1"})
        'unidentified'
        >>> len(seen)
        0
    """

    __slots__ = ("_encoder", "_seen")

    def __init__(self, *, parsed: bool = False) -> None:
        # parsed: every record checked was made by a JSON reader (so holds no cycle)
        self._encoder = _CANONICAL_PARSED if parsed else _CANONICAL
        self._seen: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, record: Mapping[str, Any]) -> ReceiptCheck:
        """Whether ``record`` is new (and now remembered), a copy, or a conflicting copy.

        The first record read with an identity is the one remembered: a later record with
        the same identity is a ``duplicate`` when its content is the same, a ``conflict``
        when it differs (whichever fields differ).
        """
        identity = receipt_identity(record)
        if identity is None:
            return "unidentified"
        key = _identity_digest(identity)
        content = _content_digest(record, self._encoder)
        first = self._seen.get(key)
        if first is None:
            self._seen[key] = content
            return "new"
        return "duplicate" if first == content else "conflict"
