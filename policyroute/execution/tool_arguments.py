"""A tool call's arguments in the history, as each deployment can take them.

A model sometimes writes a tool call whose arguments are not a JSON object (``{a: 2``, a
truncated object, a list). The conversation keeps that call, as the model wrote it, so that
the ToolMessage answering it still matches an id and the model sees its own mistake. OpenAI's
API (and Azure OpenAI) take any text as a call's ``arguments``; everywhere else litellm, or
the server behind an OpenAI-compatible ``api_base``, reads the text as JSON to build the
provider's own shape (Claude's ``tool_use.input``, Gemini's ``functionCall.args``, ...) and
refuses the whole conversation when it cannot. So before each attempt :func:`messages_for`
sends such arguments as ``"{}"`` to every deployment but those two; the turn is copied, the
caller's messages are left as they are.

Example:
    >>> turn = {"role": "assistant", "content": None, "tool_calls": [
    ...     {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{a: 2"}}]}
    >>> messages_for([turn])[0]["tool_calls"][0]["function"]["arguments"]
    '{}'
    >>> messages_for([turn])[0] is turn, turn["tool_calls"][0]["function"]["arguments"]
    (False, '{a: 2')
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from policyroute.policy.model import ModelSpec

__all__ = ["messages_for", "takes_raw_arguments"]

_OPENAI_HOST: Final = "api.openai.com"


def takes_raw_arguments(spec: ModelSpec) -> bool:
    """Whether ``spec``'s deployment takes a tool call's arguments as any text: OpenAI's own
    API (``openai/`` or a model litellm knows as OpenAI's, with no ``api_base`` or one on
    api.openai.com) and Azure OpenAI (``azure/``).

    Example:
        >>> from policyroute.policy.model import ModelSpec
        >>> takes_raw_arguments(ModelSpec(alias="m", model="openai/gpt-4o-mini"))
        True
        >>> takes_raw_arguments(ModelSpec(alias="c", model="anthropic/claude-haiku-4-5"))
        False
        >>> takes_raw_arguments(ModelSpec(alias="v", model="openai/llama", api_base="http://vllm"))
        False
    """
    given = spec.params.get("custom_llm_provider")
    prefix, slash, _ = spec.model.partition("/")
    provider = given if isinstance(given, str) and given else (prefix if slash else "")
    if provider == "azure":
        return True
    if provider == "" and not _openai_model(spec.model):
        return False
    if provider not in ("", "openai"):
        return False
    # Behind another api_base is a server of unknown make: vLLM, Ollama and gateways that
    # translate for Claude parse the arguments as JSON, as litellm does.
    return spec.api_base is None or urlsplit(spec.api_base).hostname == _OPENAI_HOST


def _openai_model(model: str) -> bool:
    # Imported here: deciding for a prefixed model never needs litellm's tables.
    from policyroute._lazy import import_litellm

    litellm = import_litellm()
    return model in litellm.open_ai_chat_completion_models


def messages_for(messages: list[Any]) -> list[Any]:
    """``messages`` with every tool call whose arguments are not a JSON object sent as
    ``"{}"``; ``messages`` itself when there is none.

    Example:
        >>> ok = [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]
        >>> messages_for(ok) is ok
        True
    """
    out: list[Any] | None = None
    for i, message in enumerate(messages):
        fixed = _turn(message)
        if fixed is not message:
            if out is None:
                out = list(messages)
            out[i] = fixed
    return messages if out is None else out


def _turn(message: Any) -> Any:
    if not isinstance(message, Mapping) or message.get("role") != "assistant":
        return message
    calls = message.get("tool_calls")
    if not calls or not any(_needs_object(c) for c in calls):
        return message
    fixed = [_with_object(c) if _needs_object(c) else c for c in calls]
    return {**message, "tool_calls": fixed}


def _arguments(call: Any) -> Any:
    function = call.get("function") if isinstance(call, Mapping) else None
    return function.get("arguments") if isinstance(function, Mapping) else None


def _needs_object(call: Any) -> bool:
    args = _arguments(call)
    # Empty or missing arguments read as {} everywhere (litellm's own rule).
    return isinstance(args, str) and bool(args.strip()) and not _is_object(args)


@functools.lru_cache(maxsize=1024)
def _is_object(text: str) -> bool:
    # Cached: every attempt of a call, and every call of a growing conversation, sends the
    # same strings again (whose hashes Python keeps).
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def _with_object(call: Mapping[str, Any]) -> dict[str, Any]:
    return {**call, "function": {**call["function"], "arguments": "{}"}}
