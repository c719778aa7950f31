"""The direct path of a chat model call that nothing observes.

langchain-core's ``invoke``/``ainvoke`` wrap every call in run machinery: a callback manager,
``on_chat_model_start``/``on_llm_end`` events, an ``LLMResult`` per batch and per prompt, the
cache lookup, and on the async side two tasks (``asyncio.gather`` around the generation, and
``asyncio.shield`` around ``on_llm_end``). When the call's callback manager has no handler (no
callbacks in the config or on the model, no tracing, no debug, no configure hook such as
``get_openai_callback``), no cache and no rate limiter, all of it is unobservable and the answer
is exactly what ``_generate`` returned, with LangChain's response-metadata merge. That costs a
few hundred microseconds per call on a cold CPU cache; :func:`unobserved` tells when the call
may skip it and :func:`answer` produces the same message LangChain would.

Which handlers a call gets is decided by langchain-core's own ``CallbackManager.configure``,
never guessed here, so tracing and callbacks always take LangChain's full path.

Example:
    >>> config = {"callbacks": None, "tags": [], "metadata": {}}
    >>> unobserved(llm, config, {}, async_api=True)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig

try:
    # The direct path mirrors what langchain-core does with these private helpers. If a
    # langchain-core release moves them, every call takes LangChain's full path instead.
    from langchain_core.language_models._utils import _normalize_messages
    from langchain_core.utils._gateway import GATEWAY_METADATA_RESPONSE_KEY
    from langchain_core.utils.utils import LC_ID_PREFIX
except ImportError:  # pragma: no cover - depends on the installed langchain-core
    _DIRECT_PATH = False
else:
    _DIRECT_PATH = True

__all__ = ["answer", "default_id", "prepare", "unobserved"]

# Call keywords that only feed tracing; ``BaseChatModel.agenerate`` drops them before the model.
_TRACING_ONLY = ("ls_structured_output_format", "structured_output_format")


def unobserved(
    model: BaseChatModel,
    config: RunnableConfig,
    kwargs: Mapping[str, Any],
    *,
    async_api: bool,
) -> bool:
    """Whether a non-streaming call of ``model`` with ``config`` has nothing to report to.

    False whenever LangChain would do anything visible around the generation: callbacks or
    tracers (as ``CallbackManager.configure`` finds them), a cache, a rate limiter, v1 output
    blocks, or streaming.
    """
    if not _DIRECT_PATH:
        return False
    if model.rate_limiter is not None or model.output_version not in (None, "v0"):
        return False
    cache = model.cache
    if cache is not False and (isinstance(cache, BaseCache) or get_llm_cache() is not None):
        return False
    if cache is True:
        # No cache to ask: LangChain's own path raises the error that says so.
        return False
    if kwargs.get("stream") or getattr(model, "streaming", False) is True:
        return False
    manager_cls = AsyncCallbackManager if async_api else CallbackManager
    manager = manager_cls.configure(config.get("callbacks"), model.callbacks, model.verbose)
    return not manager.handlers


def prepare(
    model: BaseChatModel, input: LanguageModelInput, kwargs: dict[str, Any]
) -> list[BaseMessage]:
    """The messages ``_generate`` receives for ``input``, as on LangChain's path; drops the
    tracing-only keywords from ``kwargs``."""
    for key in _TRACING_ONLY:
        kwargs.pop(key, None)
    if isinstance(input, list):
        plain = True
        for message in input:
            if not isinstance(message, BaseMessage):
                break
            if type(message.content) is not str:
                plain = False
        else:
            # What ``_convert_input(input).to_messages()`` returns for a list of messages (the
            # same message objects in a new list), without building the prompt value; text
            # content has no blocks for ``_normalize_messages`` to convert.
            return list(input) if plain else _normalize_messages(input)
    # LangChain normalises content blocks (v0 and OpenAI-format data blocks to v1) before
    # handing messages to ``_generate``; the model must see the same messages here.
    return _normalize_messages(model._convert_input(input).to_messages())


def answer(result: ChatResult, run_id: Any) -> AIMessage:
    """The message ``invoke`` returns for ``result``: LangChain's id default and its merge of
    ``llm_output`` and ``generation_info`` into ``response_metadata``.

    The merge is skipped (the message left as built) when it would give an identical dict,
    keys in the same order: the case for messages whose metadata already leads with those
    keys, as policyroute's do.
    """
    generation = result.generations[0]
    message = generation.message
    if message.id is None:
        message.id = default_id(run_id)
    info = {
        key: value
        for key, value in (generation.generation_info or {}).items()
        if key != GATEWAY_METADATA_RESPONSE_KEY
    }
    llm_output = (result.llm_output or {}) if len(result.generations) == 1 else {}
    metadata = message.response_metadata
    leading = list(dict.fromkeys([*llm_output, *info]))
    if list(metadata)[: len(leading)] != leading:
        message.response_metadata = {**llm_output, **info, **metadata}
    answered: AIMessage = message  # type: ignore[assignment]  # what _generate makes
    return answered


def default_id(run_id: Any) -> str:
    """The id LangChain gives an answer that has none: its run's (a new one without a run)."""
    return f"{LC_ID_PREFIX}-{run_id if run_id is not None else uuid.uuid4()}-0"
