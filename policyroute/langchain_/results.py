"""LangChain results of policyroute calls: messages with usage, and where they came from.

Every answer carries ``usage_metadata`` (LangChain's shape) and ``response_metadata`` with
``model_name`` (the model that actually answered), ``finish_reason`` and a ``policyroute``
entry: route, deployment, every attempt, cost as a decimal string, request id. A stream
carries both on its last chunk only.

Example:
    >>> msg = llm.invoke("hi")  # doctest: +SKIP
    >>> msg.response_metadata["policyroute"]["attempts"][0]["status"]  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from policyroute._litellm import finish_reason_of, message_from_response, usage_metadata

if TYPE_CHECKING:
    from policyroute.execution.result import CallResult

__all__ = ["chat_result", "final_chunk", "response_metadata"]


def response_metadata(result: CallResult, finish_reason: str | None) -> dict[str, Any]:
    """The ``response_metadata`` of the message answering a call."""
    return {
        "model_name": result.model,
        "finish_reason": finish_reason,
        "model_provider": "policyroute",
        "policyroute": {
            "route": result.route,
            "deployment": result.deployment,
            "attempts": [attempt.as_dict() for attempt in result.attempts],
            "cost": str(result.cost),
            "request_id": result.request_id,
            "time_to_first_token_s": result.time_to_first_token_s,
        },
    }


def chat_result(result: CallResult) -> ChatResult:
    """A whole answer as LangChain's ``ChatResult``."""
    finish = finish_reason_of(result.response)
    message = message_from_response(
        result.response,
        usage_metadata=usage_metadata(result.usage),
        response_metadata=response_metadata(result, finish),
    )
    generation = ChatGeneration(message=message, generation_info={"finish_reason": finish})
    return ChatResult(generations=[generation], llm_output={"model_name": result.model})


def final_chunk(result: CallResult, finish: str | None) -> ChatGenerationChunk:
    """The last chunk of a stream: no content, the call's usage and metadata.

    It is the only chunk with usage: LangChain sums usage across chunks, so reporting it once
    is what makes the merged message's totals right.
    """
    if finish is None:
        finish = finish_reason_of(result.response)
    message = AIMessageChunk(
        content="",
        usage_metadata=usage_metadata(result.usage),
        response_metadata=response_metadata(result, finish),
        chunk_position="last",
    )
    return ChatGenerationChunk(message=message, generation_info={"finish_reason": finish})
