"""Answers LangChain's LLM cache returns: marked as cache hits, which spend nothing.

A cached answer is the message of the call that was paid for, with that call's
``response_metadata["policyroute"]``: its cost, attempts and request id. Read as they are,
code that sums the cost over an agent's messages would count the cached answer's cost once
more, although nothing was sent and no receipt was written for the hit. langchain-core marks a
hit in its own field, ``usage_metadata["total_cost"] = 0``, and keeps the token counts (they
describe the answer); policyroute marks its own entry the same way: the hit's ``cost`` is
``"0"``, it has no attempts, request id or time to first token, ``cache_hit`` is ``True``, and
the paid call's entry is kept whole under ``original_call``. ``route`` and ``deployment`` still
say where the answer came from, as ``model_name`` does.

Example:
    >>> hit = cache_hit_entry({"route": "default", "deployment": "fast", "attempts": [{}],
    ...     "cost": "0.0012", "request_id": "r1", "time_to_first_token_s": None})
    >>> hit["cost"], hit["cache_hit"], hit["original_call"]["cost"]
    ('0', True, '0.0012')
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

__all__ = ["CACHE_HIT_KEY", "ORIGINAL_CALL_KEY", "cache_hit_entry", "cache_hits"]

CACHE_HIT_KEY = "cache_hit"
"""The key of ``response_metadata["policyroute"]`` that is ``True`` on an answer from
LangChain's cache (absent on an answer a provider gave to this call)."""

ORIGINAL_CALL_KEY = "original_call"
"""The key of a cache hit's ``response_metadata["policyroute"]`` holding the entry of the
paid call whose answer the cache returned."""


def cache_hit_entry(original: Mapping[str, Any]) -> dict[str, Any]:
    """The ``response_metadata["policyroute"]`` of a cache hit whose stored answer had
    ``original``: nothing spent by the hit, the paid call's entry under ``original_call``.

    An entry that already is a hit's (a cache that stored one) is returned as a copy. The
    entry of a call litellm answered from its own response cache says ``cache_hit`` too,
    but it is a call's, with its attempt and request id (and a receipt): stored in
    LangChain's cache, it becomes the ``original_call`` of the hits served from there.
    """
    if original.get(CACHE_HIT_KEY) is True and ORIGINAL_CALL_KEY in original:
        return copy.deepcopy(dict(original))
    return {
        "route": original.get("route"),
        "deployment": original.get("deployment"),
        "attempts": [],
        "cost": "0",
        "request_id": None,
        "time_to_first_token_s": None,
        CACHE_HIT_KEY: True,
        ORIGINAL_CALL_KEY: copy.deepcopy(dict(original)),
    }


def cache_hits(generations: list[ChatGeneration]) -> list[ChatGeneration]:
    """``generations`` (what LangChain's cache returned, as langchain-core converted them)
    with each policyroute answer marked as a cache hit (see the module docstring).

    New generations and messages are made: the cache's stored ones, and the message the paid
    call returned (which an in-memory cache stores as is), keep their entry.
    """
    out: list[ChatGeneration] = []
    for generation in generations:
        message = getattr(generation, "message", None)
        entry = message.response_metadata.get("policyroute") if message is not None else None
        if not isinstance(message, AIMessage) or not isinstance(entry, Mapping):
            out.append(generation)
            continue
        metadata = {**message.response_metadata, "policyroute": cache_hit_entry(entry)}
        marked = message.model_copy(update={"response_metadata": metadata})
        out.append(generation.model_copy(update={"message": marked}))
    return out
