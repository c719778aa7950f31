"""Scripted replies for :class:`~policyroute.testing.FakeProvider`."""

from __future__ import annotations

import hashlib
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


def default_signature(thinking: str) -> str:
    """The signature given to a thinking block that was scripted without one.

    Deterministic, so a test can predict it; real signatures are opaque, which is all a
    client may assume of them.

    Example:
        >>> default_signature("Let me think.")
        'sig-a0e90b3995069d8a'
    """
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:16]


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

    ``thinking`` scripts Anthropic extended thinking: one string per thinking block (a single
    string is one block). Each block carries a signature: ``signature`` gives it (one string
    for every block, or one per block), else :func:`default_signature` derives it from the
    block's text. ``redacted_thinking`` adds ``redacted_thinking`` blocks with these opaque
    ``data`` strings. Thinking is independent of the content: ``Reply(thinking="...")``
    alone thinks, then answers with the generated default content. On the Anthropic wire
    the blocks come first in ``content``, thinking then redacted, before the text and tool
    calls; on the OpenAI wire the thinking texts, concatenated as litellm concatenates
    Anthropic's, are the message's (or the stream deltas') ``reasoning_content``, with no
    signature, and redacted blocks are not sent. Generated usage counts the thinking words
    as completion tokens and, on the OpenAI wire, reports them as ``reasoning_tokens``
    unless ``usage.reasoning`` is scripted.

    ``refusal`` scripts a refusal instead of content: on the OpenAI wire the message's
    ``refusal`` (its ``content`` null) or, streamed, ``delta.refusal`` fragments after a role
    chunk whose ``refusal`` is ``""``, as OpenAI sends them; on the Anthropic wire, where a
    refusal is text, the text with ``stop_reason`` ``"refusal"``. It cannot go with ``text``
    or ``tool_calls``. Generated usage counts its words as completion tokens.

    Example:
        >>> Reply(text="hi", usage=Usage(prompt=10, completion=3)).text
        'hi'
        >>> Reply(tool_calls=[ToolCall("lookup", {"q": "x"})]).tool_calls[0].name
        'lookup'
        >>> Reply(thinking=["First.", "Second."], signature="s1").thinking_blocks
        (('First.', 's1'), ('Second.', 's1'))
        >>> Reply(refusal="I can't help with that.").is_content_scripted
        True
    """

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    thinking: str | Sequence[str] | None = None
    signature: str | Sequence[str] | None = None
    redacted_thinking: Sequence[str] = ()
    refusal: str | None = None

    def __post_init__(self) -> None:
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError("Reply.delay and Reply.chunk_delay must be >= 0")
        if self.refusal is not None:
            if not isinstance(self.refusal, str) or not self.refusal:
                raise ValueError("Reply.refusal must be a non-empty string")
            if self.text is not None or self.tool_calls:
                raise ValueError(
                    "Reply.refusal is sent instead of content: leave Reply.text and"
                    " Reply.tool_calls out"
                )
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        texts = _strings("thinking", self.thinking)
        if self.thinking is not None and not isinstance(self.thinking, str):
            object.__setattr__(self, "thinking", texts)
        signatures = _strings("signature", self.signature)
        if self.signature is not None and not isinstance(self.signature, str):
            object.__setattr__(self, "signature", signatures)
            if len(signatures) != len(texts):
                raise ValueError(
                    f"Reply.signature has {len(signatures)} signatures for {len(texts)} "
                    "thinking blocks; give one per block, or a single string for all"
                )
        if any(not sig for sig in signatures):
            raise ValueError("Reply.signature must not be empty: Anthropic never sends one")
        if isinstance(self.redacted_thinking, str):
            raise TypeError("Reply.redacted_thinking must be a sequence of data strings")
        object.__setattr__(
            self, "redacted_thinking", _strings("redacted_thinking", self.redacted_thinking)
        )

    @property
    def is_content_scripted(self) -> bool:
        """Whether the reply carries its own text, tool calls or refusal.

        Example:
            >>> Reply(text="hi").is_content_scripted, Reply(usage=Usage(3)).is_content_scripted
            (True, False)
        """
        return self.text is not None or bool(self.tool_calls) or self.refusal is not None

    @property
    def thinking_blocks(self) -> tuple[tuple[str, str], ...]:
        """The scripted thinking blocks as ``(thinking, signature)`` pairs, in order.

        Example:
            >>> Reply(thinking="Hmm.").thinking_blocks
            (('Hmm.', 'sig-7f2302c86d005fed'),)
        """
        texts = _strings("thinking", self.thinking)
        if self.signature is None:
            return tuple((text, default_signature(text)) for text in texts)
        if isinstance(self.signature, str):
            return tuple((text, self.signature) for text in texts)
        return tuple(zip(texts, self.signature, strict=True))


def _strings(name: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``value`` as a tuple of strings: ``None`` is empty, a string is one item."""
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"Reply.{name} must hold strings, got {type(item).__name__}")
    return items
