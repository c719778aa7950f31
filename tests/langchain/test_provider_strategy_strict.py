"""LangChain agents' ``ProviderStrategy(schema, strict=True)`` binds a ``json_schema``
``response_format`` carrying the bare JSON schema of the class, whose objects are not closed:
OpenAI refuses it in strict mode. Asked strict, the schema is sent closed (every object
``additionalProperties: false`` with all its properties required, no ``null`` defaults), as
``with_structured_output(..., strict=True)`` sends it; not asked strict, it goes as given."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.structured_output import ProviderStrategy
from langchain_core.tools import tool
from lc_support import Person
from pydantic import BaseModel
from typing_extensions import TypedDict

from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.structured import response_format_for
from policyroute.testing import FakeProvider

pytestmark = pytest.mark.timeout(30)


class City(BaseModel):
    name: str
    country: str | None = None


class Weather(BaseModel):
    """The weather in a city."""

    city: City
    temperature: float
    alerts: list[City]
    note: str | None = None


class Forecast(TypedDict):
    day: str
    high: float


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    return city


def _objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema in ``node``, ``$defs`` included."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found.extend(_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_objects(value))
    return found


def _has_null_default(node: Any) -> bool:
    if isinstance(node, dict):
        if "default" in node and node["default"] is None:
            return True
        return any(_has_null_default(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_null_default(v) for v in node)
    return False


def _assert_strict(schema: dict[str, Any]) -> None:
    objects = _objects(schema)
    assert objects
    for obj in objects:
        assert obj["additionalProperties"] is False, obj
        assert sorted(obj["required"]) == sorted(obj["properties"]), obj
    assert not _has_null_default(schema)


def _sent_format(fp: FakeProvider) -> dict[str, Any]:
    fmt: dict[str, Any] = fp.requests[-1].body["response_format"]
    return fmt


@pytest.mark.parametrize("tools", [[], [lookup]], ids=["no-tools", "with-tools"])
def test_provider_strategy_strict_sends_a_closed_schema(
    llm: ChatPolicyRoute, fp: FakeProvider, tools: list[Any]
) -> None:
    agent = create_agent(llm, tools=tools, response_format=ProviderStrategy(Weather, strict=True))
    out = agent.invoke({"messages": [("user", "weather in Paris?")]})
    assert isinstance(out["structured_response"], Weather)
    fmt = _sent_format(fp)
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert spec["name"] == "Weather"
    assert spec["strict"] is True
    schema = spec["schema"]
    _assert_strict(schema)
    # The schema's own title and description stay, and what it says is unchanged.
    assert schema["title"] == "Weather"
    assert schema["description"] == "The weather in a city."
    bare = Weather.model_json_schema()
    assert schema["$defs"]["City"]["properties"] == bare["$defs"]["City"]["properties"] | {
        "country": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Country"}
    }
    assert schema["properties"]["city"] == {"$ref": "#/$defs/City"}


def test_provider_strategy_strict_closes_a_typed_dict(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    agent = create_agent(llm, tools=[], response_format=ProviderStrategy(Forecast, strict=True))
    agent.invoke({"messages": [("user", "forecast?")]})
    _assert_strict(_sent_format(fp)["json_schema"]["schema"])


@pytest.mark.parametrize("strict", [None, False])
def test_provider_strategy_not_strict_sends_the_schema_as_given(
    llm: ChatPolicyRoute, fp: FakeProvider, strict: bool | None
) -> None:
    agent = create_agent(llm, tools=[], response_format=ProviderStrategy(Weather, strict=strict))
    agent.invoke({"messages": [("user", "weather in Paris?")]})
    spec = _sent_format(fp)["json_schema"]
    assert spec["schema"] == Weather.model_json_schema()
    assert spec.get("strict", False) is False


def test_with_structured_output_strict_is_sent_unchanged(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    llm.with_structured_output(Person, method="json_schema", strict=True).invoke("x")
    assert _sent_format(fp) == response_format_for(Person, "json_schema", True)


def test_a_strict_response_format_passed_to_invoke_is_closed_without_changing_it(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    given = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "source": {"type": "object", "properties": {"url": {"type": "string"}}},
                },
            },
        },
    }
    kept = copy.deepcopy(given)
    llm.invoke("x", response_format=given)
    assert given == kept
    spec = _sent_format(fp)["json_schema"]
    assert spec["name"] == "answer"
    _assert_strict(spec["schema"])
