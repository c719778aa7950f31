"""Failures and streams as litellm 1.108 and later (with openai 3) shape them, built by hand: the
classes, waits and the sync-stream watchdog must read them as they read litellm 1.106's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from policyroute._lazy import import_litellm
from policyroute.costs.estimate import count_input_tokens
from policyroute.errors import RequestError
from policyroute.execution.classify import classify
from policyroute.execution.retry_info import retry_info_seconds
from policyroute.execution.stream_choices import assemble
from policyroute.execution.stream_io import abort

litellm = import_litellm()
P, M = "openai", "gpt-x"


def _clean_eof_error() -> BaseException:
    # litellm 1.108+: the body ended before a finish reason; httpx's protocol error, wrapped
    # as a connection error, wrapped as a 503 "mid-stream fallback" that keeps it aside.
    eof = httpx.RemoteProtocolError("Stream ended before a finish_reason was received")
    connection = litellm.APIConnectionError(
        "APIConnectionError: OpenAIException - Stream ended before a finish_reason was received",
        P,
        M,
    )
    connection.__cause__ = eof
    outer = litellm.ServiceUnavailableError(f"litellm.MidStreamFallbackError: {connection}", P, M)
    outer.original_exception = connection  # type: ignore[attr-defined]
    outer.__context__ = StopIteration(0)
    return outer


def test_a_stream_ended_before_its_finish_reason_is_a_truncated_answer() -> None:
    error = classify(_clean_eof_error(), deployment="a", model=M)
    assert error.error_class == "malformed_response"
    assert str(error).startswith("deployment 'a' (gpt-x): the stream ended without a finish")
    assert "the answer is truncated" in str(error)


def test_an_outage_passed_on_mid_stream_is_still_a_server_error() -> None:
    down = litellm.ServiceUnavailableError("litellm.MidStreamFallbackError: overloaded", P, M)
    assert classify(down, deployment="a").error_class == "server_error"


def test_an_object_without_choices_is_a_malformed_response() -> None:
    said = (
        "InternalServerError: OpenAIException - litellm.APIError: LiteLLM: provider returned"
        " a response with no 'choices'. Raw keys: []"
    )
    error = classify(litellm.InternalServerError(said, P, M), deployment="a")
    assert error.error_class == "malformed_response"
    assert "not a valid response" in str(error)


class _Response:
    """What abort needs of an httpx response: close, and extensions without a socket."""

    def __init__(self) -> None:
        self.closed = 0
        self.is_closed = False
        self.extensions: dict[str, Any] = {}

    def iter_text(self) -> Iterator[str]:
        yield "event: ping\n"
        yield "data: {}\n"

    def close(self) -> None:
        self.closed += 1
        self.is_closed = True


def _sse_lines(text_chunks: Iterable[str]) -> Iterator[str]:
    # litellm 1.108+'s splitter: a plain generator over response.iter_text().
    for text in text_chunks:
        yield from text.splitlines()


class _Iterator:
    def __init__(self, streaming_response: Any, **kept: Any) -> None:
        self.streaming_response = streaming_response
        for name, value in kept.items():
            setattr(self, name, value)


class _Wrapper:
    def __init__(self, completion_stream: Any) -> None:
        self.completion_stream = completion_stream


def test_abort_closes_the_response_an_anthropic_iterator_keeps_aside() -> None:
    response = _Response()
    lines = _sse_lines(response.iter_text())
    abort(_Wrapper(_Iterator(lines, _response=response)))
    assert response.closed == 1


def test_abort_finds_the_response_under_the_sse_splitter_generator() -> None:
    response = _Response()
    lines = _sse_lines(response.iter_text())
    next(lines)  # started: each generator's frame holds what it reads
    abort(_Wrapper(_Iterator(lines)))
    assert response.closed == 1


def test_abort_leaves_a_stream_with_no_response_under_it_alone() -> None:
    lines = _sse_lines(iter(["data: {}\n"]))
    next(lines)
    abort(_Wrapper(_Iterator(lines)))  # nothing to close, nothing raised


def test_a_retry_delay_kept_only_in_the_errors_body_is_read() -> None:
    # openai 3 writes "Error code: 429" alone when the body is a list (Google's
    # OpenAI-compatible endpoint); the body itself is kept, parsed, in ``body``.
    detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}
    body = [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [detail]}}]
    error = litellm.RateLimitError("RateLimitError: OpenAIException - Error code: 429", P, M)
    error.body = body  # type: ignore[attr-defined]
    assert retry_info_seconds(error) == 0.2
    assert classify(error, deployment="a").retry_after == 0.2


def _per_index_builder(chunks: list[Any], messages: Any = None) -> Any:
    """A stream builder as litellm 1.108's: one choice per index seen, closing chunk's too."""
    texts: dict[int, str] = {}
    finish: dict[int, str | None] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            finish[choice.index] = choice.finish_reason or finish.get(choice.index)
    choices = [
        litellm.utils.Choices(
            index=i, message=litellm.Message(content=texts[i]), finish_reason=finish[i]
        )
        for i in sorted(texts)
    ]
    return litellm.ModelResponse(choices=choices)


def _chunk(index: int, content: str | None, finish: str | None = None) -> Any:
    delta = {"content": content} if content is not None else {}
    return litellm.ModelResponseStream(
        choices=[{"index": index, "delta": delta, "finish_reason": finish}]
    )


def test_one_choice_streamed_as_index_1_is_one_choice_with_a_per_index_builder() -> None:
    chunks = [_chunk(1, "hello "), _chunk(1, "world"), _chunk(0, None, "stop")]
    assert len(_per_index_builder(chunks).choices) == 2  # what the builder makes of it
    (choice,) = assemble(chunks, [], _per_index_builder).choices
    assert (choice.message.content, choice.finish_reason) == ("hello world", "stop")


def test_a_tool_schema_a_tolerant_counter_reads_is_still_refused_by_name() -> None:
    # litellm 1.108+ counts a property that is no schema without failing; the request is
    # still one no provider takes, and the field is named before anything is sent.
    tools = [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": "x"}}},
        }
    ]
    counted: list[Any] = []

    def tolerant(**kwargs: Any) -> int:
        counted.append(kwargs)
        return 10

    with pytest.raises(RequestError) as caught:
        count_input_tokens("gpt-4o-mini", [{"role": "user", "content": "hi"}], tools, tolerant)
    assert "'tools[0].function.parameters.properties.a' must be a JSON schema" in str(caught.value)
    assert counted == []


def test_clients_keyed_by_litellms_loop_number_close_with_their_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # litellm 1.108+ keys a loop's cached clients by a number it gives the loop, not its id.
    import asyncio
    import sys
    import types

    from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop

    numbering = types.ModuleType("litellm.caching.evicted_client_closer")
    numbering.running_loop_token = lambda: 424242  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm.caching.evicted_client_closer", numbering)
    closed: list[str] = []

    class Client:
        def __init__(self, name: str) -> None:
            self.name = name

        async def aclose(self) -> None:
            closed.append(self.name)

    cache = litellm.in_memory_llm_clients_cache
    mine, other = "policyroute-test-client-424242", "policyroute-test-client-7"

    async def calls() -> None:
        await close_litellm_clients_with_loop()
        # Stored under the keys as given (set_cache would add this litellm's own suffix).
        cache.cache_dict[mine] = Client("mine")
        cache.cache_dict[other] = Client("other")

    try:
        asyncio.run(calls())
        assert closed == ["mine"]
        assert mine not in cache.cache_dict
    finally:
        cache.cache_dict.pop(other, None)
