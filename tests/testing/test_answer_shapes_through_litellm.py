"""Each answer shape of the fake provider parses through a real litellm call, on both wires."""

from __future__ import annotations

import json
import sys
import threading
import traceback
from typing import Any

import httpx
import jsonschema
import litellm
import pytest

from policyroute.testing import FakeProvider, Reply

USER = [{"role": "user", "content": "one two three four five six"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 2}},
            "required": ["city"],
        },
    },
}
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 2.5}, "tags": {"type": "array"}},
    "required": ["score", "tags"],
}
MODELS = {"openai": "openai/gpt-4o", "anthropic": "anthropic/claude-haiku-4-5"}


# How long one bare litellm call may take before the test gives up on it. A sync Anthropic
# call near the end of the whole suite once waited on itself for ever: the garbage collector,
# running inside httpcore's pool lock of litellm's shared sync client, closed an earlier
# stream's response that nobody had closed, which takes that lock again. policyroute's sync
# streams now close their response themselves; any other leftover would hang the same way, so
# a stuck call fails its test with where it was stuck rather than stalling the run.
CALL_LIMIT_S = 60.0


def call(fp: FakeProvider, api: str, stream: bool, **extra: Any) -> Any:
    """A bare ``litellm.completion`` against ``fp`` (a stream gathered into one response)."""
    outcome: list[Any] = []
    worker = threading.Thread(
        target=_call_into, args=(outcome, fp, api, stream, extra), name="litellm-call", daemon=True
    )
    worker.start()
    worker.join(CALL_LIMIT_S)
    if worker.is_alive():
        frame = sys._current_frames().get(worker.ident or -1)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
        pytest.fail(f"litellm.completion still running after {CALL_LIMIT_S:.0f} s, at:\n{where}")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def _call_into(
    outcome: list[Any], fp: FakeProvider, api: str, stream: bool, extra: dict[str, Any]
) -> None:
    try:
        outcome.append(("ok", _call(fp, api, stream, **extra)))
    except BaseException as exc:  # handed to the test's thread, which raises it
        outcome.append(("error", exc))


def _call(fp: FakeProvider, api: str, stream: bool, **extra: Any) -> Any:
    base = fp.openai_base if api == "openai" else fp.anthropic_base
    response = litellm.completion(
        model=MODELS[api],
        messages=USER,
        stream=stream,
        api_base=base,
        api_key="sk-test",
        num_retries=0,
        max_retries=0,
        timeout=5,
        **extra,
    )
    if stream:
        return litellm.stream_chunk_builder(list(response), messages=USER)
    return response


WIRES = [
    pytest.param(api, stream, id=f"{api}-{'stream' if stream else 'json'}")
    for api in ("openai", "anthropic")
    for stream in (False, True)
]


@pytest.mark.parametrize(("api", "stream"), WIRES)
def test_litellm_parses_a_forced_tool_call_without_text(
    fp: FakeProvider, api: str, stream: bool
) -> None:
    response = call(fp, api, stream, tools=[TOOL], tool_choice="required")
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    [tool_call] = choice.message.tool_calls
    assert tool_call.function.name == "get_weather"
    arguments = json.loads(tool_call.function.arguments)
    jsonschema.validate(arguments, TOOL["function"]["parameters"])  # type: ignore[index]


@pytest.mark.parametrize(("api", "stream"), WIRES)
@pytest.mark.parametrize(
    ("extra", "finish", "text"),
    [
        ({"max_tokens": 2}, "length", "Hello from"),
        ({"stop": ["three"]}, "stop", ": one two "),
    ],
    ids=["max_tokens", "stop"],
)
def test_litellm_maps_finish_reasons(
    fp: FakeProvider, api: str, stream: bool, extra: dict[str, Any], finish: str, text: str
) -> None:
    choice = call(fp, api, stream, **extra).choices[0]
    assert choice.finish_reason == finish
    assert choice.message.content.endswith(text) or choice.message.content == text


@pytest.mark.parametrize(("api", "stream"), WIRES)
def test_litellm_sees_a_scripted_content_filter_finish(
    fp: FakeProvider, api: str, stream: bool
) -> None:
    fp.script("*", Reply(text="partial", finish_reason="content_filter"))
    choice = call(fp, api, stream).choices[0]
    assert (choice.finish_reason, choice.message.content) == ("content_filter", "partial")


@pytest.mark.parametrize("stream", [False, True])
def test_litellm_json_schema_answer_validates(fp: FakeProvider, stream: bool) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}}
    response = call(fp, "openai", stream, response_format=fmt)
    jsonschema.validate(json.loads(response.choices[0].message.content), SCHEMA)


def test_litellm_non_streamed_n_choices(fp: FakeProvider) -> None:
    response = call(fp, "openai", False, n=3)
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert {c.message.content for c in response.choices} == {
        "Hello from fake-gpt-4o: one two three four five"
    }


def test_streamed_choices_are_interleaved_as_openai_sends_them(fp: FakeProvider) -> None:
    body = {"model": "m", "n": 2, "stream": True, "messages": USER}
    with httpx.stream("POST", fp.openai_base + "/chat/completions", json=body) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    indexes = [json.loads(line[6:])["choices"][0]["index"] for line in lines]
    assert indexes[:4] == [0, 1, 0, 1]
    assert indexes.count(0) == indexes.count(1)
