"""Provider-neutral request view and answer synthesis for the fake provider."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from policyroute.testing._schema_value import value_for_schema
from policyroute.testing._steps import Reply, ToolCall

Api = Literal["openai", "anthropic"]

TOKENS_PER_MESSAGE = 3
"""Fixed prompt-token overhead added for every message (and an Anthropic ``system``)."""

_WORD = re.compile(r"\S+")


def count_tokens(text: str) -> int:
    """The fake provider's token count of ``text``: its number of whitespace-separated words.

    Example:
        >>> count_tokens("Hello there,  world")
        3
    """
    return len(text.split())


def content_text(content: object) -> str:
    """Text of a message ``content``: a string, or the ``text`` parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part["text"])
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        ]
        return " ".join(parts)
    return ""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered by the request: its name and its JSON schema for arguments."""

    name: str
    parameters: Mapping[str, Any]


MAX_CHOICES = 128
"""The largest ``n`` OpenAI accepts; a larger one is refused with a 400, as OpenAI does."""


class InvalidRequest(Exception):
    """A chat request body the provider refuses with a 400 (answered, never raised to users)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def json_type_name(value: object) -> str:
    """How OpenAI names a JSON value's type in its error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, Mapping) else "an array"


def array_field(body: Mapping[str, Any], name: str) -> list[Any]:
    """``body[name]`` when it is an array (``[]`` when absent or null), else a 400."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(
            f"Invalid type for '{name}': expected an array, but got {json_type_name(value)} "
            "instead.",
            name,
        )
    return value


@dataclass(slots=True)
class ChatRequest:
    """What the answer synthesis needs from a request, whatever the wire format."""

    api: Api
    model: str
    texts: list[str] = field(default_factory=list)
    last_user_text: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    forced_tool: str | None = None
    json_mode: Literal["object", "schema"] | None = None
    json_schema: Mapping[str, Any] | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    n: int = 1
    stream: bool = False
    include_usage: bool = False

    @property
    def prompt_tokens(self) -> int:
        """Words in every message plus :data:`TOKENS_PER_MESSAGE` per message."""
        return sum(count_tokens(text) + TOKENS_PER_MESSAGE for text in self.texts)


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    """A tool call in an answer, arguments already rendered as JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Choice:
    """One generated choice. ``finish`` uses the OpenAI vocabulary; ``thinking`` holds
    ``(text, signature)`` pairs and ``redacted`` the data of redacted thinking blocks;
    ``refusal`` is an OpenAI refusal, sent instead of ``text``."""

    text: str | None
    tool_calls: tuple[ToolCallOut, ...]
    finish: str
    stop_sequence: str | None = None
    thinking: tuple[tuple[str, str], ...] = ()
    redacted: tuple[str, ...] = ()
    refusal: str | None = None

    @property
    def reasoning_text(self) -> str:
        """The thinking texts concatenated, as litellm concatenates Anthropic's blocks into
        ``reasoning_content``, so both wires give a client the same text."""
        return "".join(text for text, _ in self.thinking)


@dataclass(frozen=True, slots=True)
class UsageOut:
    """Resolved token usage of an answer."""

    prompt: int
    completion: int
    cached: int | None = None
    reasoning: int | None = None
    cache_creation: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A fully resolved answer, ready to be rendered on either wire."""

    id: str
    model: str
    created: int
    choices: tuple[Choice, ...]
    usage: UsageOut
    chunk_delay: float = 0.0


def greeting(request: ChatRequest) -> str:
    """The default reply text: ``Hello from fake-<model>: <first 5 words of last user msg>``.

    Example:
        >>> greeting(ChatRequest("openai", "m", last_user_text="one two three four five six"))
        'Hello from fake-m: one two three four five'
    """
    words = request.last_user_text.split()[:5]
    if not words:
        return f"Hello from fake-{request.model}."
    return f"Hello from fake-{request.model}: {' '.join(words)}"


def truncate_words(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` after ``limit`` words; also says whether anything was cut."""
    matches = list(_WORD.finditer(text))
    if len(matches) <= limit:
        return text, False
    if limit <= 0:
        return "", True
    return text[: matches[limit - 1].end()], True


def _apply_stop(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    index, seq = min(hits)
    return text[:index], seq


class IdSource:
    """Deterministic, per-server identifiers (not thread-safe; used on the server loop)."""

    def __init__(self) -> None:
        self._counter = 0

    def next(self) -> int:
        """The next sequence number, starting at 1."""
        self._counter += 1
        return self._counter


def _render_arguments(arguments: Mapping[str, Any] | str) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(dict(arguments))


def _tool_prefix(api: Api) -> str:
    return "toolu_fake" if api == "anthropic" else "call_fake"


def _tool_calls_out(seq: int, api: Api, calls: Sequence[ToolCall]) -> tuple[ToolCallOut, ...]:
    prefix = _tool_prefix(api)
    return tuple(
        ToolCallOut(
            call.id or f"{prefix}{seq:06d}{i:02d}", call.name, _render_arguments(call.arguments)
        )
        for i, call in enumerate(calls)
    )


def _default_choice(request: ChatRequest, seq: int) -> Choice:
    if request.forced_tool is not None:
        spec = next((t for t in request.tools if t.name == request.forced_tool), None)
        params: Mapping[str, Any] = spec.parameters if spec is not None else {}
        args = value_for_schema(params) if params else {}
        call = ToolCall(request.forced_tool, args if isinstance(args, Mapping) else {})
        return Choice(None, _tool_calls_out(seq, request.api, [call]), "tool_calls")
    if request.json_mode == "schema" and request.json_schema is not None:
        text = json.dumps(value_for_schema(request.json_schema))
    elif request.json_mode is not None:
        text = json.dumps({"reply": greeting(request)})
    else:
        text = greeting(request)
    finish = "stop"
    text, stop_seq = _apply_stop(text, request.stop)
    if stop_seq is not None:
        finish = "stop_sequence"
    if request.max_tokens is not None:
        text, cut = truncate_words(text, request.max_tokens)
        if cut:
            finish, stop_seq = "length", None
    return Choice(text, (), finish, stop_seq)


def thinking_tokens(choice: Choice) -> int:
    """Words of the choice's thinking (redacted thinking is opaque and not counted)."""
    return sum(count_tokens(text) for text, _ in choice.thinking)


def completion_tokens(choice: Choice) -> int:
    """Words of the choice's text and thinking plus, per tool call, 1 + words of its
    arguments."""
    total = count_tokens(choice.text or "") + count_tokens(choice.refusal or "")
    total += thinking_tokens(choice)
    return total + sum(1 + count_tokens(call.arguments) for call in choice.tool_calls)


def build_answer(request: ChatRequest, reply: Reply | None, seq: int, created: int) -> Answer:
    """Resolve ``reply`` (``None`` for default content) against ``request``.

    Example:
        >>> req = ChatRequest("openai", "m", texts=["hi there"], last_user_text="hi there")
        >>> answer = build_answer(req, None, 1, 0)
        >>> answer.choices[0].text, answer.usage.prompt, answer.usage.completion
        ('Hello from fake-m: hi there', 5, 5)
    """
    if reply is not None and reply.is_content_scripted:
        calls = _tool_calls_out(seq, request.api, reply.tool_calls)
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        if reply.refusal is not None and request.api == "anthropic":
            # Claude's refusal is text, ended with stop_reason "refusal".
            base = Choice(reply.refusal, calls, reply.finish_reason or "content_filter")
        else:
            base = Choice(reply.text, calls, finish, refusal=reply.refusal)
    else:
        base = _default_choice(request, seq)
        if reply is not None and reply.finish_reason is not None:
            base = Choice(base.text, base.tool_calls, reply.finish_reason, base.stop_sequence)
    if reply is not None:
        base = replace(
            base, thinking=reply.thinking_blocks, redacted=tuple(reply.redacted_thinking)
        )
    n = max(1, request.n) if request.api == "openai" else 1
    choices = tuple(base for _ in range(n))
    scripted = reply.usage if reply is not None else None
    computed_completion = sum(completion_tokens(c) for c in choices)
    # Only a reply that thinks reports reasoning tokens, so other answers keep their shape.
    reasoning = sum(thinking_tokens(c) for c in choices) if base.thinking else None
    usage = UsageOut(
        prompt=request.prompt_tokens,
        completion=computed_completion,
        reasoning=reasoning,
    )
    if scripted is not None:
        usage = UsageOut(
            prompt=usage.prompt if scripted.prompt is None else scripted.prompt,
            completion=usage.completion if scripted.completion is None else scripted.completion,
            cached=scripted.cached,
            reasoning=reasoning if scripted.reasoning is None else scripted.reasoning,
            cache_creation=scripted.cache_creation,
        )
    prefix = "msg_fake" if request.api == "anthropic" else "chatcmpl-fake"
    return Answer(
        id=f"{prefix}{seq:06d}",
        model=request.model,
        created=created,
        choices=choices,
        usage=usage,
        chunk_delay=reply.chunk_delay if reply is not None else 0.0,
    )


def split_fragments(text: str, pieces: int = 3) -> list[str]:
    """Split ``text`` into at most ``pieces`` fragments of (nearly) equal length.

    Example:
        >>> split_fragments('{"a": 1}')
        ['{"a', '": ', '1}']
    """
    if len(text) <= 1:
        return [text]
    size = -(-len(text) // min(pieces, len(text)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def split_words(text: str) -> list[str]:
    """Split ``text`` into streaming deltas of one word each, whitespace kept.

    Example:
        >>> split_words("Hello there world")
        ['Hello', ' there', ' world']
    """
    if not text:
        return []
    return re.findall(r"\s*\S+|\s+$", text) or [text]
