"""The worst case counts what JSON mode sends to Claude: the schema, or the JSON instruction.

JSON mode reaches an Anthropic-format deployment as the schema given to
``with_structured_output`` (a ``json_schema`` response format) or, with no schema, as an added
system instruction (:mod:`policyroute.execution.response_format`). The estimate read the
request's ``{"type": "json_object"}``, which carries neither, and counted nothing for them.
"""

from __future__ import annotations

from typing import Any

from budgets.helpers import candidate
from policyroute.costs.estimate import worst_case
from policyroute.execution.response_format import JSON_INSTRUCTION
from policyroute.request import Request

CLAUDE = "anthropic/claude-sonnet-4-5-20250929"
JSON_OBJECT = {"type": "json_object"}
MESSAGES = [{"role": "user", "content": "Who is Ada? Answer in JSON."}]
FIELDS = {f"field_{i}": {"type": "string", "description": f"the {i}th detail"} for i in range(40)}
AS_SENT = {
    "type": "json_schema",
    "json_schema": {"name": "Person", "schema": {"type": "object", "properties": FIELDS}},
}


def _input(model: str, params: dict[str, Any], response_format: Any = JSON_OBJECT) -> int:
    request = Request(messages=MESSAGES, response_format=response_format)
    return worst_case(
        request, candidate("m", model), {"max_tokens": 1, **params}, default_max_tokens=None
    ).input_tokens


def test_the_schema_claude_gets_for_json_mode_is_counted() -> None:
    plain = _input(CLAUDE, {"response_format": JSON_OBJECT})
    schema = _input(CLAUDE, {"response_format": AS_SENT})
    assert schema - plain > 300  # forty described fields, and Anthropic's tool prompt


def test_the_json_instruction_claude_gets_without_a_schema_is_counted() -> None:
    with_instruction = _input(CLAUDE, {"response_format": JSON_OBJECT})
    without = _input(CLAUDE, {}, response_format=None)
    assert with_instruction - without >= len(JSON_INSTRUCTION.split())
