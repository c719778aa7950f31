"""Scripted replies for :class:`~policyroute.testing.FakeProvider`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage to report for a scripted reply.

    Every field left as ``None`` is computed by the fake provider (``prompt`` and
    ``completion``) or omitted from the response (the detail fields). On the OpenAI wire
    ``cached`` becomes ``prompt_tokens_details.cached_tokens`` and ``reasoning`` becomes
    ``completion_tokens_details.reasoning_tokens``; on the Anthropic wire ``prompt`` is
    ``input_tokens``, ``cached`` is ``cache_read_input_tokens`` and ``cache_creation`` is
    ``cache_creation_input_tokens`` (both reported as ``0`` when unset).

    Example:
        >>> Usage(prompt=10, completion=3, cached=4).cached
        4
    """

    prompt: int | None = None
    completion: int | None = None
    cached: int | None = None
    reasoning: int | None = None
    cache_creation: int | None = None

    def __post_init__(self) -> None:
        for name in ("prompt", "completion", "cached", "reasoning", "cache_creation"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Usage.{name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool (function) call made by a scripted reply.

    ``arguments`` is either a mapping, serialised as JSON, or a string sent verbatim, which
    lets a test script arguments that are not valid JSON. ``id`` defaults to a generated
    ``call_...`` (OpenAI) or ``toolu_...`` (Anthropic) identifier.

    Example:
        >>> ToolCall("get_weather", {"city": "Paris"}).name
        'get_weather'
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer, used as a scripted step or as a model's default.

    ``text`` is the assistant content and ``tool_calls`` the calls it makes. When both are
    left empty the fake provider generates its usual default content for the request (see
    :class:`~policyroute.testing.FakeProvider`), so ``Reply(usage=Usage(cached=8))`` only
    overrides the usage. ``finish_reason`` uses the OpenAI vocabulary (``"stop"``,
    ``"length"``, ``"tool_calls"``, ``"content_filter"``), translated to the Anthropic one
    (``"end_turn"``, ``"max_tokens"``, ``"tool_use"``, ``"refusal"``) on that wire; other
    strings are sent verbatim. By default it is ``"tool_calls"`` when there are tool calls
    and ``"stop"`` otherwise. ``delay`` waits before the first byte of the response and
    ``chunk_delay`` between streamed chunks (seconds). Scripted text is sent as is:
    ``max_tokens`` and ``stop`` only shape generated default content.

    Example:
        >>> Reply(text="hi", usage=Usage(prompt=10, completion=3)).text
        'hi'
        >>> Reply(tool_calls=[ToolCall("lookup", {"q": "x"})]).tool_calls[0].name
        'lookup'
    """

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError("Reply.delay and Reply.chunk_delay must be >= 0")
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    @property
    def is_content_scripted(self) -> bool:
        """Whether the reply carries its own text or tool calls.

        Example:
            >>> Reply(text="hi").is_content_scripted, Reply(usage=Usage(3)).is_content_scripted
            (True, False)
        """
        return self.text is not None or bool(self.tool_calls)
