"""litellm-style entry points: ``policyroute.completion`` and ``policyroute.acompletion``.

They take litellm's arguments plus a ``policy`` (a compiled policy, a path to one or its
YAML text), route the call by the policy, run it through the executor, and return litellm's
own response object. How the answer was obtained is attached as
``response._hidden_params["policyroute"]`` (request id, route, deployment, model, cost,
usage, attempts, time to first token); ``response._hidden_params["response_cost"]`` is the
cost the receipt charged.
The litellm arguments that would override the policy (retries, fallbacks, credentials,
mocks) are refused; see :func:`completion`.

Example:
    >>> import policyroute
    >>> response = policyroute.completion(  # doctest: +SKIP
    ...     policy="policies/tiered.yaml",
    ...     messages=[{"role": "user", "content": "hello"}],
    ...     metadata={"user_id": "u1"},
    ... )
    >>> response.choices[0].message.content  # doctest: +SKIP
    'Hello! How can I help?'
    >>> response._hidden_params["policyroute"]["deployment"]  # doctest: +SKIP
    'mini'
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from policyroute._files import file_version
from policyroute.errors import RequestError
from policyroute.execution.executor import Executor
from policyroute.execution.hooks import Accounting
from policyroute.execution.result import CallResult, StreamDelta, StreamEvent
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.facts import parse_messages
from policyroute.request import Request
from policyroute.request_checks import check_call, check_facts, refuse_takeovers

__all__ = ["AsyncCompletionStream", "CompletionStream", "acompletion", "completion"]

PolicyRef = CompiledPolicy | str | os.PathLike[str]

# A policy file's absolute path and (modification time, change time, size, inode), or a
# policy's YAML text and ().
_Key = tuple[str, tuple[int, ...]]

_CACHE_SIZE = 64
_lock = threading.Lock()
_policies: OrderedDict[_Key, CompiledPolicy] = OrderedDict()
# Loads under way for asynchronous callers, shared by every caller that misses meanwhile.
_loading: dict[_Key, concurrent.futures.Future[CompiledPolicy]] = {}
_executors: OrderedDict[tuple[int, int], tuple[CompiledPolicy, Any, Executor]] = OrderedDict()

# Request fields that litellm callers pass as keyword arguments.
_REQUEST_FIELDS = ("tools", "tool_choice", "response_format")


def completion(
    *,
    policy: PolicyRef,
    messages: Sequence[Mapping[str, Any]],
    model: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stream: bool = False,
    accounting: Accounting | None = None,
    **params: Any,
) -> Any:
    """Route and run one chat call; returns litellm's ``ModelResponse``.

    ``policy`` is a :class:`~policyroute.policy.compile.CompiledPolicy`, a path to a policy
    file, or YAML text (a string with a line break). Loaded policies and their executors are
    cached per path (reloaded when the file changes) so circuit breakers and latency stats
    are shared by every call. ``model``, ``metadata`` and ``tags`` are routing facts;
    everything else (``temperature``, ``max_tokens``, ``tools``...) is passed on to the
    deployment. With ``stream=True`` a :class:`CompletionStream` of litellm chunks is
    returned instead, once the first token arrived: as with litellm, a call that fails
    before its answer begins (every candidate failed, a budget refused it) raises here.

    litellm arguments that would take over what the policy decides are refused with a
    :class:`~policyroute.errors.RequestError`: ``num_retries`` and ``max_retries`` above 0
    (policyroute is the only retry layer), ``fallbacks`` and
    ``context_window_fallback_dict`` (the route's candidates are the fallbacks),
    ``api_key``, ``api_base``, ``base_url``, ``api_version`` and ``custom_llm_provider``
    (deployment settings, which would reach every candidate) and litellm's mocks
    (``mock_response``...; test with :class:`policyroute.testing.FakeProvider`).
    ``metadata`` is handed to litellm as well, for its callbacks. ``accounting`` replaces
    the policy's own budgets and receipts (e.g.
    :meth:`~policyroute.accounting.PolicyAccounting.from_policy` with other sinks, or
    ``NullAccounting()`` to turn them off). Failures raise
    :mod:`policyroute.errors` types, never litellm's: ``exc.error_class`` says which kind
    (``"rate_limit"``...), also on :class:`~policyroute.errors.AllCandidatesFailedError`.

    Example:
        >>> r = completion(policy="p.yaml", messages=[{"role": "user", "content": "hi"}])
        ... # doctest: +SKIP
        >>> r._hidden_params["policyroute"]["route"]  # doctest: +SKIP
        'default'
    """
    executor = _executor_for(policy, accounting)
    request = _request(messages, model, metadata, tags, stream, params)
    if stream:
        return CompletionStream(executor.stream(request)).start()
    return _annotated(executor.complete(request), executor.policy)


async def acompletion(
    *,
    policy: PolicyRef,
    messages: Sequence[Mapping[str, Any]],
    model: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stream: bool = False,
    accounting: Accounting | None = None,
    **params: Any,
) -> Any:
    """Async twin of :func:`completion`; with ``stream=True`` returns an
    :class:`AsyncCompletionStream`.

    Loading a policy file (on the first call, and on the first after the file changed) runs
    in the loop's default executor, not on the loop: other tasks keep running meanwhile.
    Concurrent calls that miss the cache for one policy share one load, and a policy that
    fails to load raises the same :class:`~policyroute.errors.PolicyValidationError` in each.

    Example:
        >>> r = await acompletion(policy="p.yaml", messages=[{"role": "user", "content": "hi"}])
        ... # doctest: +SKIP
    """
    executor = await _aexecutor_for(policy, accounting)
    request = _request(messages, model, metadata, tags, stream, params)
    if stream:
        return await AsyncCompletionStream(executor.astream(request)).start()
    return _annotated(await executor.acomplete(request), executor.policy)


class CompletionStream:
    """An iterator of litellm ``ModelResponseStream`` chunks.

    Once the stream completed, :attr:`result` holds the :class:`CallResult` and
    :attr:`policyroute` the same summary a non-streamed response carries. A stream that
    breaks after content was sent, before every choice had its finish reason, raises
    :class:`~policyroute.errors.StreamInterruptedError`.

    Example:
        >>> for chunk in completion(policy="p.yaml", messages=msgs, stream=True):  # doctest: +SKIP
        ...     print(chunk.choices[0].delta.content or "", end="")
    """

    def __init__(self, events: Iterator[StreamEvent]) -> None:
        self._events = events
        self._first: Any = None
        self.result: CallResult | None = None

    def start(self) -> CompletionStream:
        """Wait for the first chunk, so a call that fails before it raises here."""
        self._first = next(self, None)
        return self

    def __iter__(self) -> CompletionStream:
        return self

    def __next__(self) -> Any:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        for event in self._events:
            if isinstance(event, StreamDelta):
                return event.chunk
            self.result = event.result
        raise StopIteration

    def close(self) -> None:
        """Stop early; the attempt is settled and the call finished."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> CompletionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def policyroute(self) -> dict[str, Any] | None:
        """The call summary, once the stream completed."""
        return None if self.result is None else self.result.summary()


class AsyncCompletionStream:
    """Async twin of :class:`CompletionStream`.

    Example:
        >>> stream = await acompletion(policy="p.yaml", messages=msgs, stream=True)
        ... # doctest: +SKIP
        >>> async for chunk in stream:  # doctest: +SKIP
        ...     print(chunk.choices[0].delta.content or "", end="")
    """

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self._events = events
        self._first: Any = None
        self.result: CallResult | None = None

    async def start(self) -> AsyncCompletionStream:
        """Wait for the first chunk, so a call that fails before it raises here."""
        try:
            self._first = await self.__anext__()
        except StopAsyncIteration:
            pass
        return self

    def __aiter__(self) -> AsyncCompletionStream:
        return self

    async def __anext__(self) -> Any:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        async for event in self._events:
            if isinstance(event, StreamDelta):
                return event.chunk
            self.result = event.result
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop early; the attempt is settled and the call finished."""
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> AsyncCompletionStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def policyroute(self) -> dict[str, Any] | None:
        """The call summary, once the stream completed."""
        return None if self.result is None else self.result.summary()


def _default_accounting(policy: CompiledPolicy) -> Accounting:
    """The accounting the policy asks for (its budgets and receipts) when the caller gives none."""
    from policyroute.accounting import default_accounting

    return default_accounting(policy)


def clear_cache() -> None:
    """Forget cached policies and executors (their breakers and stats with them)."""
    with _lock:
        _policies.clear()
        _executors.clear()


# --------------------------------------------------------------------------- internals


def _request(
    messages: Sequence[Mapping[str, Any]],
    model: str | None,
    metadata: Mapping[str, Any] | None,
    tags: Sequence[str] | None,
    stream: bool,
    params: dict[str, Any],
) -> Request:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise RequestError(
            "messages must be a non-empty list of chat messages"
            f" ({{'role': ..., 'content': ...}}), got {type(messages).__name__}"
            + (" (empty)" if isinstance(messages, (list, tuple)) else "")
        )
    check_facts(model, metadata, tags)
    refuse_takeovers(params)
    fields = {name: params.pop(name) for name in _REQUEST_FIELDS if name in params}
    check_call(params, **fields)
    if metadata is not None:
        # Also litellm's own argument: its callbacks (loggers, tracing) read it as before.
        params["metadata"] = dict(metadata)
    return Request(
        messages=parse_messages(messages),
        model=model,
        params=params,
        stream=stream,
        metadata=metadata if metadata is not None else {},
        tags=tuple(tags) if tags is not None else (),
        **fields,
    )


def _annotated(result: CallResult, policy: object) -> Any:
    response = result.response
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        hidden = {}
        try:
            response._hidden_params = hidden
        except AttributeError:
            return response
    hidden["policyroute"] = result.summary()
    # What the answering attempt was charged: litellm's own figure unless the policy prices
    # the deployment itself (litellm's list price is then not what budgets and receipts say)
    # or litellm could not price the model at all.
    spec = policy.spec.models.get(result.deployment) if isinstance(policy, CompiledPolicy) else None
    priced_by_policy = spec is not None and spec.price is not None
    if result.attempts and (priced_by_policy or hidden.get("response_cost") is None):
        hidden["response_cost"] = float(result.attempts[-1].cost)
    return response


def _policy_for(ref: PolicyRef) -> CompiledPolicy:
    if isinstance(ref, CompiledPolicy):
        return ref
    source = _source(ref)
    cached = _cached(source)
    return cached if cached is not None else _load(source)


async def _apolicy_for(ref: PolicyRef) -> CompiledPolicy:
    """:func:`_policy_for` for a running loop: a miss loads in a worker thread (reading,
    validating and compiling a policy takes tens of milliseconds, which would stall every
    other task on the loop), and concurrent misses on one source share that one load."""
    if isinstance(ref, CompiledPolicy):
        return ref
    source = _source(ref)
    cached = _cached(source)
    if cached is not None:
        return cached
    if source.key is None:
        return await asyncio.to_thread(_load, source)
    with _lock:
        cached = _policies.get(source.key)
        if cached is not None:
            return cached
        loading = _loading.get(source.key)
        starts = loading is None
        if loading is None:
            loading = _loading[source.key] = concurrent.futures.Future()
            # Running, so that a waiter's cancellation (wrap_future passes it on) cannot
            # cancel the load the other waiters are sharing.
            loading.set_running_or_notify_cancel()
    if starts:
        try:
            asyncio.get_running_loop().run_in_executor(None, _load_shared, source, loading)
        except BaseException as exc:  # an executor shut down: fail the waiters, not hang them
            _settle(source, loading, exc)
    return await asyncio.wrap_future(loading)


class _Source(NamedTuple):
    """Where a policy comes from: its cache key (``None`` for a file that is missing, which is
    never cached), and its YAML text or its absolute path."""

    key: _Key | None
    text: str | None = None
    path: str | None = None


def _source(ref: PolicyRef) -> _Source:
    if not isinstance(ref, (str, os.PathLike)):
        raise RequestError(
            "policy must be a CompiledPolicy, a path to a policy file or the policy's YAML"
            f" text, got {type(ref).__name__}"
        )
    from policyroute.policy.load import is_policy_text

    if is_policy_text(ref):
        return _Source(key=(ref, ()), text=ref)
    path = os.path.abspath(os.fspath(ref))
    version = file_version(path)
    if version is None:
        # Missing or deleted: the loader reports it as a policy problem (PR001).
        return _Source(key=None, path=path)
    return _Source(key=(path, version), path=path)


def _cached(source: _Source) -> CompiledPolicy | None:
    if source.key is None:
        return None
    with _lock:
        cached = _policies.get(source.key)
        if cached is not None:
            _policies.move_to_end(source.key)
        return cached


def _load(source: _Source) -> CompiledPolicy:
    """Load, validate and compile ``source``, and cache the result (the first one cached wins,
    so every caller shares one compiled policy)."""
    from policyroute.policy import loader

    if source.text is not None:
        compiled = loader.load_policy_text(source.text)
    else:
        assert source.path is not None
        compiled = loader.load_policy(source.path)
    if source.key is None:
        return compiled
    with _lock:
        cached = _policies.setdefault(source.key, compiled)
        _trim(_policies)
    return cached


def _load_shared(source: _Source, loading: concurrent.futures.Future[CompiledPolicy]) -> None:
    """Run in a worker thread: every waiter gets the policy, or the same error."""
    try:
        compiled = _load(source)
    except BaseException as exc:  # whatever it is, the waiters must not wait forever
        _settle(source, loading, exc)
    else:
        _settle(source, loading, compiled)


def _settle(
    source: _Source,
    loading: concurrent.futures.Future[CompiledPolicy],
    outcome: CompiledPolicy | BaseException,
) -> None:
    with _lock:
        if source.key is not None and _loading.get(source.key) is loading:
            del _loading[source.key]
    if isinstance(outcome, BaseException):
        loading.set_exception(outcome)
    else:
        loading.set_result(outcome)


def _executor_for(ref: PolicyRef, accounting: Accounting | None) -> Executor:
    policy = _policy_for(ref)
    executor = _cached_executor(policy, accounting)
    return executor if executor is not None else _new_executor(policy, accounting)


async def _aexecutor_for(ref: PolicyRef, accounting: Accounting | None) -> Executor:
    policy = await _apolicy_for(ref)
    executor = _cached_executor(policy, accounting)
    if executor is not None:
        return executor
    # The policy's default accounting opens its budget store and receipt sink: file I/O.
    return await asyncio.to_thread(_new_executor, policy, accounting)


def _cached_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor | None:
    with _lock:
        return _executor_entry(policy, accounting)


def _new_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    with _lock:
        executor = _executor_entry(policy, accounting)
        if executor is not None:
            return executor
        chosen = accounting if accounting is not None else _default_accounting(policy)
        executor = Executor(policy, accounting=chosen)
        # The policy and accounting are held so their ids cannot be reused by other objects.
        _executors[(id(policy), id(accounting))] = (policy, accounting, executor)
        _trim(_executors)
        return executor


def _executor_entry(policy: CompiledPolicy, accounting: Accounting | None) -> Executor | None:
    """The cached executor for ``policy`` and ``accounting``; the caller holds ``_lock``."""
    key = (id(policy), id(accounting))
    entry = _executors.get(key)
    if entry is None or entry[0] is not policy or entry[1] is not accounting:
        return None
    _executors.move_to_end(key)
    return entry[2]


def _trim(cache: OrderedDict[Any, Any]) -> None:
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
