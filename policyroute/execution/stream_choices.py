"""Assemble a streamed answer of several choices (``n > 1``) into one message per choice.

litellm's ``stream_chunk_builder`` builds one message from every delta it is given, whatever
its choice: the two choices of an ``n=2`` stream come out as one message whose text
interleaves both ("oneone two two three three"), their tool calls in one list. The stream
is therefore built once as a whole (the response's id, model, usage and hidden params, as
litellm reads them from every chunk), and once per choice from that choice's deltas alone,
whose message replaces the merged one.

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

__all__ = ["assemble", "choice_indexes"]

Builder = Callable[..., Any]
"""litellm's ``stream_chunk_builder``: chunks (and ``messages=``) to a response."""


def choice_indexes(chunks: Sequence[Any]) -> list[int]:
    """The choice numbers the chunks carry deltas for, in order.

    Example:
        >>> choice_indexes([{"choices": [{"index": 1}]}, {"choices": [{"index": 0}]}])
        [0, 1]
        >>> choice_indexes([{"choices": []}, {"choices": [{"delta": {}}]}])
        [0]
    """
    return sorted({_index(choice) for chunk in chunks for choice in read(chunk, "choices") or ()})


def assemble(chunks: Sequence[Any], messages: Sequence[Any], build: Builder) -> Any:
    """The response ``build`` makes of ``chunks``, with one message per choice when the
    stream carried several.

    A choice that ended without a finish reason of its own takes the stream's: litellm's
    stream wrapper holds the finish reasons back and sends one, on choice 0, for them all.
    """
    response = build(list(chunks), messages=list(messages))
    indexes = choice_indexes(chunks)
    if response is None or len(indexes) < 2:
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
    return response


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
