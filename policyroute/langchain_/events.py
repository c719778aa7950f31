"""Budget threshold events as LangChain custom events.

Accounting fires one callback per crossed ``warn_at`` threshold, for whichever call crossed it;
it is shared by every chat model on the policy. :func:`install` chains a dispatcher in front of
the accounting's ``on_threshold`` (keeping any callback already there), :func:`watch` collects
the events of one request id while its call runs, and :func:`dispatch` / :func:`adispatch`
send them to that call's run manager as ``policyroute_budget_threshold`` custom events, which
``astream_events`` and callback handlers receive. Collecting first and dispatching from the
call itself keeps each event on its own run, also when many calls run at once.

Example:
    >>> async for ev in llm.astream_events("hi", version="v2"):  # doctest: +SKIP
    ...     if ev["event"] == "on_custom_event":
    ...         print(ev["name"], ev["data"]["threshold"])
    policyroute_budget_threshold 0.75
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks.manager import BaseRunManager, ahandle_event, handle_event

from policyroute._litellm import jsonable

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor
    from policyroute.execution.result import CallResult
    from policyroute.request import Request

__all__ = [
    "EVENT_NAME",
    "acomplete",
    "adispatch",
    "complete",
    "dispatch",
    "install",
    "unwatch",
    "watch",
]

EVENT_NAME = "policyroute_budget_threshold"
"""The name of the custom event sent for each crossed budget threshold."""

_lock = threading.Lock()
_pending: dict[str, list[Any]] = {}


class _Dispatcher:
    """The ``on_threshold`` callback: files each event under its request, then chains on."""

    def __init__(self, previous: Callable[[Any], None] | None) -> None:
        self.previous = previous

    def __call__(self, event: Any) -> None:
        with _lock:
            bucket = _pending.get(getattr(event, "request_id", ""))
        if bucket is not None:
            bucket.append(event)
        if self.previous is not None:
            self.previous(event)


def install(accounting: Any) -> bool:
    """Hook the dispatcher into ``accounting``; false if it has no ``on_threshold`` hook."""
    if not hasattr(accounting, "on_threshold"):
        return False
    with _lock:
        current = accounting.on_threshold
        if not isinstance(current, _Dispatcher):
            accounting.on_threshold = _Dispatcher(current)
    return True


def watch(request_id: str) -> list[Any]:
    """Start collecting the threshold events of ``request_id``; returns the live list."""
    bucket: list[Any] = []
    with _lock:
        _pending[request_id] = bucket
    return bucket


def unwatch(request_id: str) -> None:
    """Stop collecting for ``request_id``."""
    with _lock:
        _pending.pop(request_id, None)


def dispatch(run_manager: BaseRunManager | None, events: list[Any]) -> None:
    """Send the collected ``events`` to the call's handlers, then forget them."""
    if run_manager is not None:
        for event in events:
            handle_event(
                run_manager.handlers,
                "on_custom_event",
                "ignore_custom_event",
                EVENT_NAME,
                jsonable(event),
                run_id=run_manager.run_id,
                tags=run_manager.tags,
                metadata=run_manager.metadata,
            )
    events.clear()


async def adispatch(run_manager: BaseRunManager | None, events: list[Any]) -> None:
    """Async twin of :func:`dispatch`."""
    if run_manager is not None:
        for event in events:
            await ahandle_event(
                run_manager.handlers,
                "on_custom_event",
                "ignore_custom_event",
                EVENT_NAME,
                jsonable(event),
                run_id=run_manager.run_id,
                tags=run_manager.tags,
                metadata=run_manager.metadata,
            )
    events.clear()


def complete(
    executor: Executor,
    request: Request,
    run_manager: BaseRunManager | None,
    *,
    watching: bool,
) -> CallResult:
    """Run ``request`` through ``executor``; with ``watching``, the thresholds it crossed are
    sent to ``run_manager`` once it ends, however it ends."""
    if not watching:
        return executor.complete(request)
    crossed = watch(request.request_id)
    try:
        return executor.complete(request)
    finally:
        unwatch(request.request_id)
        dispatch(run_manager, crossed)


async def acomplete(
    executor: Executor,
    request: Request,
    run_manager: BaseRunManager | None,
    *,
    watching: bool,
) -> CallResult:
    """Async twin of :func:`complete`."""
    if not watching:
        return await executor.acomplete(request)
    crossed = watch(request.request_id)
    try:
        return await executor.acomplete(request)
    finally:
        unwatch(request.request_id)
        await adispatch(run_manager, crossed)
