"""What code moving from langchain-openai's ChatOpenAI reads off an answer and sends for
structured output: llm_output's token_usage and system_fingerprint, response_metadata's
system_fingerprint and service_tier, streamed logprobs per chunk, and a json_schema
response_format with the schema's description and a strict-mode schema OpenAI accepts."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, Usage

FINGERPRINT = "fp_fake"  # what the fake provider's OpenAI wire answers carry


class Person(BaseModel):
    """A person the user mentioned."""

    name: str = Field(description="full name")
    age: int | None = None
    nick: str = "x"


class EndHandler(BaseCallbackHandler):
    def __init__(self) -> None:
        self.outputs: list[Any] = []

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.outputs.append(response.llm_output)


def _format(fp: FakeProvider) -> dict[str, Any]:
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    fmt: dict[str, Any] = recorded.body["response_format"]
    return fmt


def test_json_schema_sends_the_schema_description(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script("fake-fast", Reply(text='{"name": "Ada", "age": 36, "nick": "a"}'))
    runnable = llm.with_structured_output(Person, method="json_schema", strict=False)
    assert runnable.invoke("who?") == Person(name="Ada", age=36, nick="a")
    spec = _format(fp)["json_schema"]
    assert spec["name"] == "Person"
    assert spec["description"] == "A person the user mentioned."
    assert spec["strict"] is False
    # Not strict: optional properties stay optional.
    assert spec["schema"]["required"] == ["name"]


def test_json_schema_dict_description_is_sent(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    schema = {
        "title": "T",
        "description": "a thing",
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }
    fp.script("fake-fast", Reply(text='{"a": 1}'))
    assert llm.with_structured_output(schema, method="json_schema").invoke("x") == {"a": 1}
    assert _format(fp)["json_schema"]["description"] == "a thing"


def test_strict_json_schema_is_what_openai_accepts_in_strict_mode(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    class Pet(BaseModel):
        kind: str
        owner: Person | None = None

    fp.script("fake-fast", Reply(text='{"kind": "cat", "owner": null}'))
    pet = llm.with_structured_output(Pet, method="json_schema", strict=True).invoke("x")
    assert pet == Pet(kind="cat")
    spec = _format(fp)["json_schema"]
    assert spec["strict"] is True
    schema = spec["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["kind", "owner"]
    owner = next(s for s in schema["properties"]["owner"]["anyOf"] if s.get("type") == "object")
    assert owner["additionalProperties"] is False
    assert owner["required"] == ["name", "age", "nick"]
    # OpenAI's strict mode takes no null defaults (its SDK strips them); others stay.
    assert "default" not in json.dumps(schema).replace('"default": "x"', "")
    assert owner["properties"]["nick"]["default"] == "x"


def test_generate_llm_output_has_token_usage_and_fingerprint(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script(
        "fake-fast", Reply(text="hi", usage=Usage(prompt=10, completion=3, cached=4, reasoning=1))
    )
    fp.script("fake-fast", Reply(text="hi", usage=Usage(prompt=5, completion=2)))
    handler = EndHandler()
    result = llm.generate([[HumanMessage("a")], [HumanMessage("b")]], callbacks=[handler])
    first = handler.outputs[0]
    assert first["model_name"] == "openai/fake-fast"
    assert first["system_fingerprint"] == FINGERPRINT
    usage = first["token_usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        10,
        3,
        13,
    )
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 1
    combined = result.llm_output
    assert combined is not None
    assert combined["token_usage"]["total_tokens"] == 13 + 7
    assert combined["token_usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    assert combined["model_name"] == "openai/fake-fast"
    assert combined["system_fingerprint"] == FINGERPRINT


def test_streamed_generate_llm_output_is_langchain_openais(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script("fake-fast", Reply(text="hi there", usage=Usage(prompt=4, completion=2)))
    handler = EndHandler()
    streaming = llm.model_copy(update={"streaming": True})
    result = streaming.generate([[HumanMessage("a")]], callbacks=[handler])
    # A stream reports its usage on its last chunk, and none in llm_output.
    assert handler.outputs == [None]
    assert result.llm_output == {"token_usage": {}}
    message = result.generations[0][0].message
    assert message.usage_metadata is not None  # type: ignore[attr-defined]
    assert message.usage_metadata["total_tokens"] == 6  # type: ignore[attr-defined]


def test_invoke_metadata_has_fingerprint_service_tier_and_usage(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script("fake-fast", Reply(text="hi", usage=Usage(prompt=3, completion=1)))
    meta = llm.invoke("x").response_metadata
    assert meta["system_fingerprint"] == FINGERPRINT
    assert meta["service_tier"] == "default"
    assert meta["token_usage"]["total_tokens"] == 4
    assert meta["model_name"] == "openai/fake-fast"


def test_stream_last_chunk_has_fingerprint_and_service_tier(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script("fake-fast", Reply(text="one two three"))
    chunks = list(llm.stream("x"))
    last = chunks[-1].response_metadata
    assert last["system_fingerprint"] == FINGERPRINT
    assert last["service_tier"] == "default"
    assert all("system_fingerprint" not in c.response_metadata for c in chunks[:-1])


def _event(text: str | None, logprob: float | None, finish: str | None = None) -> str:
    choice: dict[str, Any] = {
        "index": 0,
        "delta": {"role": "assistant", "content": text} if text is not None else {},
        "finish_reason": finish,
        "logprobs": None,
    }
    if text is not None and logprob is not None:
        token = {
            "token": text,
            "logprob": logprob,
            "bytes": list(text.encode()),
            "top_logprobs": [],
        }
        choice["logprobs"] = {"content": [token], "refusal": None}
    return json.dumps(
        {
            "id": "chatcmpl-lp",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "fake-fast",
            "choices": [choice],
        }
    )


def test_streamed_logprobs_are_on_each_chunk(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script(
        "fake-fast",
        Fault.raw_stream(
            _event("Hel", -0.1), _event("lo", -0.2), _event(None, None, "stop"), done=True
        ),
    )
    chunks = list(llm.stream("x", logprobs=True))
    assert fp.requests[0].body["logprobs"] is True
    texts = [c for c in chunks if c.content]
    assert [c.response_metadata["logprobs"]["content"][0]["token"] for c in texts] == ["Hel", "lo"]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    tokens = merged.response_metadata["logprobs"]["content"]
    assert [(t["token"], t["logprob"]) for t in tokens] == [("Hel", -0.1), ("lo", -0.2)]


def test_streamed_generation_info_says_which_model_answered(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    # What ChatOpenAI's streamed generations carry, on the last chunk only: merged, each
    # string is whole (LangChain's merge joins strings that two chunks hold).
    handler = EndHandler()
    infos: list[Any] = []

    class Infos(BaseCallbackHandler):
        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            infos.append(response.generations[0][0].generation_info)

    fp.script("fake-fast", Reply(text="one two three"))
    chunks = list(llm.stream("x", config={"callbacks": [handler, Infos()]}))
    expected = {
        "finish_reason": "stop",
        "model_name": "openai/fake-fast",
        "system_fingerprint": FINGERPRINT,
        "service_tier": "default",
    }
    assert infos == [expected]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert {k: merged.response_metadata[k] for k in expected} == expected
    streaming = llm.model_copy(update={"streaming": True})
    fp.script("fake-fast", Reply(text="one two three"))
    generated = streaming.generate([[HumanMessage("x")]])
    assert generated.generations[0][0].generation_info == expected


def test_streamed_logprobs_are_in_the_generation_info(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script(
        "fake-fast",
        Fault.raw_stream(
            _event("Hel", -0.1), _event("lo", -0.2), _event(None, None, "stop"), done=True
        ),
    )
    streaming = llm.model_copy(update={"streaming": True})
    info = streaming.generate([[HumanMessage("x")]], logprobs=True).generations[0][0]
    assert info.generation_info is not None
    tokens = info.generation_info["logprobs"]["content"]
    assert [(t["token"], t["logprob"]) for t in tokens] == [("Hel", -0.1), ("lo", -0.2)]
    assert info.generation_info["finish_reason"] == "stop"


def test_stream_without_logprobs_has_none(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script("fake-fast", Reply(text="one two"))
    assert all("logprobs" not in c.response_metadata for c in llm.stream("x"))


def test_strict_json_schema_drops_null_defaults_under_properties_named_like_keywords(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    # "default", "enum" and "examples" are also property names: their schemas are walked too.
    class Choice(BaseModel):
        label: str | None = None

    class Form(BaseModel):
        default: Choice
        enum: Choice
        examples: list[Choice]

    fp.script(
        "fake-fast",
        Reply(text='{"default": {"label": null}, "enum": {"label": "a"}, "examples": []}'),
    )
    form = llm.with_structured_output(Form, method="json_schema", strict=True).invoke("x")
    assert form.enum.label == "a"
    schema = _format(fp)["json_schema"]["schema"]
    assert '"default": null' not in json.dumps(schema)
    assert set(schema["properties"]) == {"default", "enum", "examples"}
