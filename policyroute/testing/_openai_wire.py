"""OpenAI chat-completions wire format: request parsing, JSON and SSE rendering, errors."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from policyroute.testing._synth import (
    MAX_CHOICES,
    Answer,
    ChatRequest,
    Choice,
    InvalidRequest,
    ToolSpec,
    UsageOut,
    array_field,
    content_text,
    split_fragments,
    split_words,
)

DONE_EVENT = b"data: [DONE]\n\n"
MALFORMED_EVENT = b"data: {not json\n\n"
MALFORMED_BODY = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"ind'
SYSTEM_FINGERPRINT = "fp_fake"


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event(obj: object) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def parse_request(body: Mapping[str, Any]) -> ChatRequest:
    """Normalise a ``/v1/chat/completions`` body; raise :class:`InvalidRequest` for a body
    OpenAI refuses and the fake cannot answer (``messages`` or ``tools`` not arrays, ``n``
    out of range)."""
    request = ChatRequest("openai", str(body.get("model", "")))
    for message in array_field(body, "messages"):
        if not isinstance(message, Mapping):
            continue
        text = content_text(message.get("content"))
        request.texts.append(text)
        if message.get("role") == "user":
            request.last_user_text = text
    for tool in array_field(body, "tools"):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            params = function.get("parameters")
            request.tools.append(
                ToolSpec(function["name"], params if isinstance(params, Mapping) else {})
            )
    choice = body.get("tool_choice")
    if request.tools and choice == "required":
        request.forced_tool = request.tools[0].name
    elif isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            request.forced_tool = function["name"]
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            request.json_mode = "object"
        elif fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            request.json_mode = "schema"
            request.json_schema = schema if isinstance(schema, Mapping) else {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        request.max_tokens = limit
    stop = body.get("stop")
    if isinstance(stop, str):
        request.stop = [stop]
    elif isinstance(stop, list):
        request.stop = [s for s in stop if isinstance(s, str)]
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        if not 1 <= n <= MAX_CHOICES:
            bound = "above maximum" if n > MAX_CHOICES else "below minimum"
            limit = f"<= {MAX_CHOICES}" if n > MAX_CHOICES else ">= 1"
            raise InvalidRequest(
                f"Invalid 'n': integer {bound} value. Expected a value {limit}, but got {n} "
                "instead.",
                "n",
            )
        request.n = n
    request.stream = body.get("stream") is True
    options = body.get("stream_options")
    request.include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    return request


def _finish(choice: Choice) -> str:
    return "stop" if choice.finish == "stop_sequence" else choice.finish


def usage_json(usage: UsageOut) -> dict[str, Any]:
    """The ``usage`` object."""
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
    }
    if usage.cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached}
    if usage.reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning}
    return out


def render_json(answer: Answer) -> bytes:
    """The non-streaming ``chat.completion`` body."""
    choices = []
    for index, choice in enumerate(answer.choices):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": choice.text,
            "refusal": choice.refusal,
            "annotations": [],
        }
        if choice.thinking:
            message["reasoning_content"] = choice.reasoning_text
        if choice.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in choice.tool_calls
            ]
        choices.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": _finish(choice)}
        )
    return _dumps(
        {
            "id": answer.id,
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": choices,
            "usage": usage_json(answer.usage),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
    )


def render_events(answer: Answer, include_usage: bool) -> tuple[list[bytes], bytes]:
    """The SSE events of a streamed answer, and the terminal ``[DONE]`` event."""
    base: dict[str, Any] = {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        entry = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = {**base, "choices": [entry]}
        if include_usage:
            obj["usage"] = None
        return _event(obj)

    per_choice: list[list[bytes]] = []
    for index, choice in enumerate(answer.choices):
        events: list[bytes] = []
        per_choice.append(events)
        role_sent = False
        if choice.refusal is not None:
            events.append(chunk(index, {"role": "assistant", "content": None, "refusal": ""}))
            role_sent = True
            events.extend(chunk(index, {"refusal": word}) for word in split_words(choice.refusal))
        elif choice.text is not None or not choice.tool_calls or choice.thinking:
            events.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
            role_sent = True
            # Reasoning servers stream the whole reasoning before the first content token.
            events.extend(
                chunk(index, {"reasoning_content": word})
                for word in split_words(choice.reasoning_text)
            )
            events.extend(
                chunk(index, {"content": word}) for word in split_words(choice.text or "")
            )
        for position, call in enumerate(choice.tool_calls):
            header: dict[str, Any] = {
                "tool_calls": [
                    {
                        "index": position,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
            if not role_sent:
                header = {"role": "assistant", "content": None, **header}
                role_sent = True
            events.append(chunk(index, header))
            events.extend(
                chunk(index, {"tool_calls": [{"index": position, "function": {"arguments": part}}]})
                for part in split_fragments(call.arguments)
                if part
            )
        events.append(chunk(index, {}, _finish(choice)))
    # OpenAI interleaves the choices of an n > 1 stream as they are generated; sending one
    # whole choice after another makes litellm drop the later choices' finish chunks.
    events = [e for row in itertools.zip_longest(*per_choice) for e in row if e is not None]
    if include_usage:
        events.append(_event({**base, "choices": [], "usage": usage_json(answer.usage)}))
    return events, DONE_EVENT


def error_body(message: str, error_type: str | None, code: str | None, param: str | None) -> bytes:
    """An OpenAI error body."""
    return _dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}})


def status_error(status: int, model: str, message: str | None) -> bytes:
    """The error body OpenAI sends for ``status``."""
    error_type, code, default = {
        400: ("invalid_request_error", None, "Invalid request."),
        401: (
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        ),
        403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
        404: (
            "invalid_request_error",
            "model_not_found",
            f"The model `{model}` does not exist or you do not have access to it.",
        ),
        429: (
            "requests",
            "rate_limit_exceeded",
            f"Rate limit reached for {model} on requests per min (RPM). Please try again later.",
        ),
        503: ("server_error", None, "The engine is currently overloaded, please try again later."),
        529: ("server_error", None, "The engine is currently overloaded, please try again later."),
    }.get(
        status,
        (
            "server_error" if status >= 500 else "invalid_request_error",
            None,
            "The server had an error while processing your request. Sorry about that!"
            if status >= 500
            else f"Request failed with status {status}.",
        ),
    )
    return error_body(message or default, error_type, code, None)


def context_length_error(message: str | None) -> bytes:
    """400 ``context_length_exceeded``."""
    default = (
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130000 tokens. Please reduce the length of the messages."
    )
    return error_body(
        message or default, "invalid_request_error", "context_length_exceeded", "messages"
    )


def content_filter_error(code: str, message: str | None) -> bytes:
    """400 content-policy rejection with ``code``."""
    default = (
        "Your request was rejected as a result of our safety system. "
        "Your prompt may contain text that is not allowed by our safety system."
    )
    return error_body(message or default, "invalid_request_error", code, "prompt")


def bad_request_error(message: str, param: str | None) -> bytes:
    """A generic 400."""
    return error_body(message, "invalid_request_error", None, param)
