"""litellm-style entry points: ``policyroute.completion`` and ``policyroute.acompletion``.

They take litellm's arguments plus a ``policy`` (a compiled policy, a path to one or its
YAML text), route the call by the policy, run it through the executor, and return litellm's
own response object. How the answer was obtained is attached as
``response._hidden_params["policyroute"]`` (request id, route, deployment, model, cost,
usage, attempts, time to first token); ``response._hidden_params["response_cost"]`` is the
cost the receipt charged. A stream's ``_hidden_params`` are those of litellm's stream from the
answering deployment, and take both keys once the stream completed.
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

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from policyroute import _shared_cache
from policyroute._fields import read
from policyroute._lazy import import_litellm
from policyroute._shared_cache import PolicyRef
from policyroute.api_messages import plain_messages, plain_tools
from policyroute.costs.redact import scrub
from policyroute.errors import RequestError
from policyroute.execution.call import RoutingPolicy
from policyroute.execution.hooks import Accounting, check_accounting
from policyroute.execution.result import CallResult, StreamDelta, StreamEvent
from policyroute.execution.usage import has_content, has_finish_reason, has_reasoning
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.facts import parse_messages
from policyroute.request import Request
from policyroute.request_checks import check_call, check_facts, refuse_policy_owned

__all__ = ["AsyncCompletionStream", "CompletionStream", "acompletion", "completion"]

# Request fields that litellm callers pass as keyword arguments.
_REQUEST_FIELDS = ("tools", "tool_choice", "response_format")


def completion(
    *,
    policy: PolicyRef,
    messages: Sequence[Mapping[str, Any]],
    model: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stream: bool | None = False,
    accounting: Accounting | None = None,
    **params: Any,
) -> Any:
    """Route and run one chat call; returns litellm's ``ModelResponse``.

    ``policy`` is a :class:`~policyroute.policy.compile.CompiledPolicy`, a path to a policy
    file, or YAML text (a string with a line break). Loaded policies and their executors are
    cached (see :mod:`policyroute._shared_cache`): a policy is loaded again when its file
    changes or a ``${VAR}`` it references takes another value, and every call on one policy
    and accounting (``ChatPolicyRoute`` models too) shares one executor, its circuit breakers
    and latency stats; without ``accounting``, one per working directory, which the policy's
    store and receipt paths are relative to. ``model``, ``metadata`` and ``tags`` are
    routing facts; everything else (``temperature``, ``max_tokens``, ``tools``...) is passed
    on to the deployment. With ``stream=True`` a :class:`CompletionStream` of litellm chunks is
    returned instead, once the first token arrived: as with litellm, a call that fails
    before its answer begins (every candidate failed, a budget refused it) raises here.

    litellm arguments that would take over what the policy decides are refused with a
    :class:`~policyroute.errors.RequestError`: ``num_retries`` and ``max_retries`` above 0
    and ``retry_policy`` (policyroute is the only retry layer; a global
    ``litellm.num_retries`` is not applied either), ``fallbacks`` and
    ``context_window_fallback_dict`` (the route's candidates are the fallbacks),
    ``api_key``, ``api_base``, ``base_url``, ``api_version``, ``custom_llm_provider``,
    ``deployment_id`` and ``azure`` (deployment settings, which would reach every
    candidate), ``client`` (an SDK client, with its own endpoint and key), ``model_list``
    (other deployments than the route's), litellm's per-call
    prices (``input_cost_per_token``..., which litellm would keep as the model's price for
    the rest of the process; give the policy's model a ``price:``), a key passed as a header in
    ``extra_headers`` or ``headers`` (``Authorization``, ``x-api-key``, ``api-key``,
    ``x-goog-api-key``; other headers pass) and litellm's mocks
    (``mock_response``...; test with :class:`policyroute.testing.FakeProvider`).
    ``metadata`` is handed to litellm as well, for its callbacks. ``accounting`` replaces
    the policy's own budgets and receipts (e.g.
    :meth:`~policyroute.accounting.PolicyAccounting.from_policy` with other sinks, or
    ``NullAccounting()`` to turn them off); an object without the methods of
    :class:`~policyroute.execution.hooks.Accounting` is refused with a ``RequestError``, as
    is a ``stream`` other than ``True``, ``False`` or ``None`` (litellm answers ``stream=1``
    unstreamed).

    Failures raise :mod:`policyroute.errors` types, never litellm's: ``except
    litellm.RateLimitError`` (or any litellm exception) catches nothing, and
    ``policyroute.errors.RateLimitError`` is not a subclass of litellm's. A failure is
    retried or falls over to the next candidate as the policy's ``retry`` says; once every
    candidate and retry is used up, :class:`~policyroute.errors.AllCandidatesFailedError`
    is raised (a 429 on a route of one deployment included), whose ``error_class``
    (``"rate_limit"``...) and ``status_code`` are those of the last failure, ``errors``
    each attempt's own error (:class:`~policyroute.errors.RateLimitError`...) and
    ``__cause__`` the last of them. A failure the policy neither retries nor falls over on
    (by default a bad request) stops the call and raises its own class
    (:class:`~policyroute.errors.BadRequestError`...). litellm's exception is the
    ``__cause__`` of each attempt's error (``exc.errors[-1].__cause__``). A stream that
    breaks after content reached the caller raises
    :class:`~policyroute.errors.StreamInterruptedError` from the iteration (litellm raises
    its ``MidStreamFallbackError`` there), with the text received so far.

    The response's ``model`` and ``usage`` (with ``prompt_tokens_details`` and
    ``completion_tokens_details``) are litellm's, and ``litellm.completion_cost(response)``
    is litellm's own figure (its list price; an error for a model litellm cannot price);
    ``response._hidden_params["response_cost"]`` is what the receipt charged, which differs
    where the policy prices the deployment itself.

    Example:
        >>> r = completion(policy="p.yaml", messages=[{"role": "user", "content": "hi"}])
        ... # doctest: +SKIP
        >>> r._hidden_params["policyroute"]["route"]  # doctest: +SKIP
        'default'
    """
    stream = _checked_entry(stream, accounting)
    executor = _executor_for(policy, accounting)
    request = _request(messages, model, metadata, tags, stream, params)
    if stream:
        chunks = CompletionStream(
            executor.stream(request), usage_chunk=_usage_asked(params), policy=executor.policy
        )
        return chunks.start()
    return _annotated(executor.complete(request), executor.policy)


async def acompletion(
    *,
    policy: PolicyRef,
    messages: Sequence[Mapping[str, Any]],
    model: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stream: bool | None = False,
    accounting: Accounting | None = None,
    **params: Any,
) -> Any:
    """Async twin of :func:`completion`; with ``stream=True`` returns an
    :class:`AsyncCompletionStream`.

    Loading a policy file (on the first call, and on the first after the file changed) runs
    in the loop's default executor, not on the loop: other tasks keep running meanwhile.
    Concurrent calls that miss the cache for one policy share one load (with :func:`completion`
    calls and ``ChatPolicyRoute`` models built meanwhile in other threads), and a policy that
    fails to load raises the same :class:`~policyroute.errors.PolicyValidationError` in each.

    Example:
        >>> r = await acompletion(policy="p.yaml", messages=[{"role": "user", "content": "hi"}])
        ... # doctest: +SKIP
    """
    stream = _checked_entry(stream, accounting)
    executor = await _aexecutor_for(policy, accounting)
    request = _request(messages, model, metadata, tags, stream, params)
    if stream:
        events = executor.astream(request)
        return await AsyncCompletionStream(
            events, usage_chunk=_usage_asked(params), policy=executor.policy
        ).start()
    return _annotated(await executor.acomplete(request), executor.policy)


class _Chunks:
    """What the sync and the async stream share: the state they keep of the chunks passed
    on, and the usage chunk they end with when the caller asked for one."""

    _usage_chunk: bool
    _policy: RoutingPolicy | None
    _hidden_params: dict[str, Any]
    _source: Mapping[str, Any] | None
    _last: Any
    _usage_sent: bool
    result: CallResult | None

    def _open(self, usage_chunk: bool, policy: RoutingPolicy | None) -> None:
        self._usage_chunk = usage_chunk
        self._policy = policy
        self._hidden_params = {}
        self._source = None
        # The last chunk passed on, and whether one carried usage (see _closing_usage).
        self._last = None
        self._usage_sent = False
        self.result = None

    @property
    def hidden_params(self) -> dict[str, Any]:
        """``_hidden_params``, under the public name litellm's own stream gives it too."""
        return self._hidden_params

    def _passed(self, chunk: Any) -> Any:
        self._last = chunk
        self._usage_sent = self._usage_sent or read(chunk, "usage") is not None
        return chunk

    def _closing_usage(self) -> Any:
        """The usage chunk the caller asked for, when the provider's was lost after the
        answer finished (the stream cut, or garbage, before it): the usage charged.

        A caller who asked for none finds the usage charged in the last chunk's
        ``_hidden_params["usage"]`` instead, where litellm's own stream leaves it for
        ``litellm.stream_chunk_builder``: policyroute asks the provider for a usage chunk
        (to charge the call), and litellm leaves none there for a stream that asked."""
        if not self._usage_chunk:
            _hide_usage(self._last, self.result)
            return None
        if self._usage_sent or self.result is None:
            return None
        chunk = _usage_chunk_after(self.result.response, self._last)
        self._usage_sent = chunk is not None
        return chunk


class CompletionStream(_Chunks):
    """An iterator of litellm ``ModelResponseStream`` chunks.

    Once the stream completed, :attr:`result` holds the :class:`CallResult` and
    :attr:`policyroute` the same summary a non-streamed response carries. A stream that
    breaks after content was sent, before every choice had its finish reason, raises
    :class:`~policyroute.errors.StreamInterruptedError`. A caller who asked for the usage
    chunk (``stream_options={"include_usage": True}``) gets exactly one, last, also when the
    provider's was lost after the answer finished: then with the usage charged, counted
    locally. A caller who did not ask finds the usage charged in the last chunk's
    ``_hidden_params["usage"]`` once the stream ended, as litellm leaves it there, so that
    ``litellm.stream_chunk_builder`` on the chunks gives the provider's count.

    ``_hidden_params``, as on litellm's own stream, holds what litellm's stream from the
    answering deployment had (``model_id``, ``api_base``, the provider's response headers as
    ``additional_headers``, ``custom_llm_provider``), credentials redacted; a failover before
    the first token leaves nothing of the failed attempts there. Once the stream completed,
    ``"policyroute"`` and ``"response_cost"`` are added as on a non-streamed response.

    Example:
        >>> stream = completion(policy="p.yaml", messages=msgs, stream=True)  # doctest: +SKIP
        >>> for chunk in stream:  # doctest: +SKIP
        ...     print(chunk.choices[0].delta.content or "", end="")
        >>> stream._hidden_params["api_base"]  # doctest: +SKIP
        'https://api.openai.com/v1'
    """

    def __init__(
        self,
        events: Iterator[StreamEvent],
        *,
        usage_chunk: bool = True,
        policy: RoutingPolicy | None = None,
    ) -> None:
        self._events = events
        self._first: Any = None
        self._open(usage_chunk, policy)

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
                self._source = _mirrored(self._hidden_params, self._source, event)
                if self._usage_chunk or not _usage_only(event.chunk):
                    return self._passed(event.chunk)
                continue
            self.result = _finished(event.result, self._policy, self._hidden_params)
            closing = self._closing_usage()
            if closing is not None:
                return closing
        raise StopIteration

    def close(self) -> None:
        """Stop early; the attempt is settled and the call finished. Nothing more is yielded,
        the chunk read ahead by :meth:`start` included."""
        self._first = None
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


class AsyncCompletionStream(_Chunks):
    """Async twin of :class:`CompletionStream`.

    Example:
        >>> stream = await acompletion(policy="p.yaml", messages=msgs, stream=True)
        ... # doctest: +SKIP
        >>> async for chunk in stream:  # doctest: +SKIP
        ...     print(chunk.choices[0].delta.content or "", end="")
    """

    def __init__(
        self,
        events: AsyncIterator[StreamEvent],
        *,
        usage_chunk: bool = True,
        policy: RoutingPolicy | None = None,
    ) -> None:
        self._events = events
        self._first: Any = None
        self._open(usage_chunk, policy)

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
                self._source = _mirrored(self._hidden_params, self._source, event)
                if self._usage_chunk or not _usage_only(event.chunk):
                    return self._passed(event.chunk)
                continue
            self.result = _finished(event.result, self._policy, self._hidden_params)
            closing = self._closing_usage()
            if closing is not None:
                return closing
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop early; the attempt is settled and the call finished. Nothing more is yielded,
        the chunk read ahead by :meth:`start` included."""
        self._first = None
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


def clear_cache() -> None:
    """Forget cached policies and executors (their breakers and stats with them), those of
    ``ChatPolicyRoute`` models too: both share one cache (see :mod:`policyroute._shared_cache`).

    Example:
        >>> clear_cache()
    """
    _shared_cache.clear()


# --------------------------------------------------------------------------- internals


def _checked_entry(stream: object, accounting: object) -> bool:
    """``stream`` as a bool (``None``, litellm's default, is ``False``), once it and
    ``accounting`` are checked; raises :class:`RequestError` for either of another kind.

    Example:
        >>> _checked_entry(None, None)
        False
        >>> try:
        ...     _checked_entry(1, None)
        ... except RequestError as exc:
        ...     print(str(exc)[:48])
        request parameter 'stream' must be True or False
    """
    if stream is not None and not isinstance(stream, bool):
        # litellm answers stream=1 or "yes" unstreamed: neither reading is safe to guess.
        raise RequestError(
            f"request parameter 'stream' must be True or False, got {stream!r}"[:160]
        )
    check_accounting(accounting)
    return bool(stream)


def _usage_asked(params: Mapping[str, Any]) -> bool:
    """Whether the caller asked for the stream's usage chunk, as litellm reads
    ``stream_options`` (policyroute always asks the provider for it, to charge the call)."""
    options = params.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


def _usage_chunk_after(response: Any, last: Any) -> Any:
    """A litellm usage chunk (one empty choice and ``response``'s usage) like the one the
    provider sends last, named as ``last``, the stream's last chunk; ``None`` when
    ``response`` has no usage."""
    usage = read(response, "usage")
    if usage is None or last is None:
        return None
    return import_litellm().ModelResponseStream(
        id=read(last, "id"),
        created=read(last, "created"),
        model=read(last, "model"),
        system_fingerprint=read(last, "system_fingerprint"),
        usage=usage,
    )


def _hide_usage(last: Any, result: CallResult | None) -> None:
    """Put ``result``'s usage in the ``_hidden_params`` of ``last``, the stream's last chunk,
    as litellm does on a stream asked for no usage chunk. The caller already holds that
    chunk: the dict is changed in place, as litellm changes it when usage arrives late."""
    usage = None if result is None else read(result.response, "usage")
    hidden = getattr(last, "_hidden_params", None)
    if usage is not None and isinstance(hidden, dict):
        hidden["usage"] = usage


def _usage_only(chunk: Any) -> bool:
    """Whether a stream chunk carries usage and nothing else (no content, tool call,
    reasoning or finish reason): the chunk a caller gets only when asking for usage.

    Example:
        >>> _usage_only({"choices": [{"delta": {}}], "usage": {"prompt_tokens": 3}})
        True
    """
    if read(chunk, "usage") is None:
        return False
    return not (has_content(chunk) or has_reasoning(chunk) or has_finish_reason(chunk))


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
    refuse_policy_owned(params)
    fields = {name: params.pop(name) for name in _REQUEST_FIELDS if name in params}
    if "tools" in fields:
        fields["tools"] = plain_tools(fields["tools"])
    check_call(params, **fields)
    if metadata is not None:
        # Also litellm's own argument: its callbacks (loggers, tracing) read it as before.
        params["metadata"] = dict(metadata)
    return Request(
        # litellm's tool loops put the answer's message object back into the history.
        messages=parse_messages(plain_messages(messages)),
        model=model,
        params=params,
        stream=stream,
        metadata=metadata if metadata is not None else {},
        tags=tuple(tags) if tags is not None else (),
        **fields,
    )


def _mirrored(
    hidden: dict[str, Any], source: Mapping[str, Any] | None, event: StreamDelta
) -> Mapping[str, Any] | None:
    """Make a stream's ``hidden`` mirror the hidden params of the stream ``event`` came from;
    returns them (the ``source`` to compare the next chunk's with)."""
    if event.hidden_params is None or event.hidden_params is source:
        return source
    # Another attempt answers: nothing of the one before may remain.
    hidden.clear()
    hidden.update(event.hidden_params)
    return event.hidden_params


def _finished(
    result: CallResult, policy: RoutingPolicy | None, hidden: dict[str, Any]
) -> CallResult:
    # The answer a stream assembled carries what the unstreamed response carries, so
    # ``stream.result.response._hidden_params["response_cost"]`` is what the receipt charged;
    # the stream's own ``_hidden_params`` say the same.
    if result.response is not None:
        _annotated(result, policy)
        answered = getattr(result.response, "_hidden_params", None)
        if isinstance(answered, dict) and "policyroute" in answered:
            hidden["policyroute"] = answered["policyroute"]
            hidden["response_cost"] = answered.get("response_cost")
            return result
    _annotate(hidden, result, policy)
    return result


def _annotated(result: CallResult, policy: object) -> Any:
    response = result.response
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        hidden = {}
        try:
            response._hidden_params = hidden
        except AttributeError:
            return response
    # litellm puts the deployment's api_base there as configured, password and key= included;
    # a plain URL (no user info, no query) is passed over without the scrubber's cost.
    base = hidden.get("api_base")
    if isinstance(base, str) and ("@" in base or "?" in base):
        hidden["api_base"] = scrub(base, ())
    _annotate(hidden, result, policy)
    return response


def _annotate(hidden: dict[str, Any], result: CallResult, policy: object) -> None:
    """Add the call summary and the cost the receipt charged to ``hidden``."""
    hidden["policyroute"] = result.summary()
    # What the answering attempt was charged: litellm's own figure unless the policy prices
    # the deployment itself (litellm's list price is then not what budgets and receipts say)
    # or litellm could not price the model at all.
    spec = policy.spec.models.get(result.deployment) if isinstance(policy, CompiledPolicy) else None
    priced_by_policy = spec is not None and spec.price is not None
    if result.attempts and (priced_by_policy or hidden.get("response_cost") is None):
        hidden["response_cost"] = float(result.attempts[-1].cost)


# Kept under these names: tests and tools reach the shared cache through this module.
_policy_for = _shared_cache.policy
_apolicy_for = _shared_cache.apolicy
_executor_for = _shared_cache.executor_for
_aexecutor_for = _shared_cache.aexecutor_for
