"""OpenAI's streamed refusals, kept: ``delta.refusal`` fragments reach the stream's chunks.

OpenAI streams a refusal (structured outputs, a strict tool the model will not call) as
``delta.refusal`` fragments with no content. litellm's stream wrapper passes on only chunks
with content, tool calls, reasoning or a role, so it drops them and keeps them nowhere (not in
``provider_specific_fields``, not among the chunks it assembles): the streamed refusal ended
as an empty answer where the unstreamed one carries ``message.refusal``.
:func:`keep_refusals` wraps the wrapper's per-chunk conversion so that each fragment comes out
as ``delta.refusal`` of a chunk of its choice, in order. Nothing else of the chunks changes:
the usage, finish reason and ids litellm gives are the ones passed on.

Example:
    >>> refusal_fragments({"choices": [{"index": 0, "delta": {"refusal": "No."}}]})
    {0: 'No.'}
    >>> refusal_fragments({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
    {}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from policyroute._fields import read

__all__ = ["keep_refusals", "refusal_fragments"]

_log = logging.getLogger("policyroute.execution")

_TAPPED = "_policyroute_refusals_kept"
"""Set on a wrapper whose conversion is wrapped already: a stream is tapped once."""


def refusal_fragments(chunk: Any) -> dict[Any, str]:
    """The refusal text each choice of a provider (or litellm) chunk carries, by choice index."""
    found: dict[Any, str] = {}
    for position, choice in enumerate(read(chunk, "choices") or ()):
        text = read(read(choice, "delta"), "refusal")
        if isinstance(text, str) and text:
            index = read(choice, "index")
            found[position if index is None else index] = text
    return found


def keep_refusals(stream: Any) -> None:
    """Make litellm's stream wrapper ``stream`` pass on the refusal fragments it drops.

    litellm converts each provider chunk with the wrapper's ``chunk_creator``, from both its
    sync and async iteration; the conversion is wrapped on this instance only. A chunk that
    litellm passes on gets the fragments of its provider chunk as ``delta.refusal`` where it
    lost them; a chunk that it drops (a refusal fragment alone) becomes a chunk that carries
    only them. Another iterable (an injected completion callable's) is left as it is: its
    chunks pass on as they come.
    """
    create = getattr(stream, "chunk_creator", None)
    make = getattr(stream, "model_response_creator", None)
    if not callable(create) or not callable(make) or getattr(stream, _TAPPED, False):
        return

    def chunk_creator(chunk: Any) -> Any:
        made = create(chunk=chunk)
        fragments = refusal_fragments(chunk)
        if not fragments:
            return made
        try:
            if made is None:
                return _refusal_chunk(make, fragments)
            _restore(made, fragments)
        except Exception:  # litellm's types moved: the answer goes on without its refusal
            _log.debug("could not pass a streamed refusal on", exc_info=True)
        return made

    stream.chunk_creator = chunk_creator  # this instance's own, litellm's class is untouched
    setattr(stream, _TAPPED, True)


def _refusal_chunk(make: Callable[..., Any], fragments: dict[Any, str]) -> Any:
    """A litellm stream chunk carrying only ``fragments`` (made by the wrapper, so that it has
    the stream's id, model and hidden params as its other chunks)."""
    choices = [{"index": index, "delta": {"refusal": text}} for index, text in fragments.items()]
    return make(chunk={"choices": choices})


def _restore(made: Any, fragments: dict[Any, str]) -> None:
    """Put back on ``made``'s choices the refusal fragments litellm left out of them."""
    for position, choice in enumerate(read(made, "choices") or ()):
        index = read(choice, "index")
        text = fragments.get(position if index is None else index)
        delta = read(choice, "delta")
        if text and delta is not None and read(delta, "refusal") != text:
            delta.refusal = text
