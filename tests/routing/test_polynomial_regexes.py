"""Regexes whose search time grows with the cube (or a higher power) of the text's length are
refused (PR127): reading only the first 10,000 characters bounds a quadratic pattern, not these.
``\\w+\\s*\\w+!`` took two seconds on 1,000 letters (half an hour on 10,000) and ``.*foo.*bar``
four seconds on 3,000 characters of ``foofoo...``, holding the routing thread all the while."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute.errors import PolicyError
from policyroute.policy.compile import compile_policy
from policyroute.policy.conditions import REGEX_TEXT_LIMIT, compile_test
from policyroute.policy.model import (
    FactCondition,
    ModelSpec,
    PolicySpec,
    PriceSpec,
    RouteSpec,
    TargetSpec,
)
from policyroute.policy.model import Test as OpTest
from policyroute.policy.regex_degree import slow_search
from policyroute.policy.validate import validate_text

SLOW = [
    r"\w+\s*\w+!",
    r".*foo.*bar",
    r"a*a*b",
    r"[a-z]+[a-z]+1",
    r"(a|b)*(a|b)*c",
    r".*.*=",
    r"x|\w+\s*\w+!",
    r"(?=\w+\s*\w+!)",
    r"(?m)^\w+\s*\w+!",  # `^` starts every line
    r"^\w+\w+\w+!",  # anchored, but three in a row
]

# Each is at worst quadratic on the texts that make the ones above slow.
FAST = [
    r"refund.*invoice",
    r"foo.*bar",
    r"^.*foo.*bar",
    r"\A\w+\s*\w+!",
    r"^\w+\s*\w+!",
    r".*@.*",
    r"\w+ \w+!",
    r"\d+-\d+",
    r"\w+@\w+\.com",
    r"^[\w.+-]+@([\w-]+\.)+[a-z]{2,}$",
    r"\bfoo\b.*\bbar\b",
]


def _policy(pattern: str) -> str:
    return (
        "policyroute: 1\nname: t\nmodels: {mini: {model: openai/gpt-4o-mini}}\nroutes:\n"
        f"  - {{name: r, to: mini, when: {{last_user_message: {{regex: '{pattern}'}}}}}}\n"
        "  - {name: default, to: mini}\n"
    )


@pytest.mark.parametrize("pattern", SLOW)
def test_two_linked_repetitions_are_refused_by_validate(pattern: str) -> None:
    (d,) = validate_text(_policy(pattern), environ={}).diagnostics
    assert (d.code, d.severity, d.line) == ("PR127", "error", 5)
    assert d.path == "routes[0].when.last_user_message.regex"
    assert "minutes on a long text" in d.message
    assert "leading .*" in str(d.hint)


@pytest.mark.parametrize("pattern", FAST)
def test_patterns_that_stay_quadratic_are_accepted(pattern: str) -> None:
    assert slow_search(pattern) is None
    assert validate_text(_policy(pattern), environ={}).diagnostics == ()


@pytest.mark.timeout(60)  # a cubic search on this text would run for hours
@pytest.mark.parametrize(("pattern", "unit"), [(r"^\w+\s*\w+!", "a"), (r"^.*foo.*bar", "foo")])
def test_an_accepted_pattern_routes_a_hostile_message_in_bounded_time(
    pattern: str, unit: str
) -> None:
    test = compile_test(OpTest("regex", pattern))
    text = unit * REGEX_TEXT_LIMIT
    assert not test(text)


def test_a_policy_built_in_code_cannot_compile_a_slow_regex() -> None:
    spec = PolicySpec(
        name="t",
        version=1,
        models={"m": ModelSpec(alias="m", model="test/m", price=PriceSpec(Decimal(1), Decimal(1)))},
        groups={},
        routes=(
            RouteSpec(
                name="r",
                to=TargetSpec(("m",)),
                when=FactCondition("last_user_message", (OpTest("regex", r"\w+\s*\w+!"),)),
            ),
            RouteSpec(name="d", to=TargetSpec(("m",))),
        ),
    )
    with pytest.raises(PolicyError, match="minutes on a long text"):
        compile_policy(spec)
