"""Regex conditions stay bounded in time, whatever text a request carries."""

from __future__ import annotations

import pytest

from policyroute.policy.compile import compile_policy
from policyroute.policy.conditions import REGEX_TEXT_LIMIT, compile_test
from policyroute.policy.model import Test as OpTest

from .helpers import fc, model, msgs, policy, route


@pytest.mark.timeout(10)
def test_a_quadratic_regex_on_a_huge_message_routes_in_bounded_time() -> None:
    # `\s+y` is quadratic under re.search: 100,000 spaces took ~25 s before the text was cut
    routes = [route("ws", "a", fc("last_user_message", "regex", r"\s+y")), route("d", "b")]
    # no context windows: the time measured is the condition's, not a token count's
    compiled = compile_policy(policy(routes, [model("a", window=None), model("b", window=None)]))
    decision = compiled.route({"messages": msgs(" " * 100_000 + "x")}, trace=False)
    assert decision.route == "d"


def test_regex_reads_the_leading_characters_only() -> None:
    test = compile_test(OpTest("regex", "needle"))
    assert test("x" * (REGEX_TEXT_LIMIT - 6) + "needle")
    assert not test("x" * REGEX_TEXT_LIMIT + "needle")


def test_an_end_anchor_matches_at_the_cut_as_documented() -> None:
    assert compile_test(OpTest("regex", "x$"))("x" * (REGEX_TEXT_LIMIT + 5))
