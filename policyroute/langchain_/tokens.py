"""Token counts for LangChain's ``get_token_ids``, ``get_num_tokens`` and
``get_num_tokens_from_messages``, offline, with litellm's tokenizers.

LangChain's defaults tokenize with GPT-2 from the ``transformers`` package (an ImportError
where it is not installed), and ignore tools. Messages are counted here as routing counts a
request's ``input_tokens`` (:func:`~policyroute.policy.facts.default_token_counter`: the
requested model's tokenizer, else ``gpt-4o``'s; tools counted; images bounded without
fetching them), so that ``trim_messages(..., token_counter=llm)`` trims to the figure the
policy's ``input_tokens`` conditions see.

Example:
    >>> count_messages(None, [HumanMessage("hi")], None)  # doctest: +SKIP
    8
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from policyroute._lazy import import_litellm
from policyroute.langchain_.outbound import to_openai_messages
from policyroute.langchain_.tool_choice import to_openai_tool
from policyroute.policy.facts import default_token_counter
from policyroute.request import Request

__all__ = ["count_messages", "token_ids"]

STAND_IN = "gpt-4o"
"""The tokenizer used when the call names no model (as routing's count does)."""


def token_ids(model: str | None, text: str) -> list[int]:
    """The token ids of ``text`` with litellm's tokenizer for ``model``.

    Example:
        >>> len(token_ids(None, "hello world")) > 0  # doctest: +SKIP
        True
    """
    encoded: Any = import_litellm().encode(model=model or STAND_IN, text=text)
    # A Hugging Face tokenizer returns an Encoding, tiktoken a list.
    return list(getattr(encoded, "ids", encoded))


def count_messages(
    model: str | None, messages: Sequence[BaseMessage], tools: Sequence[Any] | None
) -> int:
    """The input tokens of ``messages`` (and ``tools``), as routing counts them.

    Raises :class:`~policyroute.errors.RequestError` for content no counter can measure.
    """
    formatted = [to_openai_tool(tool) for tool in tools] if tools else None
    request = Request(messages=to_openai_messages(messages), model=model, tools=formatted)
    return default_token_counter(request)
