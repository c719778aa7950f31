"""The per-call routing facts of a LangChain call: metadata, tags and run id.

They come from the call's run manager, which LangChain builds from the RunnableConfig (merged
with the model's own ``metadata`` and ``tags``). langchain-core hands the run manager to
``_generate`` but not to ``_stream`` when it streams from ``stream()``, ``astream()`` or an
``invoke()`` that streams for a streaming callback handler (LangGraph's ``messages`` mode,
``astream_events``). For those paths ``ChatPolicyRoute`` computes the same facts from the
config in its public entry points and passes them down as a private keyword argument,
:data:`FACTS_KEY`; nothing is kept in a global or a context variable, so concurrent calls
cannot see each other's facts.

Example:
    >>> facts = facts_from_config({"metadata": {"task": "code"}, "tags": ["a"]}, None, None)
    >>> facts.metadata, facts.tags
    ({'task': 'code'}, ('a',))
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig, ensure_config

__all__ = [
    "FACTS_KEY",
    "CallFacts",
    "FactsCarryingChatModel",
    "facts_from_config",
    "facts_from_run_manager",
    "run_manager_from_facts",
    "with_run_id",
]

FACTS_KEY = "_policyroute_facts"
"""The keyword argument carrying :class:`CallFacts` from the public entry points down."""

# Keys LangChain itself puts in a run's metadata (tracing parameters of this model, library
# versions); they describe the model, not the call, so routing never sees them.
_INTERNAL_PREFIXES = ("ls_", "lc_")


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What routing may know about one LangChain call.

    ``config`` is the call's RunnableConfig when the facts were computed from it; it lets the
    budget events of a stream reach the call's callback handlers.
    """

    metadata: Mapping[str, Any]
    tags: tuple[str, ...]
    run_id: str | None
    config: RunnableConfig | None = None


def _public(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if not k.startswith(_INTERNAL_PREFIXES)}


def facts_from_run_manager(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun,
) -> CallFacts:
    """The facts of the run ``run_manager`` manages."""
    return CallFacts(
        metadata=_public(run_manager.metadata),
        tags=tuple(run_manager.tags),
        run_id=str(run_manager.run_id),
    )


def facts_from_config(
    config: RunnableConfig,
    own_metadata: Mapping[str, Any] | None,
    own_tags: Sequence[str] | None,
) -> CallFacts:
    """The facts LangChain's run manager will hold for ``config`` (the model's own metadata
    wins over the config's, its tags follow the config's, as in ``CallbackManager.configure``).

    ``config`` must carry the ``run_id`` the run will get (see :func:`with_run_id`).
    """
    metadata = _public({**(config.get("metadata") or {}), **(own_metadata or {})})
    tags = list(config.get("tags") or ())
    tags += [tag for tag in own_tags or () if tag not in tags]
    run_id = config.get("run_id")
    return CallFacts(
        metadata=metadata,
        tags=tuple(tags),
        run_id=str(run_id) if run_id else None,
        config=config,
    )


def run_manager_from_facts(
    facts: CallFacts | None, model: BaseChatModel
) -> CallbackManagerForLLMRun | None:
    """A run manager addressing the handlers of the run ``facts`` describe, for the paths on
    which langchain-core does not hand one over (streams). ``None`` without a config."""
    if facts is None or facts.config is None or facts.run_id is None:
        return None
    config = facts.config
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
        run_id=uuid.UUID(facts.run_id),
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

    ``invoke``, ``ainvoke``, ``stream`` and ``astream`` compute :class:`CallFacts` from the
    config (giving the run the id the request will carry) and add them to the call's keyword
    arguments under :data:`FACTS_KEY`; they are kept out of invocation params (traces) and
    cache keys. Subclasses read them in ``_generate``/``_stream`` when there is no run manager.
    """

    def _with_facts(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> RunnableConfig:
        # See policyroute.langchain_.facts: langchain-core does not give ``_stream`` the run
        # manager, so the facts travel down with the call's keyword arguments.
        config = ensure_config(config)
        if FACTS_KEY not in kwargs:
            config = with_run_id(config)
            kwargs[FACTS_KEY] = facts_from_config(config, self.metadata, self.tags)
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
        return await super().ainvoke(input, config, stop=stop, **kwargs)

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

    def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config = self._with_facts(config, kwargs)
        return super().astream(input, config, stop=stop, **kwargs)

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # The facts are not call parameters: keep them out of traces.
        kwargs.pop(FACTS_KEY, None)
        return super()._get_invocation_params(stop=stop, **kwargs)

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # ... and out of cache keys, which would otherwise differ by run id on every call.
        kwargs.pop(FACTS_KEY, None)
        return super()._get_llm_string(stop=stop, **kwargs)
