"""A provider that answers garbage: the caller gets a typed error naming the deployment, the
policy falls over, every attempt and the call leave one receipt, and no reservation is left.

Each call goes through the public entry points (ChatPolicyRoute, policyroute.completion)
against the fake provider, with a SQLite budget store and JSONL receipts.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from garbage_support import NON_STREAMING, STREAMING, call, chunk, completion_body

from policyroute.errors import (
    AllCandidatesFailedError,
    MalformedResponseError,
    StreamInterruptedError,
)
from policyroute.testing import FakeProvider, Fault, Reply, Step

pytestmark = pytest.mark.timeout(30)

HTML = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"

# 200 answers to a non-streamed call that are not a completion, on either wire.
GARBAGE_200: dict[str, Step] = {
    "empty": Fault.raw(b""),
    "html-page": Fault.raw(HTML, content_type="text/html"),
    "html-as-json": Fault.raw(HTML),
    "object": Fault.raw("{}"),
    "array": Fault.raw("[]"),
    "no-choices": Fault.raw('{"choices": []}'),
    "null-message": Fault.raw('{"choices": [{"message": null}]}'),
    "sse-body": Fault.raw("data: {}\n\n", content_type="text/event-stream"),
    # An OpenAI-compatible gateway's error object in a 200, naming no status: litellm reports
    # it as a 422 of its own making, which is no refusal of the request.
    "error-object": Fault.raw('{"error": {"message": "overloaded", "type": "server_error"}}'),
    "error-text": Fault.raw('{"error": "upstream failed"}'),
    "usage-strings": Fault.raw(
        completion_body({"prompt_tokens": "5", "completion_tokens": "abc", "total_tokens": "x"})
    ),
    "usage-floats": Fault.raw(
        completion_body({"prompt_tokens": 5.5, "completion_tokens": 1e30, "total_tokens": 1e30})
    ),
}


@pytest.fixture(autouse=True)
def _litellm_usage_warnings() -> Iterator[None]:
    # litellm's pydantic models warn while serialising usage of the wrong type; the warning
    # is litellm's, the behaviour under test is ours.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Pydantic serializer warnings", UserWarning)
        yield


@pytest.mark.parametrize("mode", NON_STREAMING)
@pytest.mark.parametrize(
    ("garbage", "wire"),
    [(g, "openai") for g in GARBAGE_200]
    + [(g, "anthropic") for g in GARBAGE_200 if not g.startswith("usage-")],
)
def test_garbage_200_is_malformed_response_and_falls_over(
    fp: FakeProvider, tmp_path: Path, garbage: str, mode: str, wire: str
) -> None:
    fp.script("a", GARBAGE_200[garbage])
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode, wire=wire)
    assert seen.error is None, seen.error
    assert seen.text == "from b"
    assert fp.attempt_counts == {"a": 1, "b": 1}
    assert seen.attempt_summary == [("a", "error", "malformed_response"), ("b", "ok", None)]
    assert seen.call_summary == [("ok", None)]
    assert seen.reserved == 0


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", NON_STREAMING)
def test_garbage_everywhere_raises_typed_errors_naming_each_deployment(
    fp: FakeProvider, tmp_path: Path, mode: str, wire: str
) -> None:
    fp.script("a", Fault.raw("{}"))
    fp.script("b", Fault.raw(HTML, content_type="text/html"))
    seen = call(fp, tmp_path, mode, wire=wire)
    assert isinstance(seen.error, AllCandidatesFailedError)
    assert seen.error.error_class == "malformed_response"
    assert [type(e) for e in seen.error.errors] == [MalformedResponseError] * 2
    assert [e.deployment for e in seen.error.errors] == ["a", "b"]
    first = str(seen.error.errors[0])
    assert f"deployment 'a' ({wire}/a) answered with something that is not a valid" in first
    assert "Traceback" not in first
    assert [e.status_code for e in seen.error.errors] != [500, 500]
    assert "a: malformed_response" in str(seen.error)
    assert seen.attempt_summary == [
        ("a", "error", "malformed_response"),
        ("b", "error", "malformed_response"),
    ]
    assert seen.call_summary == [("error", "malformed_response")]
    assert seen.reserved == 0
    assert seen.spent == 0


@pytest.mark.parametrize("mode", NON_STREAMING)
def test_an_error_object_in_a_200_says_the_providers_message_or_keeps_its_code(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    fp.script("a", Fault.raw('{"error": {"message": "upstream overloaded"}}'))
    fp.script("b", Fault.raw('{"error": {"message": "Provider returned error", "code": 502}}'))
    seen = call(fp, tmp_path, mode)
    assert isinstance(seen.error, AllCandidatesFailedError)
    assert [(e.error_class, e.status_code) for e in seen.error.errors] == [
        ("malformed_response", None),
        ("server_error", 502),
    ]
    first = str(seen.error.errors[0])
    assert "an error object without a status code: upstream overloaded" in first
    assert "deployment 'a' (openai/a) answered with something that is not a valid" in first


@pytest.mark.parametrize(
    "code", ['"code": null, "param": null', '"code": "server_error"'], ids=["null", "text"]
)
@pytest.mark.parametrize("mode", NON_STREAMING)
def test_an_error_object_with_a_code_that_is_no_status_says_the_providers_message(
    fp: FakeProvider, tmp_path: Path, mode: str, code: str
) -> None:
    # OpenAI's own error shape: a code that is null or text, not an HTTP status.
    body = f'{{"error": {{"message": "The server had an error", "type": "server_error", {code}}}}}'
    fp.script("a", Fault.raw(body))
    fp.script("b", Fault.raw(body))
    seen = call(fp, tmp_path, mode)
    assert isinstance(seen.error, AllCandidatesFailedError)
    assert [e.error_class for e in seen.error.errors] == ["malformed_response"] * 2
    first = str(seen.error.errors[0])
    assert "an error object without a status code: The server had an error" in first


# Error objects whose code (or, in a 200 body, words) name a class: a gateway relaying the
# upstream's refusal. The class decides, as it would for the same refusal sent as a 4xx.
CLASSED_ERROR_OBJECTS = {
    "context_window": {
        "message": "This model's maximum context length is 8192 tokens.",
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
    },
    "content_policy": {"message": "flagged", "code": "content_policy_violation"},
    "rate_limit": {
        "message": "Rate limit reached",
        "type": "requests",
        "code": "rate_limit_exceeded",
    },
}


@pytest.mark.parametrize("error_class", list(CLASSED_ERROR_OBJECTS))
@pytest.mark.parametrize("mode", NON_STREAMING + STREAMING)
def test_an_error_object_whose_code_names_a_class_is_of_that_class(
    fp: FakeProvider, tmp_path: Path, mode: str, error_class: str
) -> None:
    body = json.dumps({"error": CLASSED_ERROR_OBJECTS[error_class]})
    fault = Fault.raw_stream(body) if mode in STREAMING else Fault.raw(body)
    fp.script("a", fault)
    fp.script("b", fault)
    seen = call(fp, tmp_path, mode)
    assert isinstance(seen.error, AllCandidatesFailedError)
    assert [e.error_class for e in seen.error.errors] == [error_class] * 2
    assert seen.attempt_summary == [("a", "error", error_class), ("b", "error", error_class)]
    assert seen.reserved == 0
    if mode in NON_STREAMING:
        # litellm's own text has lost it; the error says what the provider said.
        said = CLASSED_ERROR_OBJECTS[error_class]
        expected = f"deployment 'a' answered with an error object: {said['message']}"
        assert f"{expected} (code {said['code']!r})" in str(seen.error.errors[0])


@pytest.mark.parametrize("mode", NON_STREAMING)
def test_an_error_object_in_a_200_saying_the_prompt_is_too_long_falls_over(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    fp.script("a", Fault.raw('{"error": {"message": "prompt is too long: 250000 tokens"}}'))
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode)
    assert seen.text == "from b"
    assert seen.attempt_summary == [("a", "error", "context_window"), ("b", "ok", None)]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", NON_STREAMING)
def test_502_with_an_html_page_stays_a_server_error(
    fp: FakeProvider, tmp_path: Path, mode: str, wire: str
) -> None:
    fp.script("a", Fault.raw(HTML, status=502, content_type="text/html"))
    fp.script("b", Fault.raw(HTML, status=502, content_type="text/html"))
    seen = call(fp, tmp_path, mode, wire=wire)
    assert isinstance(seen.error, AllCandidatesFailedError)
    assert [(e.error_class, e.deployment, e.status_code) for e in seen.error.errors] == [
        ("server_error", "a", 502),
        ("server_error", "b", 502),
    ]
    assert seen.call_summary == [("error", "server_error")]
    assert len(seen.attempts) == 2
    assert seen.reserved == 0


# --------------------------------------------------------------------------- streams

EMPTY_CHUNK = chunk({}, choices=False)


@pytest.mark.parametrize("mode", STREAMING)
def test_idle_timeout_catches_a_stream_of_empty_chunks_after_content(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    # Bytes keep coming, answer content does not: a stall all the same.
    fp.script(
        "a",
        Fault.raw_stream(
            chunk({"role": "assistant", "content": "partial"}),
            EMPTY_CHUNK,
            repeat_every=0.05,
            timeout=15,
        ),
    )
    seen = call(fp, tmp_path, mode, idle="0.5s")
    assert isinstance(seen.error, StreamInterruptedError), seen.error
    assert seen.error.error_class == "timeout"
    assert seen.error.deployment == "a"
    assert seen.error.partial_text == "partial"
    assert seen.seconds < 5
    assert fp.attempt_counts == {"a": 1}
    assert seen.attempt_summary == [("a", "interrupted", "timeout")]
    assert seen.call_summary == [("interrupted", "timeout")]
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", STREAMING)
def test_empty_chunks_before_any_content_fall_over_at_the_first_token_timeout(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    fp.script("a", Fault.raw_stream(EMPTY_CHUNK, repeat_every=0.05, timeout=15))
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode, first_token="0.5s")
    assert seen.error is None, seen.error
    assert seen.text == "from b"
    assert seen.seconds < 5
    assert seen.attempt_summary == [("a", "error", "timeout"), ("b", "ok", None)]
    assert seen.call_summary == [("ok", None)]
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", STREAMING)
def test_stream_ending_without_finish_reason_or_done_is_interrupted_not_complete(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    # A proxy closed the body cleanly mid-answer: litellm makes up a finish reason ("stop"),
    # which must not pass the partial answer off as whole.
    fp.script("a", Fault.raw_stream(chunk({"role": "assistant", "content": "the start of"})))
    seen = call(fp, tmp_path, mode)
    assert isinstance(seen.error, StreamInterruptedError), (seen.text, seen.error)
    assert seen.error.error_class == "malformed_response"
    assert seen.error.deployment == "a"
    assert "finish reason" in str(seen.error)
    assert seen.error.partial_text == "the start of"
    assert seen.attempt_summary == [("a", "interrupted", "malformed_response")]
    assert seen.call_summary == [("interrupted", "malformed_response")]
    assert seen.reserved == 0
    assert seen.spent > 0  # the partial answer is billed


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", STREAMING)
def test_stream_with_finish_reason_but_no_terminal_event_is_complete(
    fp: FakeProvider, tmp_path: Path, mode: str, wire: str
) -> None:
    fp.script("a", Fault.missing_done(Reply(text="all of it")))
    seen = call(fp, tmp_path, mode, wire=wire)
    assert seen.error is None, seen.error
    assert seen.text == "all of it"
    assert seen.attempt_summary == [("a", "ok", None)]
    assert seen.call_summary == [("ok", None)]
    assert seen.reserved == 0


# --------------------------------------------------------------------------- usage

NEGATIVE_USAGE = {"prompt_tokens": -5, "completion_tokens": -100, "total_tokens": -105}
# Past any context window by twenty orders of magnitude: a provider bug, not a bill.
ABSURD_USAGE = {"prompt_tokens": 10**30, "completion_tokens": 7, "total_tokens": 10**30 + 7}


@pytest.mark.parametrize("usage", [NEGATIVE_USAGE, ABSURD_USAGE], ids=["negative", "absurd"])
@pytest.mark.parametrize("mode", NON_STREAMING)
def test_impossible_usage_is_counted_locally_not_taken_as_reported(
    fp: FakeProvider, tmp_path: Path, mode: str, usage: dict[str, int]
) -> None:
    fp.script("a", Fault.raw(completion_body(usage)))
    seen = call(fp, tmp_path, mode)
    assert seen.error is None, seen.error
    assert seen.text == "hi there"
    assert seen.attempt_summary == [("a", "ok", None)]
    (receipt,) = seen.attempts
    assert 0 < receipt["input_tokens"] < 100
    assert 0 < receipt["output_tokens"] < 100
    assert seen.spent > 0
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", STREAMING)
def test_negative_usage_in_a_stream_is_counted_locally(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    fp.script(
        "a",
        Fault.raw_stream(
            chunk({"role": "assistant", "content": "hi there"}),
            chunk({}, finish="stop"),
            chunk({}, choices=False, usage=NEGATIVE_USAGE),
            done=True,
        ),
    )
    seen = call(fp, tmp_path, mode)
    assert seen.error is None, seen.error
    assert seen.text == "hi there"
    assert seen.attempt_summary == [("a", "ok", None)]
    (receipt,) = seen.attempts
    assert receipt["input_tokens"] > 0
    assert receipt["output_tokens"] > 0
    assert seen.spent > 0
    assert seen.reserved == 0


# --------------------------------------------------------------------------- billing

GARBAGE_STREAMS: dict[str, Step] = {
    "html-page": Fault.raw(HTML, content_type="text/html"),
    "object": Fault.raw("{}"),
    "no-events": Fault.raw_stream(),
    "only-done": Fault.raw_stream(done=True),
    "garbage-first-event": Fault.raw_stream("<html>", done=True),
}


@pytest.mark.parametrize("mode", STREAMING)
@pytest.mark.parametrize("garbage", list(GARBAGE_STREAMS))
def test_a_stream_that_never_began_is_not_billed(
    fp: FakeProvider, tmp_path: Path, mode: str, garbage: str
) -> None:
    fp.script("a", GARBAGE_STREAMS[garbage])
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode)
    assert seen.error is None, seen.error
    assert seen.text == "from b"
    assert seen.attempt_summary == [("a", "error", "malformed_response"), ("b", "ok", None)]
    first, second = seen.attempts
    assert (first["provider_billed"], Decimal(first["cost"])) == (False, 0)
    assert seen.spent == Decimal(second["cost"]) > 0
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", STREAMING)
def test_a_stream_cut_after_its_role_chunk_is_still_billed_its_prompt(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    fp.script("a", Fault.raw_stream(chunk({"role": "assistant"})))
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode)
    assert seen.text == "from b"
    first, _ = seen.attempts
    assert first["provider_billed"] is True
    assert Decimal(first["cost"]) > 0
    assert seen.reserved == 0


def anthropic_event(name: str, data: dict[str, object]) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}"


MESSAGE_START = anthropic_event(
    "message_start",
    {
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "a",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 5, "output_tokens": 0},
        }
    },
)
BLOCK_START = anthropic_event(
    "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
)
TEXT_DELTA = anthropic_event(
    "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "partial"}}
)
PING = anthropic_event("ping", {})


@pytest.mark.parametrize("mode", STREAMING)
def test_pings_forever_after_content_end_at_the_idle_timeout(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    # litellm swallows pings: a sync read never returns a chunk to check the deadline on.
    fp.script(
        "a",
        Fault.raw_stream(MESSAGE_START, BLOCK_START, TEXT_DELTA, PING, repeat_every=0.05),
    )
    seen = call(fp, tmp_path, mode, wire="anthropic", idle="0.5s")
    assert isinstance(seen.error, StreamInterruptedError), seen.error
    assert (seen.error.error_class, seen.error.deployment) == ("timeout", "a")
    assert seen.error.partial_text == "partial"
    assert seen.seconds < 5
    assert seen.attempt_summary == [("a", "interrupted", "timeout")]
    assert seen.call_summary == [("interrupted", "timeout")]
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", STREAMING)
def test_pings_forever_before_content_fall_over_at_the_first_token_timeout(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    fp.script("a", Fault.raw_stream(MESSAGE_START, PING, repeat_every=0.05))
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode, wire="anthropic", first_token="0.5s")
    assert seen.error is None, seen.error
    assert seen.text == "from b"
    assert seen.seconds < 5
    assert seen.attempt_summary == [("a", "error", "timeout"), ("b", "ok", None)]
    assert seen.call_summary == [("ok", None)]
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_reasoning_after_content_is_progress_for_the_idle_timeout(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    # Reasoning for longer than the idle timeout, then the connection drops: the stream
    # ends on the drop, not on the idle deadline.
    fp.script(
        "a",
        Fault.raw_stream(
            chunk({"role": "assistant", "content": "first, "}),
            chunk({"reasoning_content": "hmm "}),
            repeat_every=0.05,
            timeout=1.0,
        ),
    )
    seen = call(fp, tmp_path, mode, idle="0.4s")
    assert isinstance(seen.error, StreamInterruptedError), seen.error
    assert seen.error.error_class == "connection"
    assert seen.seconds >= 0.9


@pytest.mark.parametrize("mode", NON_STREAMING + STREAMING)
def test_a_400_whose_code_is_a_content_policy_violation_is_one_whatever_its_words(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    # With openai 3, litellm raises a plain BadRequestError for it: only the code tells.
    body = json.dumps(
        {
            "error": {
                "message": "Your request was blocked.",
                "type": "invalid_request_error",
                "code": "content_policy_violation",
            }
        }
    )
    fp.script("a", Fault.raw(body, status=400))
    fp.script("b", Reply(text="from b"))
    seen = call(fp, tmp_path, mode)
    assert seen.text == "from b"
    assert seen.attempt_summary == [("a", "error", "content_policy"), ("b", "ok", None)]
