"""Budget downgrade targets: unambiguous at validation, clearly reported when nothing fits."""

from __future__ import annotations

import pytest

from policyroute.errors import NoCandidateError
from policyroute.policy.compile import compile_policy
from policyroute.policy.validate import validate_text

from .helpers import model, policy, route

POLICY = """policyroute: 1
name: t
models:
  strong: {model: openai/gpt-4o}
  weak: {model: openai/gpt-4o-mini}
%s
budgets:
  - {name: b, limit_usd: 5, window: day, routes: [main], on_exceed: {downgrade: %s}}
routes:
  - {name: main, to: strong}
  - {name: %s, to: weak}
"""


@pytest.mark.parametrize(
    ("extra", "name", "other"),
    [("groups: {cheap: {models: [strong]}}", "cheap", "group"), ("", "strong", "model alias")],
)
def test_a_downgrade_target_that_is_a_route_and_a_group_or_model_is_refused(
    extra: str, name: str, other: str
) -> None:
    # at run time models and groups are looked up first: the route would silently be ignored
    result = validate_text(POLICY % (extra, name, name), environ={})
    (d,) = result.errors
    assert (d.code, d.path) == ("PR128", "budgets[0].on_exceed.downgrade")
    assert f"both a route and a {other}" in d.message


def test_an_unambiguous_route_target_is_accepted() -> None:
    assert validate_text(POLICY % ("", "cheap", "cheap"), environ={}).ok


def test_a_downgrade_route_without_a_fitting_candidate_names_the_route_once() -> None:
    compiled = compile_policy(
        policy(
            [route("main", "a"), route("cheap", "b")],
            [model("a"), model("b", caps={"tools": False})],
        )
    )
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(NoCandidateError) as info:
        compiled.candidates_for("cheap", {"messages": "hi", "tools": tools})
    assert str(info.value).startswith("route 'cheap': no candidate deployment left")
    assert info.value.route == "cheap"
