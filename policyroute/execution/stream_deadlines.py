"""The first-token and idle deadlines of a streamed attempt: what is left of them, and the
timeout errors (retried or fallen over like any timeout) they end an attempt with.

Example:
    >>> first_token_message(2.5)
    'no first token within 2.5s'
    >>> timeout_error(idle_message(None)).error_class
    'timeout'
"""

from __future__ import annotations

import time
from typing import Any

from policyroute.errors import ProviderError
from policyroute.execution.classify import make_error

__all__ = ["first_token_message", "idle_message", "remaining", "timed", "timeout_error"]


async def timed(awaitable: Any, message: str) -> Any:
    """Await ``awaitable``; its ``TimeoutError`` becomes a timeout error saying ``message``."""
    try:
        return await awaitable
    except TimeoutError as exc:
        raise timeout_error(message) from exc


def first_token_message(limit: float | None) -> str:
    """What a first-token timeout of ``limit`` seconds says."""
    return "no first token" if limit is None else f"no first token within {limit:g}s"


def idle_message(limit: float | None) -> str:
    """What an idle timeout of ``limit`` seconds says."""
    if limit is None:
        return "no new content"
    return f"no new content for more than {limit:g}s (chunks without content do not count)"


def timeout_error(message: str) -> ProviderError:
    """The error a streamed attempt past one of its deadlines ends with."""
    return make_error("timeout", message)


def remaining(limit: float | None, started: float) -> float | None:
    """Seconds left of ``limit`` counted from ``started`` (``perf_counter``); ``None``: no limit."""
    if limit is None:
        return None
    return limit - (time.perf_counter() - started)
