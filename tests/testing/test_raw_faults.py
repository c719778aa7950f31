"""Fault.raw and Fault.raw_stream: exactly the bytes a test asks for, on either wire."""

from __future__ import annotations

import time

import httpx
import pytest

from policyroute.testing import FakeProvider, Fault, RawResponse, RawStream

pytestmark = pytest.mark.timeout(20)
USER = [{"role": "user", "content": "hi"}]


def post(fp: FakeProvider, api: str, *, stream: bool = False) -> httpx.Response:
    if api == "openai":
        url, body = fp.openai_base + "/chat/completions", {"model": "m", "messages": USER}
    else:
        url = fp.anthropic_base + "/v1/messages"
        body = {"model": "m", "max_tokens": 9, "messages": USER}
    return httpx.post(url, json={**body, "stream": stream}, timeout=5)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_raw_sends_exactly_the_body_status_and_type(fp: FakeProvider, api: str, stream: bool):
    fp.script("m", Fault.raw("<html>oops</html>", status=502, content_type="text/html"))
    fp.script("m", Fault.raw(b""))
    first, second = post(fp, api, stream=stream), post(fp, api, stream=stream)
    assert (first.status_code, first.headers["content-type"], first.text) == (
        502,
        "text/html",
        "<html>oops</html>",
    )
    assert (second.status_code, second.headers["content-type"], second.content) == (
        200,
        "application/json",
        b"",
    )
    assert fp.requests[0].step == RawResponse("<html>oops</html>", 502, "text/html")


def test_raw_rejects_a_status_below_200() -> None:
    with pytest.raises(ValueError, match="2xx-5xx"):
        Fault.raw(status=101)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_raw_stream_sends_events_verbatim_and_done_on_request(fp: FakeProvider, api: str):
    fp.script("m", Fault.raw_stream('{"choices": []}', "event: ping\ndata: {}", done=True))
    fp.script("m", Fault.raw_stream("garbage"))
    first, second = post(fp, api, stream=True), post(fp, api, stream=False)
    assert first.headers["content-type"].startswith("text/event-stream")
    assert first.text == 'data: {"choices": []}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n'
    assert second.text == "data: garbage\n\n"


def test_raw_stream_with_no_event_ends_the_body_at_once(fp: FakeProvider):
    fp.script("m", Fault.raw_stream())
    response = post(fp, "openai", stream=True)
    assert (response.status_code, response.text) == (200, "")


def test_raw_stream_repeats_its_last_event_until_its_timeout(fp: FakeProvider):
    fp.script("m", Fault.raw_stream("first", "again", repeat_every=0.02, timeout=0.3))
    url = fp.openai_base + "/chat/completions"
    lines: list[str] = []
    started = time.monotonic()
    # Closed mid-body: no terminating chunk.
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", url, json={"model": "m", "stream": True}, timeout=5) as r,
    ):
        lines.extend(line for line in r.iter_lines() if line)
    assert 0.25 < time.monotonic() - started < 3
    assert lines[0] == "data: first"
    assert lines.count("data: again") >= 5
    assert set(lines[1:]) == {"data: again"}


def test_raw_stream_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="> 0"):
        RawStream(("x",), repeat_every=0)
    with pytest.raises(ValueError, match="at least one event"):
        Fault.raw_stream(repeat_every=1)
    with pytest.raises(ValueError, match="timeout"):
        Fault.raw_stream("x", timeout=-1)
    assert Fault.raw_stream("a", "b").events == ("a", "b")


def test_raw_stream_refuses_events_that_are_not_texts_when_made() -> None:
    """A list passed as one event (rather than ``*events``) is refused where it is written,
    not by the fake server, mid-request, with an AttributeError."""
    with pytest.raises(TypeError, match=r"event 0 must be a str.*Fault\.raw_stream\(\*events\)"):
        Fault.raw_stream(['{"choices": []}', '{"choices": []}'])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not one text"):
        RawStream('{"choices": []}')
    with pytest.raises(TypeError, match=r"event 1 must be a str .*, not bytes"):
        RawStream(("ok", b"raw"))  # type: ignore[arg-type]
