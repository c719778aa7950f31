"""PR130: a weighted group that reaches one model through two of its members is flagged."""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

HEAD = """policyroute: 1
name: t
models:
  a: {model: openai/gpt-4o-mini, weight: 3}
  b: {model: openai/gpt-4o, weight: 1}
  c: {model: openai/gpt-4.1-mini, weight: 1}
groups:
"""


def _diagnostics(groups: str) -> list[tuple[str, str, str]]:
    text = HEAD + groups + "routes:\n  - {name: d, to: w}\n"
    return [
        (d.code, d.path, d.severity)
        for d in validate_text(text, environ={}).diagnostics
        if d.code == "PR130"
    ]


def test_a_model_listed_directly_and_through_a_nested_group_is_warned_about() -> None:
    found = _diagnostics("  s: {models: [b, a]}\n  w: {strategy: weighted, models: [a, s, c]}\n")
    assert found == [("PR130", "groups.w.models[1]", "warning")]


def test_a_model_reached_through_two_nested_groups_is_warned_about_once() -> None:
    groups = (
        "  s1: {models: [a, b]}\n  s2: {models: [c, a]}\n"
        "  w: {strategy: weighted, models: [s1, s2]}\n"
    )
    found = validate_text(HEAD + groups + "routes:\n  - {name: d, to: w}\n", environ={})
    (diag,) = [d for d in found.diagnostics if d.code == "PR130"]
    assert diag.path == "groups.w.models[1]"
    assert "model 'a'" in diag.message
    assert "'s1' and 's2'" in diag.message


@pytest.mark.parametrize(
    "groups",
    [
        # the same overlap in an ordered group is harmless: the model is tried once, first
        "  s: {models: [b, a]}\n  w: {models: [a, s, c]}\n",
        # weighted without overlap
        "  s: {models: [b, c]}\n  w: {strategy: weighted, models: [a, s]}\n",
        # overlap only inside an ordered nested group, not across the weighted group's members
        "  s: {models: [b, c]}\n  o: {models: [s, b]}\n  w: {strategy: weighted, models: [a, o]}\n",
    ],
)
def test_no_warning_without_overlap_across_a_weighted_groups_members(groups: str) -> None:
    assert _diagnostics(groups) == []
