"""Request facts: derived values, laziness and request_from_mapping."""

from __future__ import annotations

from typing import Any

import pytest

from policyroute.errors import RequestError
from policyroute.policy.facts import (
    DERIVED_FACTS,
    MISSING,
    RequestFacts,
    is_known_fact,
    request_from_mapping,
)
from policyroute.request import Request


def make(**kwargs: Any) -> RequestFacts:
    kwargs.setdefault("messages", [{"role": "user", "content": "hello"}])
    return RequestFacts(Request(**kwargs), token_counter=kwargs.pop("counter", None))


def test_derived_facts() -> None:
    f = RequestFacts(
        Request(
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
            ],
            model="gpt-4o",
            params={"temperature": 0.5, "extra_headers": {"x": "1"}},
            tools=[{"type": "function", "function": {"name": "f"}}],
            stream=True,
            metadata={"user": {"id": "u1"}},
            tags=["t1"],
            run_id="run-1",
        )
    )
    assert f.get("message_count") == 4
    assert f.get("has_tools") is True
    assert f.get("has_images") is False
    assert f.get("stream") is True
    assert f.get("model") == "gpt-4o"
    assert f.get("last_user_message") == "a\nb"
    assert f.get("run_id") == "run-1"
    assert f.get("tags") == ["t1"]
    assert f.get("metadata.user.id") == "u1"
    assert f.get("params.temperature") == 0.5
    assert f.get("params.extra_headers.x") == "1"
    assert f.get("params.top_p") is MISSING
    assert f.get("unknown_fact") is MISSING
    assert f.get("metadata") is MISSING


def test_absent_derived_facts() -> None:
    f = RequestFacts(Request(messages=[{"role": "system", "content": "x"}]))
    assert f.get("model") is MISSING
    assert f.get("run_id") is MISSING
    assert f.get("last_user_message") is MISSING
    assert f.get("has_tools") is False
    assert f.get("tags") is MISSING  # no tags: `tags: {exists: false}` holds


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "image", "source_type": "base64", "data": "AAAA", "mime_type": "image/png"},
        {"type": "input_image", "image_url": "https://x/y.png"},
        {"type": "media", "mime_type": "image/jpeg", "data": b"..."},
        {"type": "file", "mime_type": "image/png", "base64": "AAAA"},
    ],
)
def test_has_images(part: dict[str, Any]) -> None:
    f = make(messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, part]}])
    assert f.get("has_images") is True


def test_non_image_parts() -> None:
    f = make(
        messages=[
            {"role": "user", "content": [{"type": "file", "mime_type": "application/pdf"}]},
            {"role": "user", "content": "plain"},
        ]
    )
    assert f.get("has_images") is False


def test_input_tokens_counted_once_and_lazily() -> None:
    calls: list[Request] = []

    def counter(request: Request) -> int:
        calls.append(request)
        return 42

    f = RequestFacts(Request(messages=[{"role": "user", "content": "hello"}]), counter)
    assert calls == []
    assert f.get("message_count") == 1
    assert calls == []
    assert f.get("input_tokens") == 42
    assert f.get("input_tokens") == 42
    assert f.input_tokens() == 42
    assert len(calls) == 1


def test_default_token_counter_uses_litellm() -> None:
    f = make(messages=[{"role": "user", "content": "hello world " * 50}])
    tokens = f.get("input_tokens")
    assert isinstance(tokens, int)
    assert 50 < tokens <= f.token_upper_bound()


def test_the_image_flag_does_not_encode_the_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    # Routing reads has_images on every call (vision); the tools' size matters only to the
    # bound, read when a context window is near. An agent's tools are large.
    from policyroute.policy import facts as facts_module

    encoded: list[Any] = []
    size = facts_module._json_size
    monkeypatch.setattr(facts_module, "_json_size", lambda v: encoded.append(v) or size(v))
    tools = [{"type": "function", "function": {"name": f"t{i}"}} for i in range(9)]
    f = make(tools=tools)
    assert f.get("has_images") is False
    assert encoded == []
    with_tools = f.token_upper_bound()
    assert encoded == [tools]
    assert with_tools >= make().token_upper_bound() + size(tools)
    assert f.token_upper_bound() == with_tools
    assert encoded == [tools]  # once


def test_token_upper_bound_covers_non_ascii_tools_and_images() -> None:
    text = "日本語のテキスト" * 100
    f = make(
        messages=[
            {"role": "user", "content": text},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
        ],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    )
    assert f.token_upper_bound() >= len(text.encode("utf-8")) + 4096
    assert f.get("input_tokens") <= f.token_upper_bound()


def test_known_facts() -> None:
    assert {"input_tokens", "has_images", "tags", "last_user_message"} <= DERIVED_FACTS.keys()
    assert is_known_fact("metadata.a.b")
    assert is_known_fact("params.temperature")
    assert not is_known_fact("metadata")
    assert not is_known_fact("metadata..a")
    assert not is_known_fact("tokens")
    assert not is_known_fact("tags.x")


def test_request_from_mapping_full() -> None:
    r = request_from_mapping(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "model": "gpt-4o",
            "params": {"top_p": 0.9},
            "temperature": 0,
            "max_tokens": 10,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto",
            "response_format": {"type": "json_schema", "json_schema": {}},
            "stream": True,
            "metadata": {"user_id": "u1"},
            "tags": ["a"],
            "run_id": "r1",
            "request_id": "req-1",
        }
    )
    assert dict(r.params) == {"top_p": 0.9, "temperature": 0, "max_tokens": 10}
    assert r.stream is True
    assert r.tags == ("a",)
    assert r.request_id == "req-1"
    assert RequestFacts(r).wants_json_schema()


def test_request_from_mapping_defaults() -> None:
    r = request_from_mapping({"metadata": {"task": "code"}})
    assert list(r.messages) == []
    assert r.model is None
    assert r.stream is False
    assert request_from_mapping({"messages": "hello"}).messages == [
        {"role": "user", "content": "hello"}
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("not a mapping", "mapping"),
        ({"messages": {"role": "user"}}, "'messages'"),
        ({"messages": ["hi"]}, "'messages[0]'"),
        ({"messages": [{"content": "x"}]}, "'messages[0].role'"),
        ({"messages": [{"role": "user", "content": 5}]}, "'messages[0].content'"),
        ({"model": 3}, "'model'"),
        ({"params": []}, "'params'"),
        ({"params": {"temperature": 1}, "temperature": 0}, "'temperature'"),
        ({"tools": {"a": 1}}, "'tools'"),
        ({"stream": "yes"}, "'stream'"),
        ({"metadata": "x"}, "'metadata'"),
        ({"metadata": {1: "x"}}, "'metadata'"),
        ({"tags": "a"}, "'tags'"),
        ({"tags": [1]}, "'tags'"),
        ({"request_id": 5}, "'request_id'"),
        ({"mesages": []}, "'mesages'"),
    ],
)
def test_request_from_mapping_errors(data: Any, field: str) -> None:
    with pytest.raises(RequestError, match=field.replace("[", r"\[").replace("]", r"\]")):
        request_from_mapping(data)
