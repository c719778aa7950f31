"""From a ``ChatPolicyRoute`` call to the :class:`~policyroute.request.Request` it routes.

The model's own call parameters (``temperature``, ``max_tokens``...) and ``model_kwargs`` are
the caller's defaults, a call's keywords override them, and the route's ``params`` override
both later, in the executor. The routing facts come from the call's run manager or, where
langchain-core passes none, from its config (see :mod:`policyroute.langchain_.facts`).

Example:
    >>> request = build_request(llm, messages, None, run_manager, {}, stream=False)
    ... # doctest: +SKIP
    >>> request.metadata  # doctest: +SKIP
    {'task': 'code'}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from policyroute.costs.redact import redact_params
from policyroute.langchain_ import openai_options
from policyroute.langchain_.facts import (
    FACTS_KEY,
    CallFacts,
    facts_from_config,
    facts_from_run_manager,
)
from policyroute.langchain_.outbound import plain_text_messages, to_openai_messages
from policyroute.langchain_.structured import strict_response_format
from policyroute.message_checks import check_messages
from policyroute.request import Request
from policyroute.request_checks import check_call, refuse_policy_owned

if TYPE_CHECKING:
    from policyroute.langchain import ChatPolicyRoute

__all__ = ["build_request", "call_params", "default_facts", "identifying_params", "ls_params"]


def call_params(model: ChatPolicyRoute) -> dict[str, Any]:
    """The call parameters set on ``model``, with ``"model"`` (the requested model).

    Example:
        >>> call_params(ChatPolicyRoute(policy=p, temperature=0))  # doctest: +SKIP
        {'model': None, 'temperature': 0.0}
    """
    params: dict[str, Any] = {"model": model.model}
    if model.temperature is not None:
        params["temperature"] = model.temperature
    if model.max_tokens is not None:
        params["max_tokens"] = model.max_tokens
    if model.timeout is not None:
        params["timeout"] = model.timeout
    if model.stop:
        params["stop"] = list(model.stop)
    return params


def identifying_params(model: ChatPolicyRoute) -> dict[str, Any]:
    """What identifies ``model`` to LangChain (tracing, cache keys): the policy's name and
    content hash (so that caches miss when the policy changes), its call parameters and
    ``model_kwargs``.

    Example:
        >>> identifying_params(llm)["policy_hash"] == llm.compiled_policy.content_hash
        ... # doctest: +SKIP
        True
    """
    policy = model.compiled_policy
    params: dict[str, Any] = {"policy": policy.name, "policy_hash": policy.content_hash}
    params.update(call_params(model))
    if model.model_kwargs:
        # Shown to every tracer: a credential header set here is shown redacted.
        params["model_kwargs"] = redact_params(model.model_kwargs)
    return params


def default_facts(model: ChatPolicyRoute) -> CallFacts:
    """The facts of a call made with neither run manager nor config: the model's own
    ``metadata`` and ``tags``."""
    return CallFacts(dict(model.metadata or {}), tuple(model.tags or ()), None)


def build_request(
    model: ChatPolicyRoute,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
    kwargs: dict[str, Any],
    *,
    stream: bool,
) -> Request:
    """The request for a call of ``model`` (``kwargs``: the call's keywords, consumed).

    Raises :class:`~policyroute.errors.RequestError` for keywords that would take over the
    policy (``api_base``, ``fallbacks``...), a credential header in ``extra_headers`` or
    ``headers`` (as ``policyroute.completion`` refuses it), or keywords the request cannot
    carry.
    """
    params = call_params(model)
    own_model = params.pop("model")
    if model.model_kwargs:
        kwargs = {**model.model_kwargs, **kwargs}
    if not openai_options.NAMES.isdisjoint(kwargs):
        # ``stream(..., stream_usage=True)``, as ChatOpenAI takes it, is no provider parameter.
        kwargs = openai_options.adapt(kwargs)
    requested = kwargs.pop("model", None) or own_model
    tools = kwargs.pop("tools", None)
    tool_choice = kwargs.pop("tool_choice", None)
    response_format = kwargs.pop("response_format", None)
    passed: RunnableConfig | None = kwargs.pop(FACTS_KEY, None)
    kwargs.pop("stream", None)
    params.update(kwargs)
    if stop:
        params["stop"] = list(stop)
    elif "stop" in params and not params["stop"]:
        del params["stop"]
    if run_manager is not None:
        facts = facts_from_run_manager(run_manager)
    elif passed is not None:
        facts = facts_from_config(passed, model.metadata, model.tags)
    else:
        # Called directly (``_generate``/``generate`` without callbacks): only the model's
        # own defaults are known.
        facts = default_facts(model)
    if params:
        # Bound with ``.bind`` or passed to ``invoke``: only the call sees these, and it
        # checks them before anything is sent (the policy's own params, merged later, may
        # set them).
        refuse_policy_owned(params)
    if params or tools is not None or tool_choice is not None or response_format is not None:
        check_call(params, tools=tools, tool_choice=tool_choice, response_format=response_format)
        # Strict mode asked with a schema built elsewhere (LangChain agents' ProviderStrategy):
        # closed as with_structured_output(strict=True) closes it, or OpenAI refuses it.
        response_format = strict_response_format(response_format)
    converted = plain_text_messages(messages)
    if converted is None:
        converted = to_openai_messages(messages)
        check_messages(converted)
    return Request(
        messages=converted,
        model=requested,
        params=params,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        stream=stream,
        metadata=facts.metadata,
        tags=facts.tags,
        run_id=facts.run_id,
    )


def ls_params(model: ChatPolicyRoute, stop: list[str] | None, kwargs: Any) -> LangSmithParams:
    """What LangSmith records about a call of ``model``: the requested model (or the
    policy's name), temperature, max_tokens and stop sequences."""
    ls = LangSmithParams(
        ls_provider="policyroute",
        ls_model_name=kwargs.get("model") or model.model or model.compiled_policy.name,
        ls_model_type="chat",
    )
    temperature = kwargs.get("temperature", model.temperature)
    if temperature is not None:
        ls["ls_temperature"] = temperature
    max_tokens = kwargs.get("max_tokens", model.max_tokens)
    if max_tokens is not None:
        ls["ls_max_tokens"] = max_tokens
    stop = stop or kwargs.get("stop") or model.stop
    if stop:
        ls["ls_stop"] = list(stop)
    return ls
