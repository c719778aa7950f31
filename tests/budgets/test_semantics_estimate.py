"""The worst case counts every input the provider bills, structured-output schemas included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from budgets.helpers import candidate
from policyroute.costs.estimate import schema_text, worst_case
from policyroute.errors import RequestError
from policyroute.request import Request

HELLO = [{"role": "user", "content": "hello world"}]
SCHEMA = {
    "type": "object",
    "properties": {f"field_{i}": {"type": "string", "description": "x " * 20} for i in range(40)},
    "required": [f"field_{i}" for i in range(40)],
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}


class Answer(BaseModel):
    verdict: str
    reasons: list[str]


def mini() -> Any:
    return candidate("mini", "openai/gpt-4o-mini", price=None)


def _input_tokens(request: Request, params: dict[str, Any] | None = None) -> int:
    est = worst_case(request, mini(), {"max_tokens": 1, **(params or {})}, default_max_tokens=None)
    return est.input_tokens


def test_a_json_schema_response_format_is_counted_as_input() -> None:
    plain = _input_tokens(Request(messages=HELLO))
    with_schema = _input_tokens(Request(messages=HELLO, response_format=JSON_SCHEMA))
    # The schema alone is well over a thousand tokens; none of them were counted before.
    assert with_schema - plain > 1000
    # The executor passes it in the params as well: counted once either way.
    assert _input_tokens(Request(messages=HELLO), {"response_format": JSON_SCHEMA}) == with_schema


def test_a_pydantic_response_format_is_counted_as_its_json_schema() -> None:
    plain = _input_tokens(Request(messages=HELLO))
    counted = _input_tokens(Request(messages=HELLO, response_format=Answer))
    assert counted > plain
    assert schema_text(Answer) == json.dumps(Answer.model_json_schema())


@pytest.mark.parametrize("fmt", [{"type": "text"}, {"type": "json_object"}, None])
def test_formats_without_a_schema_add_nothing(fmt: Any) -> None:
    plain = _input_tokens(Request(messages=HELLO))
    assert _input_tokens(Request(messages=HELLO, response_format=fmt)) == plain


def test_a_schema_that_cannot_be_counted_is_a_request_error() -> None:
    class Broken:
        @staticmethod
        def model_json_schema() -> dict[str, Any]:
            raise ValueError("no schema")

    with pytest.raises(RequestError, match="response_format"):
        _input_tokens(Request(messages=HELLO, response_format=Broken))
