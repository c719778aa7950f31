"""Malformed chat bodies get a 4xx, and stream faults happen whatever their position."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from policyroute.testing import FakeProvider, Fault, Reply, ToolCall

PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def post(fp: FakeProvider, api: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(fp.base_url + PATHS[api], json=body, timeout=5)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("field", ["tools", "messages"])
def test_a_field_that_is_not_an_array_is_a_400(
    fp: FakeProvider, api: str, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        r = post(fp, api, {"model": "m", "max_tokens": 5, field: 5})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert f"'{field}'" in error["message"]
    if api == "openai":
        assert error["param"] == field
    assert post(fp, api, {"model": "m", "max_tokens": 5}).status_code == 200
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert [r.model for r in fp.requests] == ["m", "m"]
    assert fp.requests[0].source == "invalid"


@pytest.mark.parametrize(("n", "word"), [(129, "above maximum"), (0, "below minimum")])
def test_n_out_of_range_is_a_400_not_a_frozen_server(fp: FakeProvider, n: int, word: str) -> None:
    r = post(fp, "openai", {"model": "m", "n": n})
    assert r.status_code == 400
    assert word in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "n"
    assert len(post(fp, "openai", {"model": "m", "n": 128}).json()["choices"]) == 128


def stream_body(fp: FakeProvider, api: str) -> tuple[bytes, Exception | None]:
    body = {"model": "m", "max_tokens": 50, "stream": True, "messages": []}
    received = b""
    with httpx.stream("POST", fp.base_url + PATHS[api], json=body, timeout=1) as r:
        try:
            for part in r.iter_raw():
                received += part
        except (httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
            return received, exc
    return received, None


TERMINAL = {"openai": b"data: [DONE]", "anthropic": b"event: message_stop"}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "fault",
    [Fault.stream_cut(after=50), Fault.stall(after=50, timeout=5)],
    ids=["cut", "stall"],
)
def test_a_break_past_the_last_event_still_breaks_the_stream(
    fp: FakeProvider, api: str, fault: Fault
) -> None:
    fp.script("m", fault)
    received, error = stream_body(fp, api)
    assert error is not None
    assert TERMINAL[api] not in received
    assert b"finish_reason" in received or b"message_delta" in received


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_malformed_chunk_past_the_last_event_is_still_sent(fp: FakeProvider, api: str) -> None:
    fp.script("m", Fault.malformed_chunk(after=50))
    received, error = stream_body(fp, api)
    assert error is None
    assert b"{not json" in received
    assert received.index(b"{not json") < received.index(TERMINAL[api])


def test_anthropic_tool_only_stream_pings_after_its_first_block(fp: FakeProvider) -> None:
    fp.script("m", Reply(tool_calls=[ToolCall("f", {"a": 1}), ToolCall("g", {})]))
    received, _ = stream_body(fp, "anthropic")
    names = [
        json.loads(line[6:])["type"]
        for line in received.decode().splitlines()
        if line.startswith("data: ")
    ]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names.count("ping") == 1
