"""A copy or a configured instance of ChatPolicyRoute on another policy describes that policy:
LangChain agents read ``model.profile`` to choose how to ask for structured output."""

from __future__ import annotations

import json
from collections.abc import Callable

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.runnables import ConfigurableField
from lc_support import add
from pydantic import BaseModel

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, ToolCall


class Weather(BaseModel):
    city: str
    temp: int


def _plain_text_only(policy: str) -> str:
    """``policy`` (a :func:`policy_text`) whose models take no JSON schema and write at most
    1,000 tokens."""
    return policy.replace("json_schema: true", "json_schema: false").replace(
        "max_output_tokens: 4096", "max_output_tokens: 1000"
    )


def test_a_copy_on_another_policy_has_that_policys_profile(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    copied = llm.model_copy(update={"policy": _plain_text_only(make_policy(name="plain"))})
    fresh = ChatPolicyRoute(policy=_plain_text_only(make_policy(name="plain")))
    assert copied.profile == fresh.profile
    assert copied.profile is not None
    assert copied.profile["structured_output"] is False
    assert copied.profile["max_output_tokens"] == 1000
    # the original keeps its own
    assert llm.profile is not None
    assert llm.profile["structured_output"] is True


def test_a_copy_keeps_a_profile_given_by_the_user(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), profile={"structured_output": False})
    copied = llm.model_copy(update={"policy": make_policy(name="other")})
    assert copied.profile == {"structured_output": False}
    deep = llm.model_copy(update={"policy": make_policy(name="other")}, deep=True)
    assert deep.profile == {"structured_output": False}


def test_configurable_policy_has_the_configured_policys_profile(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    configurable = llm.configurable_fields(policy=ConfigurableField(id="policy"))
    plain = _plain_text_only(make_policy(name="plain"))
    # langchain-core builds the configured model anew from the default's fields, the profile
    # resolved from the default's policy among them (``_prepare`` is how it does so for a call)
    built, _ = configurable._prepare({"configurable": {"policy": plain}})
    assert isinstance(built, ChatPolicyRoute)
    assert built.profile == ChatPolicyRoute(policy=plain).profile


def test_an_agent_switching_to_a_policy_without_json_schema_asks_for_a_tool_call(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    """create_agent's default structured output uses the provider's JSON schema mode when the
    model's profile says it can; on a copy whose policy cannot, it must use a tool."""
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    plain = llm.model_copy(update={"policy": _plain_text_only(make_policy(name="plain"))})

    @wrap_model_call
    def use_plain(
        request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        return handler(request.override(model=plain))

    fp.set_default("*", Reply(tool_calls=[ToolCall("Weather", {"city": "Lyon", "temp": 21})]))
    agent = create_agent(llm, tools=[add], response_format=Weather, middleware=[use_plain])
    state = agent.invoke({"messages": [{"role": "user", "content": "weather in Lyon?"}]})
    assert state["structured_response"] == Weather(city="Lyon", temp=21)
    (sent,) = [r.body for r in fp.requests]
    assert "response_format" not in sent, json.dumps(sent)
    assert {t["function"]["name"] for t in sent["tools"]} == {"add", "Weather"}
