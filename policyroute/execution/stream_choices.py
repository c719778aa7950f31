"""Assemble a streamed answer of several choices (``n > 1``) into one message per choice.

litellm's ``stream_chunk_builder`` builds one message from every delta it is given, whatever
its choice: the two choices of an ``n=2`` stream come out as one message whose text
interleaves both ("oneone two two three three"), their tool calls in one list. The stream
is therefore built once as a whole (the response's id, model, usage and hidden params, as
litellm reads them from every chunk), and once per choice from that choice's deltas alone,
whose message replaces the merged one.

A choice is one the provider streamed something for. litellm's wrapper sends the finish
reason it held back, and its usage, on choice 0 with an empty delta, whatever choice the
provider numbered: a provider streaming its one choice as index 1 would otherwise answer two
choices, an empty choice 0 first.

Example:
    >>> import litellm  # doctest: +SKIP
    >>> response = assemble(chunks, messages, litellm.stream_chunk_builder)  # doctest: +SKIP
    >>> [c.message.content for c in response.choices]  # doctest: +SKIP
    ['one two three', 'one two three']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from policyroute._fields import read
from policyroute.execution.stream_refusal import refusal_fragments

__all__ = [
    "assemble",
    "choice_indexes",
    "first_choice_text",
    "first_choice_tool_calls",
    "refusals",
]

Builder = Callable[..., Any]
"""litellm's ``stream_chunk_builder``: chunks (and ``messages=``) to a response."""


# What a delta carries when the provider streamed something for its choice.
_DELTA_FIELDS = (
    "role",
    "content",
    "refusal",
    "tool_calls",
    "function_call",
    "reasoning_content",
    "thinking_blocks",
    "audio",
)


def choice_indexes(chunks: Sequence[Any]) -> list[int]:
    """The choice numbers the chunks carry deltas with something in them for, in order (all
    choice numbers when no delta carries anything).

    Example:
        >>> choice_indexes([{"choices": [{"index": 1, "delta": {"content": "a"}}]},
        ...                 {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}])
        [0, 1]
        >>> choice_indexes([{"choices": [{"index": 1, "delta": {"content": "a"}}]},
        ...                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
        [1]
        >>> choice_indexes([{"choices": []}, {"choices": [{"delta": {}}]}])
        [0]
    """
    seen: set[int] = set()
    answered: set[int] = set()
    for chunk in chunks:
        for choice in read(chunk, "choices") or ():
            index = _index(choice)
            seen.add(index)
            if index not in answered and _carries_delta(choice):
                answered.add(index)
    return sorted(answered or seen)


def first_choice_text(chunks: Sequence[Any]) -> str:
    """The text streamed for the first choice (the lowest of :func:`choice_indexes`): what a
    stream cut short of its end had answered, without the other choices' text of ``n > 1``
    interleaved in it.

    Example:
        >>> first_choice_text([{"choices": [{"index": 0, "delta": {"content": "a"}}]},
        ...                    {"choices": [{"index": 1, "delta": {"content": "x"}}]},
        ...                    {"choices": [{"index": 0, "delta": {"content": "b"}}]}])
        'ab'
    """
    indexes = choice_indexes(chunks)
    if not indexes:
        return ""
    first = indexes[0]
    parts = []
    for chunk in chunks:
        for choice in read(chunk, "choices") or ():
            if _index(choice) == first:
                text = read(read(choice, "delta"), "content")
                if isinstance(text, str):
                    parts.append(text)
    return "".join(parts)


def first_choice_tool_calls(chunks: Sequence[Any]) -> list[dict[str, Any]]:
    """The tool calls streamed for the first choice, each as far as it arrived: ``index``,
    ``id`` and ``name`` (``None`` until a fragment gave them) and ``arguments``, the argument
    fragments joined (a JSON text cut anywhere), in the order the calls began.

    A fragment belongs to the call of its index, unless it carries another id than that
    call's: some servers number every call 0, and an id names one call. A name a server
    repeats on each fragment of its call is kept once.

    Example:
        >>> def part(**call: Any) -> dict[str, Any]:
        ...     return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
        >>> first_choice_tool_calls([
        ...     part(index=0, id="c1", function={"name": "add", "arguments": '{"a": '}),
        ...     part(index=1, id="c2", function={"name": "shout", "arguments": ""}),
        ...     part(index=0, function={"name": "add", "arguments": "1, "}),
        ... ])  # doctest: +NORMALIZE_WHITESPACE
        [{'index': 0, 'id': 'c1', 'name': 'add', 'arguments': '{"a": 1, '},
         {'index': 1, 'id': 'c2', 'name': 'shout', 'arguments': ''}]
    """
    indexes = choice_indexes(chunks)
    if not indexes:
        return []
    first = indexes[0]
    calls: list[dict[str, Any]] = []
    current: dict[Any, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in read(chunk, "choices") or ():
            if _index(choice) != first:
                continue
            for raw in read(read(choice, "delta"), "tool_calls") or ():
                position = read(raw, "index")
                call_id = read(raw, "id")
                call = current.get(position)
                if call is None or (call_id and call["id"] and call_id != call["id"]):
                    call = {"index": position, "id": None, "name": None, "arguments": ""}
                    current[position] = call
                    calls.append(call)
                function = read(raw, "function")
                for field, value in (("id", call_id), ("name", read(function, "name"))):
                    if isinstance(value, str) and value and call[field] is None:
                        call[field] = value
                arguments = read(function, "arguments")
                if isinstance(arguments, str):
                    call["arguments"] += arguments
    return calls


def assemble(chunks: Sequence[Any], messages: Sequence[Any], build: Builder) -> Any:
    """The response ``build`` makes of ``chunks``, with one message per choice when the
    stream carried several.

    A choice that ended without a finish reason of its own takes the stream's: litellm's
    stream wrapper holds the finish reasons back and sends one, on choice 0, for them all.
    """
    response = build(list(chunks), messages=list(messages))
    indexes = choice_indexes(chunks)
    # litellm 1.108 and later build a choice per index themselves, the closing chunk's
    # choice 0 included: one choice streamed as index 1 comes out as two.
    if response is None or (len(indexes) < 2 and len(read(response, "choices") or ()) < 2):
        _keep_refusals(response, chunks)
        return response
    stream_finish = read(read(response, "choices")[0], "finish_reason")
    choices = []
    for index in indexes:
        own = [_narrowed(chunk, index) for chunk in chunks if _carries(chunk, index)]
        # No messages: this build's usage is not used (the whole stream's is), and counting
        # the prompt once per choice would be wasted work.
        choice = read(build(own), "choices")[0]
        choice.index = index
        if not any(read(c, "finish_reason") for chunk in own for c in read(chunk, "choices")):
            choice.finish_reason = stream_finish
        choices.append(choice)
    response.choices = choices
    _keep_refusals(response, chunks)
    return response


def refusals(chunks: Sequence[Any]) -> dict[Any, str]:
    """The refusal each choice streamed (its ``delta.refusal`` fragments joined), by choice.

    Example:
        >>> refusals([{"choices": [{"index": 0, "delta": {"refusal": "I can't"}}]},
        ...           {"choices": [{"index": 0, "delta": {"refusal": " help."}}]}])
        {0: "I can't help."}
    """
    parts: dict[Any, list[str]] = {}
    for chunk in chunks:
        for index, text in refusal_fragments(chunk).items():
            parts.setdefault(index, []).append(text)
    return {index: "".join(texts) for index, texts in parts.items()}


def _keep_refusals(response: Any, chunks: Sequence[Any]) -> None:
    """Give each assembled message the refusal its choice streamed, where litellm keeps an
    unstreamed answer's (``message.provider_specific_fields["refusal"]``): its
    ``stream_chunk_builder`` leaves refusals out."""
    found = refusals(chunks)
    if not found or response is None:
        return
    for position, choice in enumerate(read(response, "choices") or ()):
        index = read(choice, "index")
        text = found.get(index if isinstance(index, int) else position)
        message = read(choice, "message")
        if text is None or message is None:
            continue
        specific = read(message, "provider_specific_fields")
        fields = dict(specific) if isinstance(specific, dict) else {}
        if not fields.get("refusal"):
            fields["refusal"] = text
            _set(message, "provider_specific_fields", fields)


def _set(target: Any, name: str, value: Any) -> None:
    if isinstance(target, dict):
        target[name] = value
    else:
        setattr(target, name, value)


def _carries_delta(choice: Any) -> bool:
    delta = read(choice, "delta")
    return delta is not None and any(read(delta, name) for name in _DELTA_FIELDS)


def _index(choice: Any) -> int:
    index = read(choice, "index")
    return index if isinstance(index, int) else 0


def _carries(chunk: Any, index: int) -> bool:
    return any(_index(choice) == index for choice in read(chunk, "choices") or ())


def _narrowed(chunk: Any, index: int) -> Any:
    """``chunk`` with the deltas of choice ``index`` only (the chunk itself is unchanged:
    the caller may hold it)."""
    kept = [choice for choice in read(chunk, "choices") if _index(choice) == index]
    if isinstance(chunk, dict):
        return {**chunk, "choices": kept}
    return chunk.model_copy(update={"choices": kept})
