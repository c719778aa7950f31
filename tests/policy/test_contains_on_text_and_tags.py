"""``contains`` with an operand that is not text, on a text fact or on tags, and ``in`` on tags
listing no text, can never hold: the route would silently never match, so they are PR117."""

from __future__ import annotations

import pytest

from policyroute.policy.conditions import compile_test
from policyroute.policy.model import Test as OpTest
from policyroute.policy.validate import validate_text


def _policy(when: str) -> str:
    return (
        "policyroute: 1\nname: t\nmodels: {mini: {model: openai/gpt-4o-mini}}\nroutes:\n"
        f"  - {{name: r, to: mini, when: {when}}}\n"
        "  - {name: default, to: mini}\n"
    )


@pytest.mark.parametrize(
    ("when", "path", "fact_value", "operand"),
    [
        ("{tags: {contains: [vip]}}", "routes[0].when.tags.contains", ("vip",), ["vip"]),
        ("{tags: {contains: 5}}", "routes[0].when.tags.contains", ("5",), 5),
        (
            "{last_user_message: {contains: 5}}",
            "routes[0].when.last_user_message.contains",
            "order 5",
            5,
        ),
        ("{model: {contains: [gpt]}}", "routes[0].when.model.contains", "gpt-4o", ["gpt"]),
        ("{run_id: {contains: true}}", "routes[0].when.run_id.contains", "True", True),
        ("{tags: {in: [1, 2]}}", "routes[0].when.tags.in", ("1",), [1, 2]),
    ],
)
def test_a_test_that_can_never_hold_on_text_or_tags_is_pr117(
    when: str, path: str, fact_value: object, operand: object
) -> None:
    op = path.rsplit(".", 1)[1]
    # what routing does with it: never a match, even for the value the author likely meant
    assert not compile_test(OpTest(op, operand))(fact_value)
    result = validate_text(_policy(when), environ={})
    (d,) = result.diagnostics
    assert (d.code, d.severity, d.path, d.line) == ("PR117", "error", path, 5)


@pytest.mark.parametrize(
    "when",
    [
        "{tags: {contains: vip}}",
        "{tags: {in: [vip, 1]}}",
        "{last_user_message: {contains: refund}}",
        "{metadata.items: {contains: [1]}}",  # metadata may hold lists of anything
        "{metadata.items: {contains: 5}}",
    ],
)
def test_tests_that_can_hold_are_accepted(when: str) -> None:
    assert validate_text(_policy(when), environ={}).diagnostics == ()
