"""Read token usage out of litellm responses and stream chunks.

Example:
    >>> usage_of({"usage": {"prompt_tokens": 9, "completion_tokens": 3}}).total_tokens
    12
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from policyroute._fields import read as _get
from policyroute.costs.actual import (
    MAX_TOKENS,
    _litellm_usage,
    _usage_from_object,
    _usage_object,
    count_locally,
    mark_usage_estimated,
)
from policyroute.execution.hooks import AttemptInfo, Usage

__all__ = [
    "all_choices_finished",
    "checked_usage",
    "count_answer",
    "has_content",
    "has_finish_reason",
    "has_reasoning",
    "has_role",
    "is_impossible",
    "prompt_counted",
    "repair_usage",
    "set_usage",
    "usage_of",
]

_log = logging.getLogger("policyroute.execution")


def usage_of(response: Any) -> Usage | None:
    """The :class:`~policyroute.execution.hooks.Usage` of a response or chunk, if it has one.

    Read as :func:`~policyroute.costs.actual.usage_from_response` reads it (cache reads and
    writes, reasoning), so an attempt's usage and its receipt's agree; ``None`` when the
    response or chunk carries no usage at all (most stream chunks).
    """
    usage = _usage_object(response)
    return None if usage is None else _usage_from_object(usage)


def is_impossible(usage: Usage) -> bool:
    """Whether ``usage`` holds a count no provider can mean: negative, or past
    :data:`~policyroute.costs.actual.MAX_TOKENS`.

    Example:
        >>> is_impossible(Usage(input_tokens=5, output_tokens=-1))
        True
        >>> is_impossible(Usage(input_tokens=10**30, output_tokens=1))
        True
    """
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
        usage.cache_write_1h_tokens,
    )
    return min(counts) < 0 or max(counts) > MAX_TOKENS


def repair_usage(
    response: Any, model: str, messages: Sequence[Any], attempt: AttemptInfo | None = None
) -> bool:
    """Replace impossible usage in ``response`` (see :func:`is_impossible`) by tokens
    counted locally.

    Taken as reported, negative counts price an answer at zero (or below) and the budget
    never sees it; absurdly large ones would charge a fortune (or, read as 0, nothing). The
    prompt and the answer (text and tool call arguments) are counted with litellm's token
    counter, as budget estimates count them, and the cost litellm attached from the bad
    figures is dropped so that the answer is priced again; the response is marked
    (:func:`~policyroute.costs.actual.mark_usage_estimated`) so that its receipt says
    ``usage_estimated``. Returns whether the usage was replaced.

    Example:
        >>> response = {"choices": [{"message": {"content": "hi"}}],
        ...             "usage": {"prompt_tokens": -5, "completion_tokens": -1}}
        >>> repair_usage(response, "openai/gpt-4o", [{"role": "user", "content": "hello"}])
        True
        >>> response["usage"]["completion_tokens"]
        1
    """
    usage = usage_of(response)
    if usage is None or not is_impossible(usage):
        return False
    _replace(response, model, messages, usage, attempt)
    return True


def checked_usage(
    response: Any, model: str, messages: Sequence[Any], attempt: AttemptInfo | None = None
) -> Usage | None:
    """:func:`usage_of` ``response``, after :func:`repair_usage` if its counts are impossible
    (one read of the usage in the common case). Given the ``attempt``, a recount counts the
    prompt as its budget estimate does (:func:`prompt_counted`: tools and response schema
    included), else the messages alone.

    Example:
        >>> checked_usage({"usage": {"prompt_tokens": 9, "completion_tokens": 3}}, "m", [])
        Usage(input_tokens=9, output_tokens=3, cache_read_tokens=0, cache_write_tokens=0, \
reasoning_tokens=0, cache_write_1h_tokens=0)
    """
    usage = usage_of(response)
    if usage is None or not is_impossible(usage):
        return usage
    _replace(response, model, messages, usage, attempt)
    return usage_of(response)


def _replace(
    response: Any,
    model: str,
    messages: Sequence[Any],
    usage: Usage,
    attempt: AttemptInfo | None,
) -> None:
    held = None if attempt is None else Usage(input_tokens=prompt_counted(attempt, messages))
    counted = count_answer(response, model, messages, held)
    set_usage(response, counted)
    mark_usage_estimated(response)
    _log.warning(
        "%s reported impossible token usage (%d in, %d out); counted locally instead:"
        " %d in, %d out",
        model,
        usage.input_tokens,
        usage.output_tokens,
        counted.input_tokens,
        counted.output_tokens,
    )


def count_answer(
    response: Any, model: str, messages: Sequence[Any], held: Usage | None = None
) -> Usage:
    """The usage of ``response`` counted locally: the prompt as budget estimates count it
    (:func:`~policyroute.costs.actual.count_locally`), the answer (text, tool call
    arguments and reasoning) with litellm's token counter. ``held``: the input side the
    provider did report (see :func:`~policyroute.execution.stream_io.held_usage`), kept
    instead of counting the prompt.

    Example:
        >>> count_answer({"choices": [{"message": {"content": "hi"}}]}, "openai/gpt-4o",
        ...              [], held=Usage(input_tokens=7, cache_read_tokens=2))
        Usage(input_tokens=7, output_tokens=1, cache_read_tokens=2, cache_write_tokens=0, \
reasoning_tokens=0, cache_write_1h_tokens=0)
    """
    text, reasoning = _answer_text(response)
    output = count_locally(model, text=text) if text else 0
    thought = count_locally(model, text=reasoning) if reasoning else 0
    if held is None:
        held = Usage(input_tokens=count_locally(model, messages=list(messages)))
    return Usage(
        input_tokens=held.input_tokens,
        output_tokens=output + thought,
        cache_read_tokens=held.cache_read_tokens,
        cache_write_tokens=held.cache_write_tokens,
        reasoning_tokens=thought,
        cache_write_1h_tokens=held.cache_write_1h_tokens,
    )


def prompt_counted(attempt: AttemptInfo, messages: Sequence[Any]) -> int:
    """The input tokens of ``attempt``'s request counted locally as the budget's estimate
    counts them: the messages, and what a provider bills as input besides them (the tools,
    the response schema, Anthropic's tool prompt); the messages alone if that count fails.

    Example:
        >>> prompt_counted(attempt, messages)  # doctest: +SKIP
        184
    """
    from policyroute.costs.estimate import worst_case

    try:
        request, candidate = attempt.call.request, attempt.candidate
        return worst_case(request, candidate, attempt.params, default_max_tokens=None).input_tokens
    except Exception:
        _log.debug("could not count the prompt for %s", attempt.candidate, exc_info=True)
        return count_locally(attempt.candidate.model, messages=list(messages))


def set_usage(response: Any, usage: Usage) -> None:
    """Put ``usage`` on ``response`` (a litellm response or a dict of one), dropping the cost
    litellm attached from the usage it replaces, so that the answer is priced again.

    Example:
        >>> response = {"usage": {"prompt_tokens": -1, "completion_tokens": 0}}
        >>> set_usage(response, Usage(input_tokens=4, output_tokens=2))
        >>> response["usage"]
        {'prompt_tokens': 4, 'completion_tokens': 2, 'total_tokens': 6}
    """
    if isinstance(response, dict):
        response["usage"] = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        }
        if usage.cache_read_tokens or usage.cache_write_tokens:
            response["usage"]["prompt_tokens_details"] = {
                "cached_tokens": usage.cache_read_tokens,
                "cache_creation_tokens": usage.cache_write_tokens,
            }
        return
    response.usage = _litellm_usage(usage)
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        hidden.pop("response_cost", None)


def _answer_text(response: Any) -> tuple[str, str]:
    """The answer's text and tool call arguments, and its reasoning text."""
    parts: list[str] = []
    thoughts: list[str] = []
    for choice in _get(response, "choices") or ():
        message = _get(choice, "message")
        content = _get(message, "content")
        if isinstance(content, str):
            parts.append(content)
        for call in _get(message, "tool_calls") or ():
            arguments = _get(_get(call, "function"), "arguments")
            if isinstance(arguments, str):
                parts.append(arguments)
        reasoning = _get(message, "reasoning_content")
        if isinstance(reasoning, str):
            thoughts.append(reasoning)
    return "".join(parts), "".join(thoughts)


def has_content(chunk: Any) -> bool:
    """Whether a stream chunk carries answer content: text, a tool call or a refusal (what
    OpenAI answers instead of content)."""
    choices = _get(chunk, "choices")
    if not choices:
        return False
    for choice in choices:
        delta = _get(choice, "delta")
        if delta is None:
            continue
        if _get(delta, "content") or _get(delta, "tool_calls") or _get(delta, "function_call"):
            return True
        if _get(delta, "refusal"):
            return True
    return False


def has_finish_reason(chunk: Any) -> bool:
    """Whether a stream chunk ends one of its choices (carries a ``finish_reason``).

    Example:
        >>> has_finish_reason({"choices": [{"delta": {}, "finish_reason": "stop"}]})
        True
    """
    choices = _get(chunk, "choices")
    return bool(choices) and any(_get(choice, "finish_reason") for choice in choices)


def all_choices_finished(chunks: Sequence[Any]) -> bool:
    """Whether every choice the stream began has received its ``finish_reason``: the answer
    is complete whatever comes after.

    Example:
        >>> all_choices_finished([
        ...     {"choices": [{"index": 0, "delta": {"content": "a"}}]},
        ...     {"choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": "stop"}]}])
        False
        >>> all_choices_finished([{"choices": [{"delta": {}, "finish_reason": "stop"}]}])
        True
    """
    begun: set[Any] = set()
    finished: set[Any] = set()
    for chunk in chunks:
        for choice in _get(chunk, "choices") or ():
            index = _get(choice, "index") or 0
            begun.add(index)
            if _get(choice, "finish_reason"):
                finished.add(index)
    return bool(finished) and begun <= finished


def has_reasoning(chunk: Any) -> bool:
    """Whether a stream chunk carries reasoning (``reasoning_content`` or thinking blocks).

    Example:
        >>> has_reasoning({"choices": [{"delta": {"reasoning_content": "hmm"}}]})
        True
    """
    choices = _get(chunk, "choices")
    if not choices:
        return False
    for choice in choices:
        delta = _get(choice, "delta")
        if _get(delta, "reasoning_content") or _get(delta, "thinking_blocks"):
            return True
    return False


def has_role(chunk: Any) -> bool:
    """Whether a stream chunk names the role of its delta (a provider's opening chunk).

    Example:
        >>> has_role({"choices": [{"delta": {"role": "assistant"}}]})
        True
    """
    choices = _get(chunk, "choices")
    return bool(choices) and any(_get(_get(c, "delta"), "role") for c in choices)
