"""Regexes that backtrack exponentially are refused (PR127); deep or huge ones never crash."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from policyroute.errors import PolicyError
from policyroute.policy.compile import compile_policy
from policyroute.policy.model import (
    FactCondition,
    ModelSpec,
    PolicySpec,
    PriceSpec,
    RouteSpec,
    TargetSpec,
)
from policyroute.policy.model import Test as OpTest
from policyroute.policy.regex_risk import catastrophic
from policyroute.policy.validate import validate_text

# Each of these took seconds on 25 characters and grows exponentially with the text.
CATASTROPHIC = [
    r"(a+)+$",
    r"(a*)*b",
    r"(a|a)+$",
    r"(a|aa)+$",
    r"(?:a|b|ab)+$",
    r"(.*,)+$",
    r"(\w+\s?)+$",
    r"(x+x+)+y",
    r"(\s*,\s*)+$",
    r"(?:\r\n|\r|\n)+$",
    r"(\w+)*@",
    r"(a|b?)+$",
    r"(?i)(A+a+)+$",
    r"(x+)+?y",
    r"(a+){3,}$",
    r"((ab)*)*c",
    r"^(([a-z])+.)+[A-Z]([a-z])+$",
]

# Patterns a policy writes every day: none may be refused.
BENIGN = [
    r"(?i)\b(refund|invoice)\b",
    r"^/\w+",
    r"\s+$",
    r"^(\w+\.)+com$",
    r"^[\w.+-]+@([\w-]+\.)+[a-z]{2,}$",
    r"(\d{1,3}\.){3}\d{1,3}",
    r"(\d+,)*\d+",
    r"(ab+)*$",
    r"(a+b+)+$",
    r"(?:foo|bar)+",
    r"(https?://)+",
    r"(\w+\s)+",
    r"a{1,2}b",
    r"(a+){2}",
    r"(?=(a+))a",
]

if hasattr(re, "NOFLAG"):  # Python 3.11: possessive repeats and atomic groups
    BENIGN += [r"(a++)+", r"(?>a+)+"]


def _policy(pattern: str) -> str:
    return (
        "policyroute: 1\nname: t\nmodels: {mini: {model: openai/gpt-4o-mini}}\nroutes:\n"
        f"  - {{name: r, to: mini, when: {{last_user_message: {{regex: '{pattern}'}}}}}}\n"
        "  - {name: default, to: mini}\n"
    )


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_regex_is_refused_by_validate(pattern: str) -> None:
    result = validate_text(_policy(pattern), environ={})
    (d,) = result.diagnostics
    assert (d.code, d.severity, d.line) == ("PR127", "error", 5)
    assert d.path == "routes[0].when.last_user_message.regex"
    assert "exponential" in d.message


@pytest.mark.parametrize("pattern", BENIGN)
def test_an_everyday_regex_is_accepted(pattern: str) -> None:
    assert catastrophic(pattern) is None
    assert validate_text(_policy(pattern), environ={}).diagnostics == ()


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|ab)+$"])
def test_a_policy_built_in_code_cannot_compile_a_catastrophic_regex(pattern: str) -> None:
    spec = PolicySpec(
        name="t",
        version=1,
        models={"m": ModelSpec(alias="m", model="test/m", price=PriceSpec(Decimal(1), Decimal(1)))},
        groups={},
        routes=(
            RouteSpec(
                name="r",
                to=TargetSpec(("m",)),
                when=FactCondition("last_user_message", (OpTest("regex", pattern),)),
            ),
            RouteSpec(name="d", to=TargetSpec(("m",))),
        ),
    )
    with pytest.raises(PolicyError, match="exponential"):
        compile_policy(spec)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(?:" * 2000 + "a" + ")" * 2000, "nested too deeply"),
        ("a{4294967295}", "too large"),
    ],
)
def test_a_regex_re_cannot_build_is_pr115_not_a_crash(pattern: str, words: str) -> None:
    (d,) = validate_text(_policy(pattern), environ={}).diagnostics
    assert d.code == "PR115"
    assert words in d.message


@pytest.mark.timeout(60)
def test_the_analysis_of_a_long_pattern_ends() -> None:
    # An analysis exponential in the pattern's length would never end on these; a linear one
    # takes milliseconds (no wall-clock bound here: the machine may be loaded).
    patterns = ["(" + "[a-z]+-" * 1000 + ")+", "(" + "|".join(f"w{i}" for i in range(2000)) + ")+"]
    for pattern in patterns:
        catastrophic.__wrapped__(pattern)
