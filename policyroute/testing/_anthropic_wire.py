"""Anthropic messages wire format: request parsing, JSON and SSE rendering, errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policyroute.testing._synth import (
    Answer,
    ChatRequest,
    Choice,
    ToolSpec,
    UsageOut,
    array_field,
    content_text,
    split_fragments,
    split_words,
)

MALFORMED_EVENT = b"event: content_block_delta\ndata: {not json\n\n"
MALFORMED_BODY = b'{"id": "msg_broken", "type": "message", "content": [{"type": "te'

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "stop_sequence": "stop_sequence",
}


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event(name: str, obj: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(obj) + b"\n\n"


def parse_request(body: Mapping[str, Any]) -> ChatRequest:
    """Normalise a ``/v1/messages`` body; raise :class:`InvalidRequest` when ``messages``
    or ``tools`` is not an array."""
    request = ChatRequest("anthropic", str(body.get("model", "")))
    system = body.get("system")
    if system:
        request.texts.append(content_text(system))
    for message in array_field(body, "messages"):
        if not isinstance(message, Mapping):
            continue
        text = content_text(message.get("content"))
        request.texts.append(text)
        if message.get("role") == "user" and text:
            request.last_user_text = text
    for tool in array_field(body, "tools"):
        if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            schema = tool.get("input_schema")
            request.tools.append(
                ToolSpec(tool["name"], schema if isinstance(schema, Mapping) else {})
            )
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and request.tools:
        if choice.get("type") == "any":
            request.forced_tool = request.tools[0].name
        elif choice.get("type") == "tool" and isinstance(choice.get("name"), str):
            request.forced_tool = choice["name"]
    fmt = body.get("output_format")
    config = body.get("output_config")
    if fmt is None and isinstance(config, Mapping):
        fmt = config.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        request.json_mode = "schema"
        request.json_schema = schema if isinstance(schema, Mapping) else {}
    limit = body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool):
        request.max_tokens = limit
    stop = body.get("stop_sequences")
    if isinstance(stop, list):
        request.stop = [s for s in stop if isinstance(s, str)]
    request.stream = body.get("stream") is True
    return request


def _stop_reason(choice: Choice) -> str:
    return _STOP_REASONS.get(choice.finish, choice.finish)


def _usage(usage: UsageOut, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt,
        "cache_creation_input_tokens": usage.cache_creation or 0,
        "cache_read_input_tokens": usage.cached or 0,
        "output_tokens": output_tokens,
    }


def _tool_input(arguments: str) -> object:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def render_json(answer: Answer) -> bytes:
    """The non-streaming ``message`` body."""
    choice = answer.choices[0]
    content: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": text, "signature": signature}
        for text, signature in choice.thinking
    ]
    content.extend({"type": "redacted_thinking", "data": data} for data in choice.redacted)
    if choice.text is not None and (choice.text or not choice.tool_calls):
        content.append({"type": "text", "text": choice.text})
    content.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)}
        for call in choice.tool_calls
    )
    return _dumps(
        {
            "id": answer.id,
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": _stop_reason(choice),
            "stop_sequence": choice.stop_sequence,
            "usage": _usage(answer.usage, answer.usage.completion),
        }
    )


def render_events(answer: Answer) -> tuple[list[bytes], bytes]:
    """The SSE events of a streamed answer, and the terminal ``message_stop`` event."""
    choice = answer.choices[0]
    message: dict[str, Any] = {
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(answer.usage, 1),
    }
    events = [_event("message_start", {"type": "message_start", "message": message})]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
        (
            {"type": "thinking", "thinking": ""},
            [{"type": "thinking_delta", "thinking": part} for part in split_words(text) or [""]]
            + [{"type": "signature_delta", "signature": signature}],
        )
        for text, signature in choice.thinking
    ]
    blocks.extend(({"type": "redacted_thinking", "data": data}, []) for data in choice.redacted)
    if choice.text is not None and (choice.text or not choice.tool_calls):
        blocks.append(
            (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": w} for w in split_words(choice.text)],
            )
        )
    blocks.extend(
        (
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [
                {"type": "input_json_delta", "partial_json": part}
                for part in split_fragments(call.arguments)
            ],
        )
        for call in choice.tool_calls
    )
    for index, (block, deltas) in enumerate(blocks):
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        if index == 0:  # Anthropic pings once, after the first block starts, whatever it is
            events.append(_event("ping", {"type": "ping"}))
        events.extend(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            for delta in deltas
        )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _stop_reason(choice),
                    "stop_sequence": choice.stop_sequence,
                },
                "usage": {"output_tokens": answer.usage.completion},
            },
        )
    )
    return events, _event("message_stop", {"type": "message_stop"})


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    """An Anthropic error body."""
    return _dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    )


_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def status_error(status: int, message: str | None, request_id: str) -> bytes:
    """The error body Anthropic sends for ``status``."""
    fallback = ("api_error", "Internal server error") if status >= 500 else _STATUS_ERRORS[400]
    error_type, default = _STATUS_ERRORS.get(status, fallback)
    return error_body(error_type, message or default, request_id)


def context_length_error(message: str | None, request_id: str) -> bytes:
    """400 ``prompt is too long``."""
    default = "prompt is too long: 200001 tokens > 200000 maximum"
    return error_body("invalid_request_error", message or default, request_id)


def content_filter_error(message: str | None, request_id: str) -> bytes:
    """400 rejection by the content filter."""
    return error_body(
        "invalid_request_error", message or "Output blocked by content filtering policy", request_id
    )


def bad_request_error(message: str, request_id: str) -> bytes:
    """A generic 400."""
    return error_body("invalid_request_error", message, request_id)
