"""``ChatPolicyRoute`` refuses a credential header as ``policyroute.completion`` does.

A caller's ``Authorization`` (or ``x-api-key``, ``api-key``, ...) in ``extra_headers`` or
``headers`` would replace the policy's key on the first deployment and reach a fallback of
another provider too. Set in ``model_kwargs`` (or as a constructor keyword) it is refused at
construction; bound with ``.bind`` or passed to ``invoke``/``ainvoke``/``stream`` it is refused
at the call, before anything is sent. Other headers pass through to every candidate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from lc_support import claude_and_gpt

from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-caller-secret-31337"
HEADERS = ["Authorization", "authorization", "x-api-key", "API-Key", "x-goog-api-key"]
TOOL = {
    "type": "function",
    "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
def policy(fp: FakeProvider) -> Iterator[str]:
    clear_cache()
    yield claude_and_gpt(fp.anthropic_base, fp.openai_base, name="lc-credential-headers")
    clear_cache()


def _refused(info: pytest.ExceptionInfo[RequestError], param: str, header: str) -> None:
    message = str(info.value)
    assert f"request parameter {param!r} may not carry the {header!r} header" in message
    assert "api_key: ${ENV_VAR}" in message
    assert SECRET not in message


@pytest.mark.parametrize("param", ["extra_headers", "headers"])
@pytest.mark.parametrize("header", HEADERS)
def test_model_kwargs_with_a_credential_header_are_refused_at_construction(
    fp: FakeProvider, policy: str, param: str, header: str
) -> None:
    with pytest.raises(RequestError) as info:
        ChatPolicyRoute(policy=policy, model_kwargs={param: {header: f"Bearer {SECRET}"}})
    _refused(info, param, header)


def test_a_constructor_keyword_with_a_credential_header_is_refused_too(policy: str) -> None:
    with pytest.raises(RequestError) as info:
        ChatPolicyRoute(policy=policy, extra_headers={"X-Api-Key": SECRET})
    _refused(info, "extra_headers", "X-Api-Key")


@pytest.mark.parametrize("param", ["extra_headers", "headers"])
@pytest.mark.parametrize("header", HEADERS)
def test_invoke_with_a_credential_header_is_refused_before_sending(
    fp: FakeProvider, policy: str, param: str, header: str
) -> None:
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    with pytest.raises(RequestError) as info:
        llm.invoke("hello", **{param: {header: f"Bearer {SECRET}"}})
    _refused(info, param, header)
    assert fp.requests == []


def test_a_bound_credential_header_is_refused_where_it_is_bound(
    fp: FakeProvider, policy: str
) -> None:
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    with pytest.raises(RequestError) as info:
        llm.bind(extra_headers={"Authorization": f"Bearer {SECRET}", "X-Trace": "t-1"})
    _refused(info, "extra_headers", "Authorization")
    with pytest.raises(RequestError) as info:
        llm.bind_tools([TOOL], headers={"x-api-key": SECRET})
    _refused(info, "headers", "x-api-key")
    assert fp.requests == []


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"num_retries": 3}, "num_retries"),
        ({"api_key": SECRET}, "api_key"),
        ({"fallbacks": ["openai/gpt-4o"]}, "fallbacks"),
        ({"extra_headers": {"X-Trace": None}}, "'X-Trace'"),
        ({"extra_headers": "X-Trace: t-1"}, "mapping"),
    ],
)
def test_what_a_call_would_refuse_is_refused_by_bind(
    fp: FakeProvider, policy: str, kwargs: dict[str, object], says: str
) -> None:
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    with pytest.raises(RequestError, match=says) as info:
        llm.bind(**kwargs)
    assert SECRET not in str(info.value)
    assert llm.bind(temperature=0, extra_headers={"X-Trace": "t-1"}).invoke("hello").content
    assert fp.requests[-1].headers.get("x-trace") == "t-1"


def test_stream_refuses_it_before_sending(fp: FakeProvider, policy: str) -> None:
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    with pytest.raises(RequestError) as info:
        for _ in llm.stream("hello", extra_headers={"x-api-key": SECRET}):
            pass
    _refused(info, "extra_headers", "x-api-key")
    assert fp.requests == []


@pytest.mark.asyncio
async def test_ainvoke_and_astream_refuse_it_before_sending(fp: FakeProvider, policy: str) -> None:
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting(), streaming=True)
    with pytest.raises(RequestError) as info:
        await llm.ainvoke("hello", headers={"Api-Key": SECRET})
    _refused(info, "headers", "Api-Key")
    with pytest.raises(RequestError):
        async for _ in llm.astream("hello", extra_headers={"authorization": SECRET}):
            pass
    assert fp.requests == []


def test_other_headers_pass_and_every_candidate_keeps_its_own_key(
    fp: FakeProvider, policy: str
) -> None:
    fp.script("claude-sonnet-4-5", Fault.status(500))
    llm = ChatPolicyRoute(
        policy=policy, accounting=NullAccounting(), model_kwargs={"extra_headers": {"X-Team": "a"}}
    )
    llm.invoke("hello")
    llm.invoke("hello", headers={"X-Trace": "t-2"})
    claude, gpt, again = fp.requests
    assert claude.headers["x-team"] == gpt.headers["x-team"] == "a"
    assert again.headers["x-trace"] == "t-2"
    key = os.environ["POLICYROUTE_TEST_KEY"]
    assert claude.headers["x-api-key"] == again.headers["x-api-key"] == key
    assert "authorization" not in claude.headers
    assert gpt.headers["authorization"] == f"Bearer {key}"
