"""ChatOpenAI's client options, as code moving to ChatPolicyRoute brings them: none reaches the
provider as a body field (OpenAI refuses unknown ones), default headers are sent as headers,
and options with no counterpart are refused where they are written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lc_support import policy_text

from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Usage


def _model(fp: FakeProvider, **kwargs: Any) -> ChatPolicyRoute:
    return ChatPolicyRoute(
        policy=policy_text(fp.openai_base), accounting=NullAccounting(), **kwargs
    )


def _body(fp: FakeProvider) -> dict[str, Any]:
    (request,) = fp.requests
    body: dict[str, Any] = request.body
    return body


@pytest.mark.parametrize("given", [True, False])
def test_stream_usage_on_the_model_is_not_sent_and_usage_is_still_asked_for(
    fp: FakeProvider, given: bool
) -> None:
    fp.script("fake-fast", Reply(text="a b", usage=Usage(prompt=7, completion=2)))
    chunks = list(_model(fp, stream_usage=given).stream("hi"))
    body = _body(fp)
    assert "stream_usage" not in body
    assert body["stream_options"] == {"include_usage": True}
    usage = {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    assert chunks[-1].usage_metadata == (usage if given else None)


def test_stream_usage_on_a_call_is_not_sent(fp: FakeProvider) -> None:
    list(_model(fp).stream("hi", stream_usage=True))
    assert "stream_usage" not in _body(fp)


def test_stream_usage_bound_to_an_async_stream_is_not_sent(fp: FakeProvider) -> None:
    bound = _model(fp).bind(stream_usage=True)

    async def chunks() -> list[Any]:
        return [chunk async for chunk in bound.astream("hi")]

    assert asyncio.run(chunks())
    assert "stream_usage" not in _body(fp)


@pytest.mark.parametrize("stream", [False, True])
def test_default_headers_are_sent_as_headers(fp: FakeProvider, stream: bool) -> None:
    model = _model(fp, default_headers={"X-Team": "search"})
    if stream:
        list(model.stream("hi"))
    else:
        model.invoke("hi")
    (request,) = fp.requests
    assert request.headers["x-team"] == "search"
    assert "default_headers" not in request.body


def test_extra_headers_win_over_default_headers_of_the_same_name(fp: FakeProvider) -> None:
    model = _model(fp, default_headers={"X-Team": "a", "X-Env": "prod"})
    model.invoke("hi", extra_headers={"X-Team": "b"})
    (request,) = fp.requests
    assert (request.headers["x-team"], request.headers["x-env"]) == ("b", "prod")


def test_credential_in_default_headers_is_refused_like_one_in_extra_headers(
    fp: FakeProvider,
) -> None:
    with pytest.raises(RequestError, match="Authorization"):
        _model(fp, default_headers={"Authorization": "Bearer sk-1"})


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("use_responses_api", True, "chat completions"),
        ("include_response_headers", True, "response_metadata"),
        ("tiktoken_model_name", "gpt-4o", "custom_get_token_ids"),
        ("default_query", {"a": "1"}, "OpenAI client"),
    ],
)
def test_client_options_without_counterpart_are_refused_at_construction(
    fp: FakeProvider, name: str, value: Any, why: str
) -> None:
    with pytest.raises(RequestError, match=f"ChatOpenAI's '{name}' has no counterpart.*{why}"):
        _model(fp, **{name: value})
    assert fp.requests == []


def test_client_option_without_counterpart_is_refused_at_the_call(fp: FakeProvider) -> None:
    with pytest.raises(RequestError, match="use_responses_api"):
        _model(fp).invoke("hi", use_responses_api=True)
    assert fp.requests == []


def test_client_options_left_at_their_defaults_pass(fp: FakeProvider) -> None:
    _model(fp, use_responses_api=False, include_response_headers=False).invoke("hi")
    body = _body(fp)
    assert "use_responses_api" not in body
    assert "include_response_headers" not in body


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"stream_usage": "yes"}, "stream_usage must be a boolean"),
        ({"default_headers": ["X-Team"]}, "default_headers must be a mapping"),
    ],
)
def test_client_options_of_the_wrong_type_are_refused(
    fp: FakeProvider, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(RequestError, match=message):
        _model(fp, **given)


def _with_header_params(fp: FakeProvider, *, route: bool) -> str:
    """The policy with ``X-Team: support`` on its ``fast`` model's params, and with
    ``route``, ``X-Route: default`` on the default route's."""
    text = policy_text(fp.openai_base).replace(
        "    model: openai/fake-fast\n",
        "    model: openai/fake-fast\n    params: {extra_headers: {X-Team: support}}\n",
    )
    if route:
        text = text.replace(
            "    to: [fast, backup]\n",
            "    to: [fast, backup]\n    params: {extra_headers: {X-Route: default}}\n",
        )
    assert text.count("extra_headers") == 1 + route
    return text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route", [False, True])
def test_default_headers_add_to_the_policys_headers(
    fp: FakeProvider, stream: bool, route: bool
) -> None:
    model = ChatPolicyRoute(
        policy=_with_header_params(fp, route=route),
        accounting=NullAccounting(),
        default_headers={"X-App": "a"},
    )
    if stream:
        list(model.stream("hi", extra_headers={"X-Trace": "t"}))
    else:
        model.invoke("hi", extra_headers={"X-Trace": "t"})
    (request,) = fp.requests
    headers = request.headers
    assert (headers["x-team"], headers["x-app"], headers["x-trace"]) == ("support", "a", "t")
    assert headers.get("x-route") == ("default" if route else None)


def test_headers_merge_by_name_in_the_policys_order(fp: FakeProvider) -> None:
    # deployment < call < route, header by header, whatever the case of the name
    model = ChatPolicyRoute(policy=_with_header_params(fp, route=True), accounting=NullAccounting())
    model.invoke("hi", extra_headers={"x-team": "call", "X-ROUTE": "call"})
    (request,) = fp.requests
    assert (request.headers["x-team"], request.headers["x-route"]) == ("call", "default")


def test_bind_refuses_a_credential_in_default_headers_where_it_is_written(
    fp: FakeProvider,
) -> None:
    with pytest.raises(RequestError, match="'default_headers' may not carry the 'Authorization'"):
        _model(fp).bind(default_headers={"Authorization": "Bearer sk-1"})
    with pytest.raises(RequestError, match="'default_headers' may not carry the 'x-api-key'"):
        _model(fp).invoke("hi", default_headers={"x-api-key": "k"})
    assert fp.requests == []


def test_bind_refuses_a_client_option_without_counterpart(fp: FakeProvider) -> None:
    with pytest.raises(RequestError, match="ChatOpenAI's 'use_responses_api' has no counterpart"):
        _model(fp).bind(use_responses_api=True)
    with pytest.raises(RequestError, match="stream_usage must be a boolean"):
        _model(fp).bind(stream_usage="yes")
