"""Provider-neutral request view and answer synthesis for the fake provider."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
    """One generated choice. ``finish`` uses the OpenAI vocabulary."""

    text: str | None
    tool_calls: tuple[ToolCallOut, ...]
    finish: str
    stop_sequence: str | None = None


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


def value_for_schema(schema: object, root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal value valid for a simple JSON ``schema``.

    Strings are ``"x"`` (or a sample for common formats), integers ``1``, numbers ``1.0``,
    booleans ``true``; arrays hold one item, objects fill every listed property, ``enum``
    and ``const`` give their first value, ``anyOf``/``oneOf`` use their first non-null
    branch and local ``$ref`` (``#/$defs/...``) are followed.

    Example:
        >>> value_for_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
        {'n': 1}
        >>> value_for_schema({"type": "array", "items": {"enum": ["b", "a"]}})
        ['b']
    """
    if not isinstance(schema, Mapping) or depth > 32:
        return "x"
    root = schema if root is None else root
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return value_for_schema(_resolve_ref(ref, root), root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if not (isinstance(b, Mapping) and _is_null(b))]
            return value_for_schema((non_null or branches)[0], root, depth + 1)
    kind = _schema_type(schema)
    if kind == "object":
        properties = schema.get("properties")
        props = properties if isinstance(properties, Mapping) else {}
        return {str(k): value_for_schema(v, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        count = max(1, _int_or(schema.get("minItems"), 1))
        items = schema.get("items", {})
        return [value_for_schema(items, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return _bounded(schema, 1)
    if kind == "number":
        return float(_bounded(schema, 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_for(schema)


def _is_null(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null"


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> object:
    if not ref.startswith("#"):
        return {}
    node: object = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        if not isinstance(node, Mapping):
            return {}
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
    return node


def _int_or(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bounded(schema: Mapping[str, Any], preferred: int) -> int:
    value = preferred
    minimum = schema.get("minimum", schema.get("exclusiveMinimum"))
    maximum = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(minimum, (int, float)) and value < minimum:
        value = int(minimum) + (1 if "exclusiveMinimum" in schema else 0)
    if isinstance(maximum, (int, float)) and value > maximum:
        value = int(maximum) - (1 if "exclusiveMaximum" in schema else 0)
    return value


_FORMAT_SAMPLES = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "email": "x@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _string_for(schema: Mapping[str, Any]) -> str:
    sample = _FORMAT_SAMPLES.get(str(schema.get("format", "")))
    if sample is not None:
        return sample
    return "x" * max(1, _int_or(schema.get("minLength"), 1))


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


def completion_tokens(choice: Choice) -> int:
    """Words of the choice's text plus, per tool call, 1 + words of its arguments."""
    total = count_tokens(choice.text or "")
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
        base = Choice(reply.text, calls, finish)
    else:
        base = _default_choice(request, seq)
        if reply is not None and reply.finish_reason is not None:
            base = Choice(base.text, base.tool_calls, reply.finish_reason, base.stop_sequence)
    n = max(1, request.n) if request.api == "openai" else 1
    choices = tuple(base for _ in range(n))
    scripted = reply.usage if reply is not None else None
    computed_completion = sum(completion_tokens(c) for c in choices)
    usage = UsageOut(
        prompt=request.prompt_tokens,
        completion=computed_completion,
    )
    if scripted is not None:
        usage = UsageOut(
            prompt=usage.prompt if scripted.prompt is None else scripted.prompt,
            completion=usage.completion if scripted.completion is None else scripted.completion,
            cached=scripted.cached,
            reasoning=scripted.reasoning,
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
