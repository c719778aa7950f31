"""The per-call routing facts of a LangChain call: metadata, tags and run id.

They come from the call's run manager, which LangChain builds from the RunnableConfig (merged
with the model's own ``metadata`` and ``tags``). langchain-core hands the run manager to
``_generate`` but not to ``_stream`` when it streams from ``stream()``, ``astream()`` or an
``invoke()`` that streams for a streaming callback handler (LangGraph's ``messages`` mode,
``astream_events``). For those paths ``ChatPolicyRoute``'s public entry points pass the call's
config down as a private keyword argument, :data:`FACTS_KEY`, from which
:func:`facts_from_config` computes the same facts the run manager would hold; nothing is kept in
a global or a context variable, so concurrent calls cannot see each other's facts.

Example:
    >>> facts = facts_from_config({"metadata": {"task": "code"}, "tags": ["a"]}, None, None)
    >>> facts.metadata, facts.tags
    ({'task': 'code'}, ('a',))
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackManager,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig, ensure_config

from policyroute._shielded import despite_cancellation
from policyroute.costs.redact import redact_params
from policyroute.execution.streaming import untracked_first
from policyroute.langchain_.unobserved import answer, prepare, unobserved

__all__ = [
    "FACTS_KEY",
    "OPEN_STREAMS",
    "CallFacts",
    "FactsCarryingChatModel",
    "OpenStream",
    "OwnedStream",
    "facts_from_config",
    "facts_from_run_manager",
    "run_manager_from_config",
    "with_run_id",
]

FACTS_KEY = "_policyroute_config"
"""The keyword argument carrying the call's RunnableConfig from the public entry points down;
:func:`facts_from_config` turns it into :class:`CallFacts` when there is no run manager."""

OPEN_STREAMS = "_policyroute_open_streams"
"""A key of the config under :data:`FACTS_KEY` in an ``astream`` call: the list to which
``_astream`` adds the :class:`OpenStream` it opens, for ``astream`` to close when its caller
stops."""


@dataclass
class OpenStream:
    """A stream ``_astream`` opened, and an event set once it is closed.

    Example:
        >>> opened = OpenStream(chunks)  # doctest: +SKIP
        >>> await opened.close()  # doctest: +SKIP
    """

    stream: AsyncGenerator[Any, None]
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        """Close the stream, or wait for the close already under way (``_astream``'s own,
        when the garbage collector finalized it first) to end."""
        if getattr(self.stream, "ag_running", False):
            await self.closed.wait()
        else:
            await self.stream.aclose()


_T = TypeVar("_T")


class OwnedStream(AsyncGenerator[_T, None]):
    """An async generator closed by its owners only, any number of them, at once or not.

    The generators of one LangChain stream are nested, and each closes the one inside it when
    it ends; ``astream`` also closes the innermost of the model's own. When ``asyncio.run()``
    ends, the loop's ``shutdown_asyncgens`` closes every generator it tracks at once, in no
    order: a generator already being closed by one owner would fail the other's ``aclose()``
    ("asynchronous generator is already running"), leaving an error in the log and, for the
    owner, a close that returns before the settle under way is over. The loop does not track
    the wrapped generator (see :func:`~policyroute.execution.streaming.untracked_first`), and a
    second ``aclose()`` waits for the first one to end.

    Example:
        >>> chunks = OwnedStream(astream_chunks(...))  # doctest: +SKIP
        >>> await asyncio.gather(chunks.aclose(), chunks.aclose())  # doctest: +SKIP
    """

    __slots__ = ("_closing", "_gen", "_started")

    def __init__(self, gen: AsyncGenerator[_T, None]) -> None:
        self._gen = gen
        self._started = False
        self._closing: asyncio.Event | None = None

    def __aiter__(self) -> OwnedStream[_T]:
        return self

    async def __anext__(self) -> _T:
        if self._started:
            return await self._gen.__anext__()
        self._started = True
        return await untracked_first(self._gen)

    async def asend(self, value: None) -> _T:
        """As an async generator's ``asend``: only ``None`` is sent."""
        return await self.__anext__()

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> _T:
        """As an async generator's ``athrow``."""
        if val is None and tb is None:
            return await self._gen.athrow(typ)
        return await self._gen.athrow(typ, val, tb)

    async def aclose(self) -> None:
        """Close the generator, or wait for the close another owner began to end."""
        closing = self._closing
        if closing is not None:
            await despite_cancellation(closing.wait())
            return
        self._closing = closing = asyncio.Event()
        try:
            await self._gen.aclose()
        finally:
            closing.set()


# Keys LangChain itself puts in a run's metadata (tracing parameters of this model, library
# versions); they describe the model, not the call, so routing never sees them.
_INTERNAL_PREFIXES = ("ls_", "lc_")

# Tags LangChain and LangGraph give a run for its place in a chain (a sequence's step, a
# parallel map's key, a branch or condition taken, a graph's step): they say where the model
# sits, not what the call is. Seen by routing, ``prompt | llm`` had the tag ``seq:step:2``
# that ``llm.invoke`` lacks, and ``tags: {exists: false}`` no longer held for it.
_PLACE_TAG = re.compile(
    r"(?:seq:step|graph:step|condition):[0-9]+|branch:(?:[0-9]+|default)|map:key:.*",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What routing may know about one LangChain call."""

    metadata: Mapping[str, Any]
    tags: tuple[str, ...]
    run_id: str | None


def _public(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if not k.startswith(_INTERNAL_PREFIXES)}


def _call_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """``tags`` without those LangChain gives a run for its place in a chain.

    Example:
        >>> _call_tags(["beta", "seq:step:2", "map:key:answer"])
        ('beta',)
    """
    place = _PLACE_TAG.fullmatch
    return tuple(tag for tag in tags if not (isinstance(tag, str) and place(tag)))


def facts_from_run_manager(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun,
) -> CallFacts:
    """The facts of the run ``run_manager`` manages."""
    return CallFacts(
        metadata=_public(run_manager.metadata),
        tags=_call_tags(run_manager.tags) if run_manager.tags else (),
        run_id=str(run_manager.run_id),
    )


def facts_from_config(
    config: RunnableConfig,
    own_metadata: Mapping[str, Any] | None,
    own_tags: Sequence[str] | None,
) -> CallFacts:
    """The facts LangChain's run manager will hold for ``config``, merged as
    ``CallbackManager.configure`` merges them: what the enclosing run passes down through the
    config's callback manager (a chain's metadata and tags reach a model called inside it
    even when that call gives a config of its own), then the config's, then the model's own
    metadata (last wins); tags in that order, a repeated tag moved to the end.

    ``config`` must carry the ``run_id`` the run will get (see :func:`with_run_id`).

    Example:
        >>> from langchain_core.callbacks import CallbackManager
        >>> chain = CallbackManager([], metadata={"user_id": "u1"}, tags=["outer"])
        >>> config = {"callbacks": chain, "metadata": {"task": "chat"}, "tags": ["inner"]}
        >>> facts = facts_from_config(config, None, None)
        >>> facts.metadata, facts.tags
        ({'user_id': 'u1', 'task': 'chat'}, ('outer', 'inner'))
    """
    callbacks = config.get("callbacks")
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    if isinstance(callbacks, BaseCallbackManager):
        metadata.update(callbacks.metadata)
        tags.extend(callbacks.tags)
    metadata.update(config.get("metadata") or {})
    metadata.update(own_metadata or {})
    for added in (config.get("tags"), own_tags):
        if added:  # most calls add none: no lists rebuilt for nothing
            added = list(added)
            tags = [tag for tag in tags if tag not in added] + added
    run_id = config.get("run_id")
    return CallFacts(
        metadata=_public(metadata) if metadata else metadata,
        tags=_call_tags(tags) if tags else (),
        run_id=str(run_id) if run_id else None,
    )


def run_manager_from_config(
    config: RunnableConfig | None, model: BaseChatModel
) -> CallbackManagerForLLMRun | None:
    """A run manager addressing the handlers of the run ``config`` starts, for the paths on
    which langchain-core does not hand one over (streams). ``None`` without a config."""
    if config is None or config.get("run_id") is None:
        return None
    manager = CallbackManager.configure(
        config.get("callbacks"),
        model.callbacks,
        model.verbose,
        config.get("tags"),
        model.tags,
        config.get("metadata"),
        model.metadata,
    )
    return CallbackManagerForLLMRun(
        run_id=uuid.UUID(str(config["run_id"])),
        handlers=manager.handlers,
        inheritable_handlers=manager.inheritable_handlers,
        parent_run_id=manager.parent_run_id,
        tags=manager.tags,
        inheritable_tags=manager.inheritable_tags,
        metadata=manager.metadata,
        inheritable_metadata=manager.inheritable_metadata,
    )


def with_run_id(config: RunnableConfig) -> RunnableConfig:
    """``config`` with a ``run_id``, so that the request and LangChain's run share it.

    ``config`` is a fresh copy (from ``ensure_config``) and may be changed in place.
    """
    if config.get("run_id") is None:
        config["run_id"] = uuid.uuid4()
    return config


class FactsCarryingChatModel(BaseChatModel):
    """A chat model whose public entry points pass the call's facts down to ``_stream``.

    ``invoke``, ``ainvoke``, ``stream`` and ``astream`` give the run an id up front (so the
    request carries the run's id) and add the config to the call's keyword arguments under
    :data:`FACTS_KEY`; it is kept out of invocation params (traces) and cache keys.
    Subclasses turn it into facts with :func:`facts_from_config` in ``_generate``/``_stream``
    when they have no run manager.

    ``invoke`` and ``ainvoke`` call ``_generate``/``_agenerate`` directly when nothing observes
    the call (see :mod:`policyroute.langchain_.unobserved`).
    """

    def _with_facts(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> RunnableConfig:
        # See policyroute.langchain_.facts: langchain-core does not give ``_stream`` the run
        # manager, so the facts travel down with the call's keyword arguments.
        config = ensure_config(config)
        if FACTS_KEY not in kwargs:
            config = with_run_id(config)
            kwargs[FACTS_KEY] = config
        return config

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config = self._with_facts(config, kwargs)
        if unobserved(self, config, kwargs, async_api=False):
            messages = prepare(self, input, kwargs)
            return self._direct(messages, stop, config.get("run_id"), kwargs)
        return super().invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config = self._with_facts(config, kwargs)
        if unobserved(self, config, kwargs, async_api=True):
            messages = prepare(self, input, kwargs)
            return await self._adirect(messages, stop, config.get("run_id"), kwargs)
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    def _direct(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_id: Any,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        """The answer to an ``invoke`` nothing observes, as LangChain would return it: what
        :func:`~policyroute.langchain_.unobserved.answer` makes of ``_generate``'s result.
        A subclass may make the same message without building the ``ChatResult``."""
        return answer(self._generate(messages, stop, None, **kwargs), run_id)

    async def _adirect(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_id: Any,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        """:meth:`_direct` for ``ainvoke``, from ``_agenerate``."""
        return answer(await self._agenerate(messages, stop, None, **kwargs), run_id)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config = self._with_facts(config, kwargs)
        return super().stream(input, config, stop=stop, **kwargs)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config = self._with_facts(config, kwargs)
        # langchain-core's astream does not close the ``_astream`` generator when its caller
        # stops early; the garbage collector's finalizer would, later, in a task of its own,
        # which the loop's end may cancel. The stream ``_astream`` opened (whose end settles
        # the budget and writes the receipts) is closed here, before ``aclose()`` returns.
        opened: list[OpenStream] = []
        kwargs[FACTS_KEY] = {**kwargs[FACTS_KEY], OPEN_STREAMS: opened}
        # Closed here only, never by the loop's end as well (see OwnedStream).
        outer = super().astream(input, config, stop=stop, **kwargs)
        stream = OwnedStream(cast("AsyncGenerator[AIMessageChunk, None]", outer))
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()
            for inner in opened:
                await inner.close()

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # The config is not a call parameter: keep it out of traces. ``asdict()`` is what the
        # deprecated ``dict()`` that langchain-core calls here returns; calling it directly
        # skips the deprecation-silencing wrapper it puts around ``dict()`` on every call.
        # The result is every callback's ``invocation_params`` (LangSmith shows them): a key or
        # credential header given to the call or in ``model_kwargs`` is shown redacted.
        kwargs.pop(FACTS_KEY, None)
        return redact_params({**self.asdict(), "stop": stop, **kwargs})

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # ... and out of cache keys, which would otherwise differ by run id on every call.
        kwargs.pop(FACTS_KEY, None)
        return super()._get_llm_string(stop=stop, **kwargs)
