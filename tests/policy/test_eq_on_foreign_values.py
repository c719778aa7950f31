"""A string ``eq`` (the commonest test, ``metadata.tier: gold``) never runs a fact value's own
``==``: metadata holds whatever the application put there (a numpy array, an object whose
``__eq__`` raises), and routing must treat it as not equal, as every other operator does.

``v == "gold"`` calls ``v.__eq__`` first; an array answered with an array whose truth value
raised ``ValueError`` on every call routed through such a condition.
"""

from __future__ import annotations

from typing import Any

import pytest

from policyroute.explain import explain
from policyroute.policy import model
from policyroute.policy.conditions import compile_test
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request

POLICY = """policyroute: 1
name: foreign
models:
  mini: {model: openai/gpt-4o-mini}
  haiku: {model: anthropic/claude-haiku-4-5}
routes:
  - name: gold
    when: {metadata.tier: gold}
    to: haiku
  - name: not-silver
    when: {metadata.tier: {ne: silver}, metadata.team.name: {eq: core}}
    to: haiku
  - name: default
    to: mini
"""


class _RaisingEq:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparison")

    __hash__ = object.__hash__


class _Ambiguous:
    """What a numpy array does: ``==`` gives an object whose truth value raises."""

    def __eq__(self, other: object) -> Any:
        return self

    def __bool__(self) -> bool:
        raise ValueError("the truth value is ambiguous")

    __hash__ = object.__hash__


def _one(request: Request) -> int:
    return 1


@pytest.mark.parametrize("value", [_RaisingEq(), _Ambiguous()], ids=["raises", "ambiguous"])
def test_a_value_with_a_strange_eq_routes_as_not_equal(value: object) -> None:
    policy = load_policy_text(POLICY)
    for metadata in ({"tier": value}, {"tier": "bronze", "team": {"name": value}}):
        request = Request(messages=[{"role": "user", "content": "hi"}], metadata=metadata)
        assert policy.route(request, token_counter=_one).route == "default"
        assert explain(policy, request, token_counter=_one).route == "default"


@pytest.mark.parametrize("op", ["eq", "ne"])
def test_compiled_string_eq_and_ne_do_not_call_the_values_eq(op: str) -> None:
    test = compile_test(model.Test(op, "gold"))
    assert test(_Ambiguous()) is (op == "ne")
    assert test(_RaisingEq()) is (op == "ne")
    assert test("gold") is (op == "eq")
