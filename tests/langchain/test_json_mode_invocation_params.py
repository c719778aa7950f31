"""``with_structured_output(method="json_mode")`` carries its schema to the executor under a
private key; callbacks (LangSmith, tracers) are not shown it as a call parameter.

The key still reaches the executor, which sends the schema to Claude deployments, and still
tells cache keys apart.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from pydantic import BaseModel

from policyroute.execution.hooks import NullAccounting
from policyroute.execution.response_format import SCHEMA_KEY
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

CLAUDE = "claude-sonnet-4-5"


class Person(BaseModel):
    name: str
    age: int


class StartRecorder(BaseCallbackHandler):
    """Keeps the keyword arguments of every ``on_chat_model_start``."""

    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts.append(kwargs)


@pytest.fixture(autouse=True)
def key() -> Iterator[None]:
    os.environ["JSON_MODE_PARAMS_KEY"] = "sk-test"
    yield
    os.environ.pop("JSON_MODE_PARAMS_KEY", None)


def route(fp: FakeProvider) -> ChatPolicyRoute:
    policy = f"""
policyroute: 1
name: json-mode-params
models:
  claude:
    model: anthropic/{CLAUDE}
    api_base: {fp.anthropic_base}
    api_key: ${{JSON_MODE_PARAMS_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
routes:
  - name: default
    to: claude
defaults:
  retry: {{attempts: 0}}
receipts: {{sink: none}}
"""
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting(), max_tokens=400)


async def _acollect(runnable: Any, how: str, config: Any) -> Any:
    if how == "ainvoke":
        return await runnable.ainvoke("who? answer in JSON", config=config)
    return [chunk async for chunk in runnable.astream("who? answer in JSON", config=config)][-1]


def run(runnable: Any, how: str, recorder: StartRecorder) -> Any:
    config = {"callbacks": [recorder]}
    if how == "invoke":
        return runnable.invoke("who? answer in JSON", config=config)
    if how == "stream":
        return list(runnable.stream("who? answer in JSON", config=config))[-1]
    return asyncio.run(_acollect(runnable, how, config))


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_the_carried_schema_is_not_an_invocation_param(fp: FakeProvider, how: str) -> None:
    fp.set_default(CLAUDE, Reply(text='{"name": "Ada", "age": 36}'))
    recorder = StartRecorder()
    runnable = route(fp).with_structured_output(Person, method="json_mode")
    result = run(runnable, how, recorder)
    assert result == Person(name="Ada", age=36)
    (start,) = recorder.starts
    assert SCHEMA_KEY not in start["invocation_params"]
    assert SCHEMA_KEY not in start["options"]
    assert start["invocation_params"]["response_format"] == {"type": "json_object"}
    # The executor still had the schema: Claude was sent it (its fields, not just JSON mode).
    (request,) = fp.requests
    assert '"age"' in json.dumps(request.body)


def test_the_carried_schema_still_tells_cache_keys_apart(fp: FakeProvider) -> None:
    llm = route(fp)
    plain = llm._get_llm_string(response_format={"type": "json_object"})
    carried = llm._get_llm_string(
        response_format={"type": "json_object"}, **{SCHEMA_KEY: {"title": "Person"}}
    )
    assert plain != carried
