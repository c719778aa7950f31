"""litellm's async HTTP clients closed with the event loop that made them.

litellm keeps the async clients it builds (OpenAI SDK clients, its own HTTP handlers, their
aiohttp sessions) in a process-wide cache, keyed by the event loop they were made on, and
closes one only when the cache evicts it. A program that runs its calls in one
``asyncio.run()`` after another (a script, a task queue worker, a test suite) leaves each
finished loop's clients behind with their sockets open: closed by the garbage collector much
later, if at all, with a ``ResourceWarning`` each, and a file descriptor held per socket until
then.

Two more hold aiohttp sessions outside that cache, one at a time, for whichever loop used them
last: ``litellm.module_level_aclient`` (the HTTP handler of Anthropic's streamed calls, and of
the OpenAI-compatible, Ollama and image fetching paths), whose aiohttp transport makes a new
session when a call comes from another loop and closes the previous one only then; and
``litellm.main.base_llm_aiohttp_handler`` (the ``aiohttp_openai/`` provider), which keeps its
first session for good. The last loop's session stays open with its sockets after that loop
ended.

litellm also queues the logging of each async call (its success and failure handlers, which
run the callbacks a user registered) on one process-wide worker, bound to the loop of the last
call. A loop that ends right after its calls cancels the worker before it ran them; the next
loop takes them over, and ends the same way: each ``asyncio.run`` added its calls' logging work,
request and response included, to a backlog that grew for the life of the process.

The first async call on a loop registers a clean-up for the loop's end
(:func:`policyroute._loop_end.at_loop_end`) that runs the logging work left for that loop (for
a few seconds at most), then closes the clients cached for that loop and the sessions of those
two handlers that belong to that loop, and only those: other loops' clients, sessions and
logging, in other threads, are left alone, and the two handlers stay usable (their next call
makes a new session). A loop closed without that clean-up (``loop.close()`` after
``run_until_complete``) is forgotten when the next loop registers, so that it can be collected.
Nothing is done for a litellm whose objects do not look as expected.

Example:
    >>> async def call():
    ...     await close_litellm_clients_with_loop()  # then make litellm calls
    >>> asyncio.run(call())
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import sys
import weakref
from collections.abc import AsyncGenerator
from typing import Any

from policyroute._loop_end import at_loop_end, forget_closed_loops

__all__ = ["close_litellm_clients_with_loop", "closes_with_loop"]

_log = logging.getLogger("policyroute.execution")

# How long the logging work left for an ending loop may run (litellm's worker allows each
# callback 20 s; a loop's end must not wait that long for a hung one).
_LOGGING_SECONDS = 5.0

_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


def closes_with_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` already closes litellm's clients when it ends: then awaiting
    :func:`close_litellm_clients_with_loop` on it does nothing, and a caller on a hot path
    may skip it.

    Example:
        >>> async def call():
        ...     if not closes_with_loop(asyncio.get_running_loop()):
        ...         await close_litellm_clients_with_loop()
    """
    return loop in _closers


async def close_litellm_clients_with_loop() -> None:
    """Make sure the running loop closes litellm's clients for it when it ends (cheap after
    the first call on a loop)."""
    loop = asyncio.get_running_loop()
    if loop in _closers:
        return
    forget_closed_loops(_closers)
    suffix = f"-{_loop_key(loop)}"
    _closers[loop] = await at_loop_end(functools.partial(_close_loop_clients, suffix))


def _loop_key(loop: asyncio.AbstractEventLoop) -> int:
    """What litellm appends to the cache key of a client made on the running ``loop``: the
    loop's id up to 1.106, a number it gives each loop from 1.108 on."""
    closer = sys.modules.get("litellm.caching.evicted_client_closer")
    token = getattr(closer, "running_loop_token", None)
    if callable(token):
        try:
            key = token()
        except Exception:  # not as expected: fall back to the older key
            key = None
        if isinstance(key, int):
            return key
    return id(loop)


async def _close_loop_clients(suffix: str) -> None:
    # Run by the loop as it ends: the running loop is the one ending.
    loop = asyncio.get_running_loop()
    # The clean-up's async generator holds the loop (its finalizer is a method of the loop),
    # so the loop would never leave ``_closers`` while the entry is there.
    _closers.pop(loop, None)
    # Logging first: a callback may still use the clients closed next.
    try:
        await _run_logging_left(loop)
    except Exception:  # litellm's logging is best-effort; its clients must still be closed
        _log.debug("running litellm's logging left for the ending loop failed", exc_info=True)
    await _close_cached_clients(suffix)
    await _close_module_sessions(loop)


async def _run_logging_left(loop: asyncio.AbstractEventLoop) -> None:
    """Run the logging work litellm's worker holds for ``loop``: what is still queued, and what
    its worker took off the queue but was cancelled before starting. litellm's own
    ``clear_queue`` misses the latter, and ``flush`` would wait for them forever."""
    module = sys.modules.get("litellm.litellm_core_utils.logging_worker")
    worker: Any = getattr(module, "GLOBAL_LOGGING_WORKER", None)
    if worker is None or getattr(worker, "_bound_loop", None) is not loop:
        return
    queue = getattr(worker, "_queue", None)
    unstarted = getattr(worker, "_unstarted_dequeued_tasks", None)
    untrack = getattr(worker, "_untrack_dequeued", None)
    if not (isinstance(queue, asyncio.Queue) and callable(unstarted) and callable(untrack)):
        return
    left = list(unstarted())
    for task in left:
        untrack(task)
    while not queue.empty():
        left.append(queue.get_nowait())
        queue.task_done()
    runs = [run for run in map(_logging_run, left) if run is not None]
    if not runs:
        return
    _done, late = await asyncio.wait(runs, timeout=_LOGGING_SECONDS)
    for run in late:  # a callback that hangs is dropped rather than holding the loop open
        run.cancel()
    if late:
        _log.debug("%d litellm logging callbacks still running at the loop's end", len(late))
        await asyncio.wait(late)
    for run in runs:  # retrieved, as litellm's worker does, instead of logged by the loop
        if not run.cancelled() and run.exception() is not None:
            _log.debug("a litellm logging callback failed", exc_info=run.exception())


def _logging_run(task: Any) -> asyncio.Task[Any] | None:
    """The logging coroutine of ``task`` started in the context it was queued from."""
    coroutine = task.get("coroutine") if isinstance(task, dict) else None
    context = task.get("context") if isinstance(task, dict) else None
    if not inspect.iscoroutine(coroutine):
        return None
    if not isinstance(context, contextvars.Context):
        return asyncio.ensure_future(coroutine)
    return context.copy().run(asyncio.ensure_future, coroutine)


async def _close_cached_clients(suffix: str) -> None:
    litellm = sys.modules.get("litellm")
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    entries = getattr(cache, "cache_dict", None)
    if cache is None or not isinstance(entries, dict):
        return
    closer = getattr(cache, "evicted_client_closer", None)
    for key in [k for k in list(entries) if isinstance(k, str) and k.endswith(suffix)]:
        client = entries.get(key)
        try:
            await _aclose(client)
            _disown(closer, client)
            cache.delete_cache(key)
        except Exception:  # a client that fails to close is litellm's to collect
            _log.debug("closing litellm's client %s failed", key, exc_info=True)


def _disown(closer: Any, client: Any) -> None:
    """Tell litellm's evicted-client closer that ``client``, closed here, is not its to close.

    Deleting a cache entry hands its client to that closer, which closes a client whose close
    is a coroutine only from the loop it was evicted on: here the loop that is ending, which
    never asks again. Each ``asyncio.run`` would leave it one entry for good (about 1 KB) until
    its queue is full (10,000), and from then on it would close no evicted client at all."""
    owned = getattr(closer, "_owned", None)
    if isinstance(owned, weakref.WeakSet):
        with contextlib.suppress(TypeError):  # not weakly referenceable: never queued either
            owned.discard(client)


async def _aclose(client: Any) -> None:
    # litellm's own handlers close their httpx client only when they made it themselves, so
    # the httpx client under one (``.client``) is closed directly, which closes its transport.
    inner = getattr(client, "client", None)
    if inner is not None and not isinstance(inner, type) and hasattr(inner, "aclose"):
        await _close_one(inner)
    await _close_one(client)


async def _close_one(client: Any) -> None:
    for name in ("aclose", "close"):
        method = getattr(client, name, None)
        if callable(method):
            result = method()
            if inspect.isawaitable(result):
                await result
            return


async def _close_module_sessions(loop: asyncio.AbstractEventLoop) -> None:
    """Close the aiohttp sessions of litellm's module-level handlers that belong to ``loop``."""
    litellm = sys.modules.get("litellm")
    # Read from the module's namespace: litellm makes module_level_aclient on first attribute
    # access, and there is nothing to close when no call made it.
    handler = vars(litellm).get("module_level_aclient") if litellm is not None else None
    # Its httpx client (not the ``client`` property, which would make a new one if closed).
    httpx_client = getattr(handler, "_client", None)
    transports = [getattr(httpx_client, "_transport", None)]
    transports += list((getattr(httpx_client, "_mounts", None) or {}).values())
    main = sys.modules.get("litellm.main")
    aiohttp_handler: Any = getattr(main, "base_llm_aiohttp_handler", None)
    transports.append(getattr(aiohttp_handler, "transport", None))
    for transport in transports:
        if getattr(transport, "_owns_session", False):
            await _close_session(getattr(transport, "client", None), loop)
    # Its own session, reused for every later call: forgotten once closed, so that the next
    # call, on another loop, makes a new one instead of failing on a closed session.
    session = getattr(aiohttp_handler, "client_session", None)
    if getattr(aiohttp_handler, "_owns_session", False) and await _close_session(session, loop):
        aiohttp_handler.client_session = None


async def _close_session(session: Any, loop: asyncio.AbstractEventLoop) -> bool:
    """Close ``session`` if it is an aiohttp session of ``loop``; say whether it is one, now
    closed (the handler's own session is often its transport's too, closed just before)."""
    aiohttp = sys.modules.get("aiohttp")
    client_session = getattr(aiohttp, "ClientSession", None)
    if client_session is None or not isinstance(session, client_session):
        return False
    # A session of another loop is left to that loop: it may be running, in another thread.
    if getattr(session, "_loop", None) is not loop:
        return False
    if not session.closed:
        try:
            await session.close()
        except Exception:  # a session that fails to close is litellm's to collect
            _log.debug("closing litellm's aiohttp session %r failed", session, exc_info=True)
    return bool(session.closed)
