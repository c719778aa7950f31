"""The policies and executors every call on one policy shares, in one process.

``policyroute.completion``, ``policyroute.acompletion`` and every
:class:`~policyroute.langchain.ChatPolicyRoute` draw from the same two small LRU caches, so a
completion call and a chat model on the same policy file and accounting run on one executor:
one circuit breaker per deployment, one set of latency stats.

- A policy (a file or YAML text) is loaded once per *policy key*: the file's absolute path and
  version (see :func:`policyroute._files.file_version`; an edited file loads again), or the
  text, plus the values of the ``${VAR}`` references it holds. Those values are read when the
  policy loads and are not part of its content hash, so a changed value loads it again. Only
  the newest version of a file is kept: loading one drops the older ones and their executors,
  so that a file edited while the process runs does not keep every version's executor (and
  its default accounting's open store and receipt file) until it ages out. A
  hit costs a stat, a read of each referenced variable and two dict lookups; only a policy
  that loads is cached. Concurrent misses on one source share one load, whether the callers
  are threads or tasks on any event loop: an async caller loads in its loop's default
  executor, a sync caller in its own thread, and each joins a load already under way.
- An executor is kept per *executor key*: the compiled policy (by identity, as the step above
  hands out one per policy key) and the accounting (by identity too), or, for none, the
  policy's default accounting of the current working directory, against which the policy's
  store and receipt paths are read. A default accounting that was closed gets a new executor.
  An executor dropped here (the least recently used one past :data:`CACHE_SIZE`, or one of a
  file version superseded) is only forgotten: a chat model or a call still using it keeps it,
  and its default accounting, which closes once nothing uses it any more.

Example:
    >>> import policyroute._shared_cache as cache
    >>> cache.policy("policies/tiered.yaml") is cache.policy("policies/tiered.yaml")
    True
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple

from policyroute._files import file_version, read_at_most
from policyroute.errors import RequestError
from policyroute.execution.hooks import Accounting
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.load import is_policy_text

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = [
    "CACHE_SIZE",
    "PolicyRef",
    "aexecutor_for",
    "apolicy",
    "clear",
    "executor",
    "executor_for",
    "new_executor",
    "policy",
]

PolicyRef = CompiledPolicy | str | os.PathLike[str]

CACHE_SIZE = 64
"""How many loaded policies, and how many executors, are kept (least recently used go first)."""

# A policy file's absolute path and version, or a policy's YAML text and ().
_Origin = tuple[str, tuple[int, ...]]
_ExecutorKey = tuple[int, int, str]


class _Loaded(NamedTuple):
    """A policy loaded from one origin, the variables it references (sorted by name) and the
    values they had when it was loaded."""

    names: tuple[str, ...]
    values: tuple[str | None, ...]
    policy: CompiledPolicy


_lock = threading.Lock()
# Only the latest load of an origin is kept: the values of its variables are the process's.
_policies: OrderedDict[_Origin, _Loaded] = OrderedDict()
_loading: dict[_Origin, _Load] = {}
_executors: OrderedDict[_ExecutorKey, tuple[CompiledPolicy, Accounting | None, Executor]] = (
    OrderedDict()
)
# Builds one executor at a time, outside ``_lock``: opening a default accounting's store and
# sinks is file I/O, which cache hits (on an event loop, say) must not wait for.
_building = threading.Lock()


# --------------------------------------------------------------------------- policies


def policy(ref: PolicyRef) -> CompiledPolicy:
    """The compiled policy for ``ref`` (a compiled policy, a path or YAML text), loaded in this
    thread on a miss unless a load of the same source is under way, which it waits for.

    A broken policy raises :class:`~policyroute.errors.PolicyValidationError` (the same one
    for every caller sharing the load); a missing file is one (PR001).

    Example:
        >>> policy("policies/tiered.yaml").name
        'tiered'
    """
    if isinstance(ref, CompiledPolicy):
        return ref
    source = _source(ref)
    if source.origin is None:
        return _load(source)
    cached = _cached(source.origin)
    if cached is not None:
        return cached
    # A load under way that no thread runs yet (queued in a loop's executor, whose workers
    # may all be callers like this one, waiting) is run here rather than waited for.
    load, _ = _join(source.origin)
    _run(source, load)
    return load.outcome.result()


async def apolicy(ref: PolicyRef) -> CompiledPolicy:
    """:func:`policy` for a running loop: a miss loads in the loop's default executor (reading,
    validating and compiling a policy takes tens of milliseconds, which would stall every other
    task), or waits for the load of the same source under way in any thread.

    A caller's cancellation leaves the shared load to the others.

    Example:
        >>> (await apolicy("policies/tiered.yaml")).name  # doctest: +SKIP
        'tiered'
    """
    if isinstance(ref, CompiledPolicy):
        return ref
    source = _source(ref)
    if source.origin is None:
        return await asyncio.to_thread(_load, source)
    cached = _cached(source.origin)
    if cached is not None:
        return cached
    load, new = _join(source.origin)
    if new:
        try:
            asyncio.get_running_loop().run_in_executor(None, _run, source, load)
        except BaseException as exc:  # an executor shut down: fail the waiters, not hang them
            if _claim(load):
                _settle(source.origin, load, exc)
    return await asyncio.wrap_future(load.outcome)


class _Source(NamedTuple):
    """A policy as given (a path or the text), where it comes from (``None`` for a file that
    is missing, which is never cached), and whether it is the text."""

    given: str
    origin: _Origin | None
    text: bool


def _source(ref: object) -> _Source:
    if not isinstance(ref, (str, os.PathLike)):
        raise RequestError(
            "policy must be a CompiledPolicy, a path to a policy file or the policy's YAML"
            f" text, got {type(ref).__name__}"
        )
    if is_policy_text(ref):
        return _Source(ref, (ref, ()), True)
    given = os.fspath(ref)
    path = os.path.abspath(given)
    version = file_version(path)
    return _Source(given, None if version is None else (path, version), False)


def _cached(origin: _Origin) -> CompiledPolicy | None:
    with _lock:
        return _hit(origin)


def _hit(origin: _Origin) -> CompiledPolicy | None:
    """The cached policy of ``origin``, if its variables still have the values it was loaded
    with; the caller holds ``_lock``."""
    loaded = _policies.get(origin)
    if loaded is None or (
        loaded.names and tuple(map(os.environ.get, loaded.names)) != loaded.values
    ):
        return None
    _policies.move_to_end(origin)
    return loaded.policy


class _Load:
    """A load of one origin, which every caller missing meanwhile waits for, and whether a
    thread has taken it on yet."""

    __slots__ = ("claimed", "outcome")

    def __init__(self) -> None:
        self.claimed = False
        self.outcome: concurrent.futures.Future[CompiledPolicy] = concurrent.futures.Future()
        # Running, so that a waiter's cancellation (wrap_future passes it on) cannot cancel
        # the load the other waiters are sharing.
        self.outcome.set_running_or_notify_cancel()


def _join(origin: _Origin) -> tuple[_Load, bool]:
    """The load of ``origin`` under way, or a new one (done already if the policy has just
    been cached), and whether it is new."""
    with _lock:
        load = _loading.get(origin)
        if load is not None:
            return load, False
        load = _Load()
        cached = _hit(origin)
        if cached is not None:
            load.claimed = True
            load.outcome.set_result(cached)
            return load, False
        _loading[origin] = load
        return load, True


def _claim(load: _Load) -> bool:
    """Whether the caller is the one to run ``load`` (no thread runs it yet)."""
    with _lock:
        claimed, load.claimed = load.claimed, True
    return not claimed


def _load(source: _Source) -> CompiledPolicy:
    """Load, validate and compile ``source``, and cache it (the first one cached wins, so every
    caller shares one compiled policy)."""
    from policyroute.policy import loader

    origin = source.origin
    text = source.given if source.text else None if origin is None else _read(origin[0])
    if origin is None or text is None:
        # Missing or unreadable: the loader reports it as a policy problem (PR001).
        return loader.load_policy(source.given)
    # Read before loading: a value changed meanwhile makes the next call load again.
    names = _env_names(text)
    values = tuple(map(os.environ.get, names))
    # A file by the path as given: the compiled policy names it as its source.
    load = loader.load_policy_text if source.text else loader.load_policy
    compiled = load(source.given)
    with _lock:
        # The first one cached wins, unless it is of other values.
        cached = _policies.get(origin)
        if cached is None or cached.values != values:
            cached = _policies[origin] = _Loaded(names, values, compiled)
        _policies.move_to_end(origin)
        dropped = _trim(_policies)
        if not source.text:
            dropped += _supersede(origin)
    # Released outside the lock: the last reference to an executor going may close its
    # default accounting's store and sinks (file I/O).
    del dropped
    return cached.policy


def _supersede(origin: _Origin) -> list[Any]:
    """Drop the other versions of ``origin``'s file and their executors; return what was
    dropped, for the caller to release once it no longer holds ``_lock``, which it holds."""
    path = origin[0]
    stale = [o for o, loaded in _policies.items() if o[0] == path and o != origin and o[1]]
    old = {id(loaded.policy): loaded for loaded in map(_policies.pop, stale)}
    dropped: list[Any] = list(old.values())
    if old:
        for key in [k for k, entry in _executors.items() if id(entry[0]) in old]:
            dropped.append(_executors.pop(key))
    return dropped


def _run(source: _Source, load: _Load) -> None:
    """Run ``load`` unless a thread already does: every waiter gets the policy, or the same
    error."""
    assert source.origin is not None
    if not _claim(load):
        return
    try:
        compiled = _load(source)
    except BaseException as exc:  # whatever it is, the waiters must not wait forever
        _settle(source.origin, load, exc)
    else:
        _settle(source.origin, load, compiled)


def _settle(origin: _Origin, load: _Load, outcome: CompiledPolicy | BaseException) -> None:
    with _lock:
        if _loading.get(origin) is load:
            del _loading[origin]
    if isinstance(outcome, BaseException):
        load.outcome.set_exception(outcome)
    else:
        load.outcome.set_result(outcome)


def _env_names(text: str) -> tuple[str, ...]:
    from policyroute.policy.envrefs import env_names

    return tuple(sorted(set(env_names(text))))


def _read(path: str) -> str | None:
    from policyroute.policy.validate import MAX_FILE_BYTES

    try:
        data = read_at_most(path, MAX_FILE_BYTES)
    except OSError:
        return None
    # Too long to be a policy: the loader refuses it, reading no more than this did.
    return None if len(data) > MAX_FILE_BYTES else data.decode("utf-8", "replace")


# --------------------------------------------------------------------------- executors


def executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    """The executor every call on ``policy`` and ``accounting`` uses; ``None`` stands for the
    policy's default accounting in the current working directory.

    Example:
        >>> from policyroute.execution.hooks import NullAccounting
        >>> p, off = policy("policies/tiered.yaml"), NullAccounting()
        >>> executor(p, off) is executor(p, off)
        True
    """
    key = _executor_key(policy, accounting)
    cached = _cached_executor(key, policy, accounting)
    return cached if cached is not None else _build(key, policy, accounting)


def executor_for(ref: PolicyRef, accounting: Accounting | None) -> Executor:
    """:func:`executor` of :func:`policy`, for ``policyroute.completion``.

    Example:
        >>> from policyroute.execution.hooks import NullAccounting
        >>> executor_for("policies/tiered.yaml", NullAccounting()).policy.name
        'tiered'
    """
    return executor(policy(ref), accounting)


async def aexecutor_for(ref: PolicyRef, accounting: Accounting | None) -> Executor:
    """:func:`executor_for` for a running loop: loading the policy and opening its default
    accounting (file I/O) run in the loop's default executor.

    Example:
        >>> (await aexecutor_for("policies/tiered.yaml", None)).policy.name  # doctest: +SKIP
        'tiered'
    """
    compiled = await apolicy(ref)
    key = _executor_key(compiled, accounting)
    cached = _cached_executor(key, compiled, accounting)
    if cached is not None:
        return cached
    return await asyncio.to_thread(_build, key, compiled, accounting)


def new_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    """A new executor, shared with nobody: its breakers and stats start empty.

    Example:
        >>> from policyroute.execution.hooks import NullAccounting
        >>> p, off = policy("policies/tiered.yaml"), NullAccounting()
        >>> new_executor(p, off) is new_executor(p, off)
        False
    """
    from policyroute.execution.executor import Executor

    if accounting is None:
        from policyroute.accounting import default_accounting

        accounting = default_accounting(policy)
    return Executor(policy, accounting=accounting)


def _executor_key(policy: CompiledPolicy, accounting: Accounting | None) -> _ExecutorKey:
    # The default accounting is per working directory (see accounting.default_accounting).
    return id(policy), id(accounting), os.getcwd() if accounting is None else ""


def _cached_executor(
    key: _ExecutorKey, policy: CompiledPolicy, accounting: Accounting | None
) -> Executor | None:
    with _lock:
        entry = _executors.get(key)
        if entry is None or entry[0] is not policy or entry[1] is not accounting:
            return None
        made = entry[2]
        # A closed default accounting is replaced by default_accounting; an executor still
        # holding it would refuse every call. An accounting given by the caller is the
        # caller's to manage.
        if accounting is None and getattr(made.accounting, "closed", False):
            return None
        _executors.move_to_end(key)
        return made


def _build(key: _ExecutorKey, policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    with _building:
        # Callers racing to their first call share one executor.
        cached = _cached_executor(key, policy, accounting)
        if cached is not None:
            return cached
        made = new_executor(policy, accounting)
        with _lock:
            # The policy and accounting are held so that their ids cannot be reused meanwhile.
            _executors[key] = (policy, accounting, made)
            _executors.move_to_end(key)
            dropped = _trim(_executors)
        del dropped  # outside the lock, as in _load
        return made


def clear() -> None:
    """Forget the cached policies and executors (their breakers and stats with them); callers
    already holding an executor keep it.

    Example:
        >>> clear()
    """
    with _lock:
        dropped = [*_policies.values(), *_executors.values()]
        _policies.clear()
        _executors.clear()
    del dropped  # outside the lock, as in _load


def _trim(cache: OrderedDict[Any, Any]) -> list[Any]:
    """Drop the least recently used entries past :data:`CACHE_SIZE`; return them, for the
    caller to release outside ``_lock``."""
    dropped = []
    while len(cache) > CACHE_SIZE:
        dropped.append(cache.popitem(last=False)[1])
    return dropped
