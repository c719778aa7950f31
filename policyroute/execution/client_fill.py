"""litellm's sync HTTP clients built once per cache key, however many threads need one at once.

litellm keeps the HTTP clients it builds (OpenAI and Azure SDK clients, its own ``HTTPHandler``)
in one process-wide cache, ``litellm.in_memory_llm_clients_cache``, and fills it without a lock:
a sync call looks its client up (``get_cache``), builds one on a miss and stores it
(``set_cache``). Threads that miss the same key at the same moment each build a client with its
own connection pool, and each store overwrites the last (``InMemoryCache.set_cache`` assigns
``cache_dict[key]`` without looking at what was there): every client but the last is dropped
unclosed, and the connections it left idle in its pool are closed by the garbage collector only,
with a ``ResourceWarning`` each and a file descriptor held until then. An entry expires after
its TTL (an hour for these clients), so in a long-running threaded server the race comes back
for as long as the process lives. Async calls do not race: a loop's lookup and store run with no
``await`` between them, and their keys carry the loop's id.

While policyroute makes a sync litellm call (:func:`one_client_per_key`), a lookup that misses
takes a lock for its key and looks again: the thread that got there first builds the client and
stores it, which releases the lock, and the threads that waited find that client. A call that
has a key's lock when it ends (its build failed, or litellm looked the key up without storing
one) releases it then; a key litellm looked up and did not store in a call that succeeded is
not locked again. Lookups that hit, by far the most, take no lock. A wait gives up after
``_WAIT_SECONDS`` and the call goes on as litellm would, so no lock order can deadlock a call.

Why this way: the cache keys are computed by litellm's private per-provider code, so a lock per
deployment around the whole call would both miss keys that deployments share (one
``httpx_client`` key serves every Anthropic deployment) and hold calls back for a whole
response. Passing litellm a client of ours (``client=``) needs the right client type per
provider code path (an OpenAI SDK client here, an ``HTTPHandler`` there), which litellm moves
between releases. Closing the dropped client is not possible: it is still carrying the
request of the thread that built it. The cache's ``get_cache`` and ``set_cache`` are public
methods, and look up, build, store is how every client getter of litellm 1.106 fills it (OpenAI,
Azure, ``get_httpx_client``, Vertex); they are wrapped on the cache instance, and the wrappers do
exactly what litellm does for every call but policyroute's sync ones (a context variable read
more, about 0.2 us a lookup). A litellm of the pinned range (``litellm>=1.80``) that fills its
cache some other way leaves nothing to serialize: a lock is taken on a miss only, given back
when the call ends if no store did, and not taken for that key again. If the cache is missing
or does not look like litellm's, nothing is wrapped and calls run as litellm makes them. A
cache litellm's users replace is wrapped when policyroute's next sync call sees it. Users' own
litellm calls racing policyroute's still can drop a client: only the calls
policyroute makes are serialized.

The clients a sync call looks up or stores also get the request and response hooks that keep
a sync attempt's deadline from the moment its request is written
(:mod:`~policyroute.execution.sync_deadline`), once each.

Example:
    >>> with one_client_per_key():  # doctest: +SKIP
    ...     litellm.completion(model="openai/gpt-4o-mini", messages=messages)
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from policyroute.execution.sync_deadline import watch_responses

__all__ = ["one_client_per_key", "with_one_client_per_key"]

_log = logging.getLogger("policyroute.execution")

# How long a lookup waits for the thread building its key's client. A build takes
# milliseconds (an Azure AD token fetch, seconds); a longer wait means the lock is held
# for something else, and the call is better made as litellm would make it.
_WAIT_SECONDS = 10.0

# The attribute that marks a cache whose methods are wrapped (its value: the wrapped cache).
_MARK = "_policyroute_one_client_per_key"


class _Fill:
    """The keys one sync call holds the lock of, while it builds their clients."""

    __slots__ = ("held", "open")

    def __init__(self) -> None:
        self.held: dict[str, threading.Lock] = {}
        self.open = True


_fill: contextvars.ContextVar[_Fill | None] = contextvars.ContextVar(
    "policyroute_client_fill", default=None
)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
# Keys litellm looked up and did not store in a call that succeeded: not client keys.
_not_filled: set[str] = set()


@contextlib.contextmanager
def one_client_per_key() -> Iterator[None]:
    """Serialize, per cache key, the building of litellm's clients by the sync calls inside.

    Cheap when nothing is built: a context variable set and reset around the call.
    """
    fill, token = _enter()
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        _leave(fill, token, succeeded)


def with_one_client_per_key(completion: Callable[..., Any]) -> Callable[..., Any]:
    """``completion`` (a sync litellm call) run inside :func:`one_client_per_key`.

    Example:
        >>> complete = with_one_client_per_key(litellm.completion)  # doctest: +SKIP
    """

    @functools.wraps(completion)
    def call(*args: Any, **kwargs: Any) -> Any:
        # Not through the context manager: this is every sync call's path, and a
        # generator-based one costs about a microsecond more.
        fill, token = _enter()
        succeeded = False
        try:
            answer = completion(*args, **kwargs)
            succeeded = True
            return answer
        finally:
            _leave(fill, token, succeeded)

    return call


def _enter() -> tuple[_Fill, contextvars.Token[_Fill | None]]:
    _wrap(sys.modules.get("litellm"))
    fill = _Fill()
    return fill, _fill.set(fill)


def _leave(fill: _Fill, token: contextvars.Token[_Fill | None], succeeded: bool) -> None:
    _fill.reset(token)
    fill.open = False
    if not fill.held:
        return
    for key, lock in fill.held.items():
        if succeeded:
            _not_filled.add(key)
        lock.release()
    fill.held.clear()


def _wrap(litellm: Any) -> None:
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    if cache is None or getattr(cache, _MARK, None) is cache:
        return
    get, put = getattr(cache, "get_cache", None), getattr(cache, "set_cache", None)
    if (
        not callable(get)
        or not callable(put)
        or not isinstance(getattr(cache, "cache_dict", None), dict)
    ):
        return
    with _locks_guard:  # two threads' first calls must not wrap it twice
        if getattr(cache, _MARK, None) is cache:
            return
        try:
            cache.get_cache = functools.partial(_get, get)
            cache.set_cache = functools.partial(_set, put)
            setattr(cache, _MARK, cache)
        except (AttributeError, TypeError):  # a cache that takes no attributes is left alone
            _log.debug("litellm's client cache cannot be wrapped", exc_info=True)


def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    key = kwargs.get("key", args[0] if args else None)
    return key if isinstance(key, str) else None


def _get(get: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    value = get(*args, **kwargs)
    fill = _fill.get()
    if fill is None or not fill.open:
        return value
    if value is not None:
        watch_responses(value)
        return value
    key = _key(args, kwargs)
    if key is None or key in fill.held or key in _not_filled:
        return value
    lock = _locks.get(key)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(key, threading.Lock())
    if not lock.acquire(timeout=_WAIT_SECONDS):
        return value
    fill.held[key] = lock
    value = get(*args, **kwargs)
    if value is not None:  # built by the thread this one waited for
        del fill.held[key]
        lock.release()
        watch_responses(value)
    return value


def _set(put: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return put(*args, **kwargs)
    finally:
        fill = _fill.get()
        if fill is not None and fill.open:
            watch_responses(kwargs.get("value", args[1] if len(args) > 1 else None))
        if fill is not None and fill.held:
            lock = fill.held.pop(_key(args, kwargs) or "", None)
            if lock is not None:
                lock.release()
