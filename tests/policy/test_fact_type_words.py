"""A condition that can never hold names the fact's type in words (a whole number, true or
false, text, text or null, a list), never by the catalog's own names (``str_or_null``)."""

from __future__ import annotations

import json

import pytest

from policyroute.policy.facts_catalog import DERIVED_FACTS
from policyroute.policy.validate import validate_text

WORDS = {
    "int": "a whole number",
    "bool": "true or false",
    "str": "text",
    "str_or_null": "text or null",
}
# For each type, a test that can never hold for it, and the words its message ends with.
NEVER = {
    "int": [({"regex": "x"}, "needs text, but the fact is a whole number")],
    "bool": [
        ({"gt": 1}, "compares numbers, but the fact is true or false"),
        ({"eq": "no"}, "can never equal this fact, which is true or false"),
    ],
    "str": [
        ({"gte": 2}, "compares numbers, but the fact is text"),
        ({"in": [1, 2]}, "can equal this fact, which is text"),
    ],
    "str_or_null": [
        ({"lt": 3}, "compares numbers, but the fact is text or null"),
        ({"eq": 7}, "can never equal this fact, which is text or null"),
    ],
}
CASES = [
    (fact, test, said)
    for fact, kind in DERIVED_FACTS.items()
    if kind in NEVER
    for test, said in NEVER[kind]
]


def _messages(fact: str, test: dict[str, object]) -> list[str]:
    text = f"""\
policyroute: 1
name: words
models:
  m: {{model: openai/gpt-4o-mini, api_key: "${{OPENAI_API_KEY}}"}}
routes:
  - name: a
    when: {{{fact}: {json.dumps(test)}}}
    to: m
  - name: default
    to: m
"""
    result = validate_text(text, environ={"OPENAI_API_KEY": "sk-test"})
    return [d.message for d in result.diagnostics if d.code == "PR117"]


@pytest.mark.parametrize(("fact", "test", "said"), CASES)
def test_an_impossible_test_names_the_facts_type_in_words(
    fact: str, test: dict[str, object], said: str
) -> None:
    (message,) = _messages(fact, test)
    assert message.endswith(said), message
    for name in ("str_or_null", "int", "bool", "str "):
        assert name not in message.split(": ", 1)[1], message


def test_every_type_a_test_can_never_hold_for_has_its_words() -> None:
    assert {kind for kind in DERIVED_FACTS.values() if kind != "list"} == set(WORDS)
