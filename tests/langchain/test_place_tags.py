"""A model routes the same inside a chain as called alone: the tags LangChain gives a run for
its place in a chain (``seq:step:2``, ``map:key:...``, ``branch:...``) are not the call's tags,
while the tags a caller gives still reach routing through the chain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableBranch, RunnableParallel

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.facts import facts_from_config
from policyroute.testing import FakeProvider, Reply

_MODEL = """
  {alias}:
    model: openai/fake-{alias}
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}"""


def _policy(base: str) -> str:
    models = "".join(_MODEL.format(alias=a, base=base) for a in ("untagged", "beta", "tagged"))
    return f"""policyroute: 1
name: place-tags
models:{models}
routes:
  - name: untagged
    when: {{tags: {{exists: false}}}}
    to: untagged
  - name: beta
    when: {{tags: {{contains: beta}}}}
    to: beta
  - name: tagged
    to: tagged
receipts: {{sink: none}}
"""


@pytest.fixture
def model(fp: FakeProvider) -> ChatPolicyRoute:
    fp.set_default("*", Reply(text="ok"))
    return ChatPolicyRoute(policy=_policy(fp.openai_base), accounting=NullAccounting())


def _route(message: Any) -> str:
    assert isinstance(message, BaseMessage)
    route = message.response_metadata["policyroute"]["route"]
    assert isinstance(route, str)
    return route


def _chains(model: ChatPolicyRoute) -> dict[str, Runnable[Any, Any]]:
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    return {
        "sequence": prompt | model,
        "map": prompt | RunnableParallel(answer=model),
        "branch": prompt | RunnableBranch((lambda _: False, model), model),
    }


def _answer(result: Any) -> Any:
    return result["answer"] if isinstance(result, dict) else result


def _streamed(chunks: list[Any]) -> Any:
    merged: Any = None
    for chunk in chunks:
        part = _answer(chunk)
        merged = part if merged is None else merged + part
    return merged


@pytest.mark.parametrize("shape", ["sequence", "map", "branch"])
@pytest.mark.parametrize("how", ["invoke", "ainvoke", "stream", "astream"])
def test_a_model_in_a_chain_routes_as_a_call_without_tags(
    model: ChatPolicyRoute, shape: str, how: str
) -> None:
    assert _route(model.invoke("hi")) == "untagged"
    chain = _chains(model)[shape]
    question = {"q": "hi"}
    if how == "invoke":
        answer = _answer(chain.invoke(question))
    elif how == "ainvoke":
        answer = _answer(asyncio.run(chain.ainvoke(question)))
    elif how == "stream":
        answer = _streamed(list(chain.stream(question)))
    else:

        async def collect() -> list[Any]:
            return [chunk async for chunk in chain.astream(question)]

        answer = _streamed(asyncio.run(collect()))
    assert _route(answer) == "untagged"


@pytest.mark.parametrize("shape", ["sequence", "map", "branch"])
def test_a_callers_tags_reach_routing_through_a_chain(model: ChatPolicyRoute, shape: str) -> None:
    chain = _chains(model)[shape]
    answer = _answer(chain.invoke({"q": "hi"}, config={"tags": ["beta"]}))
    assert _route(answer) == "beta"


def test_a_callers_tag_that_only_looks_like_a_place_is_kept() -> None:
    tags = ["seq:step", "seq:step:x", "map:keys", "branch:other", "beta", "graph:step:3"]
    facts = facts_from_config({"tags": tags}, None, None)
    assert facts.tags == ("seq:step", "seq:step:x", "map:keys", "branch:other", "beta")
