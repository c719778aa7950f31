"""value_for_schema answers must validate against the schema they were built from."""

from __future__ import annotations

import json
from typing import Any, Optional

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

from policyroute.testing import FakeProvider, value_for_schema


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Tree(BaseModel):
    label: str
    left: Optional[Tree] = None  # noqa: UP045 - the anyOf-with-null shape pydantic emits
    right: Optional[Tree] = None  # noqa: UP045


class Bounded(BaseModel):
    ratio: float = Field(ge=1.5, le=2.5)
    share: float = Field(gt=0, lt=0.5)
    count: int = Field(gt=2, multiple_of=5)
    code: str = Field(pattern=r"^[A-Z]{3}$")
    digits: str = Field(pattern=r"^\d{4,6}$")
    short: str = Field(max_length=0)
    pair: tuple[int, str]
    nothing: list[int] = Field(max_length=0)


SCHEMAS: dict[str, dict[str, Any]] = {
    "float minimum": {"type": "number", "minimum": 1.5},
    "float maximum": {"type": "number", "maximum": 0.25},
    "exclusive float bounds": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
    "integer above a fraction": {"type": "integer", "minimum": 2.5},
    "integer multipleOf": {"type": "integer", "multipleOf": 7},
    "integer multipleOf and minimum": {"type": "integer", "minimum": 10, "multipleOf": 4},
    "draft-4 exclusive minimum": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "integer",
        "minimum": 1,
        "exclusiveMinimum": True,
    },
    "allOf merged": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]},
        ]
    },
    "ref with siblings": {
        "$defs": {"P": {"type": "object", "properties": {"q": {"type": "boolean"}}}},
        "type": "object",
        "properties": {"p": {"allOf": [{"$ref": "#/$defs/P"}], "description": "d"}},
        "required": ["p"],
    },
    "required without properties": {"type": "object", "required": ["x", "y"]},
    "required with typed additionalProperties": {
        "type": "object",
        "required": ["n"],
        "additionalProperties": {"type": "integer"},
    },
    "minProperties": {"type": "object", "minProperties": 2},
    "maxItems zero": {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
    "prefixItems": {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
    },
    "unique strings": {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 3,
        "uniqueItems": True,
    },
    "unique integers": {
        "type": "array",
        "items": {"type": "integer"},
        "minItems": 2,
        "uniqueItems": True,
    },
    "maxLength zero": {"type": "string", "maxLength": 0},
    "pattern": {"type": "string", "pattern": "^[a-f0-9]{8}$"},
    "enum wins": {"type": "string", "enum": ["b", "a"]},
    "nullable type list": {"type": ["null", "integer"], "minimum": 3},
    "pydantic recursive list": Node.model_json_schema(),
    "pydantic recursive optional": Tree.model_json_schema(),
    "pydantic bounds and patterns": Bounded.model_json_schema(),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_value_for_schema_validates(name: str) -> None:
    schema = SCHEMAS[name]
    jsonschema.validate(value_for_schema(schema), schema)


def test_value_for_schema_still_fills_optional_properties_near_the_top() -> None:
    value = value_for_schema(Node.model_json_schema())
    assert value["children"][0]["value"] == 1
    assert len(json.dumps(value)) < 200


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer"}, "minItems": 10**9},
        {"properties": {"a": {"$ref": "#"}, "b": {"$ref": "#"}, "c": {"$ref": "#"}}},
        {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
        {"$ref": "#"},
        {"type": "integer", "minimum": 1e400},
        {"type": "integer", "minimum": "3", "maximum": None},
        {"type": "array", "minItems": "3"},
    ],
)
@pytest.mark.timeout(60)  # a billion items, or a recursion that never bottoms out, would not end
def test_hostile_schemas_answer_quickly(schema: dict[str, Any]) -> None:
    json.dumps(value_for_schema(schema))


def test_a_hostile_schema_does_not_freeze_the_server() -> None:
    huge = {"type": "array", "items": {"type": "integer"}, "minItems": 10**9}
    fmt = {"type": "json_schema", "json_schema": {"name": "h", "schema": huge}}
    body = {"model": "m", "messages": [], "response_format": fmt}
    with FakeProvider() as fp, httpx.Client(timeout=5) as client:
        first = client.post(fp.openai_base + "/chat/completions", json=body)
        after = client.post(fp.openai_base + "/chat/completions", json={"model": "m"})
    assert first.status_code == 200
    assert after.status_code == 200
