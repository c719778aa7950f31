"""A header httpx cannot send is refused before the call, not reported as the provider's
``malformed_response`` (or ``server_error``, retried and fallen over on): a value that is not a
string or bytes (``None``, a number, a mapping), a string value with a character outside ASCII,
a line break or another control character, or a space at either end; a name that is not an
HTTP token. What httpx, h11 and aiohttp send passes: bytes (any octets but control
characters), an empty value, a tab inside it. The same for ``ChatPolicyRoute``
(``model_kwargs``, ``bind``, ``invoke``) and for a policy's ``params.extra_headers`` (PR140)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.api_headers import (
    header_name_problem,
    header_value_problem,
    refuse_credential_headers,
)
from policyroute.errors import RequestError
from policyroute.policy.validate import validate_text
from policyroute.testing import FakeProvider

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello"}]

# (headers, words the error must hold)
BAD: list[tuple[Any, tuple[str, ...]]] = [
    ({"X-Trace": None}, ("'X-Trace'", "string or bytes", "NoneType")),
    ({"X-Trace": 7}, ("'X-Trace'", "string or bytes", "int")),
    ({"X-Trace": 1.5}, ("'X-Trace'", "float")),
    ({"X-Trace": True}, ("'X-Trace'", "bool")),
    ({"X-Trace": {"a": 1}}, ("'X-Trace'", "dict")),
    ({"X-Trace": ["a"]}, ("'X-Trace'", "list")),
    ({"X-Trace": "caf\u00e9"}, ("'X-Trace'", "ASCII")),
    ({"X-Trace": "a\nb"}, ("'X-Trace'", "line break")),
    ({"X-Trace": "a\r\nX-Injected: 1"}, ("'X-Trace'", "line break")),
    ({"X-Trace": b"a\x00b"}, ("'X-Trace'", "control character")),
    ({"X-Trace": "a\x01b"}, ("'X-Trace'", "control character")),
    ({"X-Trace": "a\x7fb"}, ("'X-Trace'", "control character")),
    ({"X-Trace": " padded"}, ("'X-Trace'", "space or tab")),
    ({"X-Trace": "padded\t"}, ("'X-Trace'", "space or tab")),
    ({5: "v"}, ("header name", "5")),
    ({"X Trace": "v"}, ("header name", "'X Trace'")),
    ({"": "v"}, ("header name", "''")),
    ({"X-Tr\u00e4ce": "v"}, ("header name",)),
    ("X-Trace: v", ("mapping", "str")),
    ([("X-Trace", "v")], ("mapping", "list")),
]
GOOD: list[tuple[Any, str]] = [
    ({"X-Trace": "t-1"}, "t-1"),
    ({"X-Trace": b"t-1"}, "t-1"),
    ({b"X-Trace": "t-1"}, "t-1"),
    ({"X-Trace": "a\tb"}, "a\tb"),
    ({"X-Trace": ""}, ""),
]


def _holds(exc: pytest.ExceptionInfo[RequestError], param: str, words: tuple[str, ...]) -> None:
    text = str(exc.value)
    assert param in text
    for word in words:
        assert word in text, (word, text)


@pytest.mark.parametrize("argument", ["extra_headers", "headers"])
@pytest.mark.parametrize(("headers", "words"), BAD)
def test_a_header_httpx_cannot_send_is_refused_before_sending(
    provider: FakeProvider, header_policy: str, argument: str, headers: Any, words: tuple[str, ...]
) -> None:
    with pytest.raises(RequestError) as info:
        policyroute.completion(policy=header_policy, messages=MESSAGES, **{argument: headers})
    _holds(info, argument, words)
    assert provider.requests == []


def test_the_async_and_streaming_entries_refuse_them_too(
    provider: FakeProvider, header_policy: str
) -> None:
    async def run() -> Any:
        return await policyroute.acompletion(
            policy=header_policy, messages=MESSAGES, stream=True, extra_headers={"X-Trace": None}
        )

    with pytest.raises(RequestError, match="X-Trace"):
        asyncio.run(run())
    assert provider.requests == []


@pytest.mark.parametrize(("headers", "sent"), GOOD)
def test_what_httpx_sends_passes_and_arrives(
    provider: FakeProvider, header_policy: str, headers: Any, sent: str
) -> None:
    policyroute.completion(policy=header_policy, messages=MESSAGES, extra_headers=headers)
    assert [r.headers.get("x-trace") for r in provider.requests] == [sent]


def test_a_credential_header_named_in_bytes_is_refused_like_one_named_in_text(
    provider: FakeProvider, header_policy: str
) -> None:
    with pytest.raises(RequestError, match="Authorization") as info:
        policyroute.completion(
            policy=header_policy, messages=MESSAGES, extra_headers={b"Authorization": "Bearer sk-x"}
        )
    assert "sk-x" not in str(info.value)
    assert provider.requests == []


def test_a_value_is_never_shown() -> None:
    with pytest.raises(RequestError) as info:
        refuse_credential_headers({"extra_headers": {"X-Custom-Token": "s\u00e9cret-token"}})
    assert "cret-token" not in str(info.value)


def test_the_problems_name_what_is_wrong() -> None:
    assert header_value_problem("t-1") is None
    assert header_value_problem(b"\xff") is None  # obs-text: h11 sends it
    assert "ASCII" in (header_value_problem("\u2603") or "")
    assert header_name_problem(b"X-Trace") is None
    assert "header name 'X:Trace'" in (header_name_problem("X:Trace") or "")


# ------------------------------------------------------------------ ChatPolicyRoute


def test_chat_model_kwargs_are_checked_at_construction(header_policy: str) -> None:
    with pytest.raises(RequestError, match=r"'extra_headers'.*'X-Trace'"):
        ChatPolicyRoute(policy=header_policy, model_kwargs={"extra_headers": {"X-Trace": None}})
    with pytest.raises(RequestError, match=r"'extra_headers'.*'X-Trace'"):
        ChatPolicyRoute(policy=header_policy, extra_headers={"X-Trace": 3})


def test_chat_bind_and_invoke_kwargs_are_checked_before_sending(
    provider: FakeProvider, header_policy: str
) -> None:
    llm = ChatPolicyRoute(policy=header_policy)
    with pytest.raises(RequestError, match=r"'extra_headers'.*'X-Trace'"):
        llm.bind(extra_headers={"X-Trace": {"nested": 1}}).invoke("hi")
    with pytest.raises(RequestError, match=r"'extra_headers'.*'X-Trace'"):
        llm.invoke("hi", extra_headers={"X-Trace": "caf\u00e9"})
    assert provider.requests == []
    llm.invoke("hi", extra_headers={"X-Trace": b"t-2"})
    assert [r.headers.get("x-trace") for r in provider.requests] == ["t-2"]


# ------------------------------------------------------------------ policy params

POLICY_PARAMS = """
policyroute: 1
name: header-params
models:
  m:
    model: openai/gpt-4o-mini
    params:
      extra_headers:
        X-Trace: {value}
routes:
  - name: r
    to: m
    params: {{extra_headers: {{X-Other: {value}}}}}
"""


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('"caf\\u00e9"', "ASCII"),
        ('" padded "', "space or tab"),
        ('"a\\nb"', "line break"),
        ('"a\\u0001b"', "control character"),
    ],
)
def test_a_policy_header_httpx_cannot_send_is_pr140(value: str, words: str) -> None:
    result = validate_text(POLICY_PARAMS.format(value=value), environ={})
    found = [d for d in result.diagnostics if d.code == "PR140"]
    assert [d.path for d in found] == [
        "models.m.params.extra_headers.X-Trace",
        "routes[0].params.extra_headers.X-Other",
    ]
    assert all(words in d.message and d.severity == "error" for d in found)
    assert not result.ok


@pytest.mark.parametrize("value", ['"t-1"', '""', '"a\\tb"'])
def test_a_policy_header_httpx_sends_passes(value: str) -> None:
    result = validate_text(POLICY_PARAMS.format(value=value), environ={})
    assert result.ok, [d.format() for d in result.diagnostics]
