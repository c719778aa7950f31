"""Faults the fake provider can inject instead of (or while) answering a request.

Build them with the :class:`Fault` factory methods, e.g. ``Fault.status(429, retry_after=1)``
or ``Fault.stream_cut(after=3)``; each returns an immutable instance of a concrete subclass
that a test can also construct directly. The base class and its factories are in
:mod:`._fault_base`, the HTTP error answers in :mod:`._status_faults` and the broken
deliveries in :mod:`._stream_faults`; every name is importable from here.

Example:
    >>> isinstance(Fault.stream_cut(after=1), Fault)
    True
"""

from __future__ import annotations

from typing import TypeAlias

from policyroute.testing._fault_base import DEFAULT_HANG_SECONDS, Fault
from policyroute.testing._status_faults import (
    BadRequestFault,
    ContentFilterFault,
    ContextLengthFault,
    StatusFault,
)
from policyroute.testing._steps import Reply
from policyroute.testing._stream_faults import (
    ConnectionReset,
    MalformedBody,
    MalformedChunk,
    MissingDone,
    NoResponse,
    RawResponse,
    RawStream,
    SlowFirstToken,
    StreamCut,
    StreamStall,
)

__all__ = [
    "DEFAULT_HANG_SECONDS",
    "BadRequestFault",
    "ConnectionReset",
    "ContentFilterFault",
    "ContextLengthFault",
    "Fault",
    "MalformedBody",
    "MalformedChunk",
    "MissingDone",
    "NoResponse",
    "RawResponse",
    "RawStream",
    "SlowFirstToken",
    "StatusFault",
    "Step",
    "StreamCut",
    "StreamStall",
]

Step: TypeAlias = Reply | Fault
"""One scripted answer: a :class:`~policyroute.testing.Reply` or a :class:`Fault`."""
