"""The request as policyroute sees it: OpenAI-format messages plus the call's facts.

Both the LangChain model and the litellm-style entry points build a :class:`Request`; routing
conditions read from it through :class:`~policyroute.policy.facts.RequestFacts`.

Example:
    >>> r = Request(messages=[{"role": "user", "content": "hi"}], metadata={"user_id": "u1"})
    >>> r.metadata["user_id"]
    'u1'
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

__all__ = ["Request"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class Request:
    """One chat call.

    Attributes:
        messages: OpenAI chat-format message dicts (``role``, ``content``, ...).
        model: the model the caller asked for, if any (a routing fact, not a command).
        params: call parameters (``temperature``, ``max_tokens``, ``stop``, ``n``, ...).
        tools: OpenAI-format tool definitions, if the call offers tools.
        tool_choice: OpenAI-format tool choice, if any.
        response_format: OpenAI-format response format, if any.
        stream: whether the caller streams the answer.
        metadata: per-call metadata (from LangChain's RunnableConfig or the caller).
        tags: per-call tags.
        run_id: the caller's run id (LangChain), if any.
        request_id: a unique id for this call, used in receipts.
    """

    messages: Sequence[Mapping[str, Any]]
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None
    response_format: Any = None
    stream: bool = False
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tags: Sequence[str] = ()
    run_id: str | None = None
    request_id: str = field(default_factory=_new_id)

    def __repr__(self) -> str:
        # ``params`` may carry ``api_key``, a URL's password or a credential header: shown
        # redacted. Imported here so that building a Request (the hot path) never pays for it.
        from policyroute.costs.redact import redact_params

        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["params"] = redact_params(self.params)
        return f"Request({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
