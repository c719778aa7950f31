"""Tests that hold for no value (eq: null, in: []) are PR117; tests that hold for every value
(ne: null, nin: []) make a catch-all, so routes after them are PR110."""

from __future__ import annotations

import pytest

from policyroute.policy.compile import compile_policy
from policyroute.policy.validate import validate_text

HEAD = "policyroute: 1\nname: t\nmodels: {m: {model: openai/gpt-4o-mini}}\nroutes:\n"


def _codes(when: str) -> list[tuple[str, str]]:
    text = HEAD + f"  - {{name: r, to: m, when: {when}}}\n  - {{name: d, to: m}}\n"
    return [(d.code, d.path) for d in validate_text(text, environ={}).diagnostics]


@pytest.mark.parametrize(
    ("when", "path"),
    [
        ("{metadata.x: null}", 'routes[0].when["metadata.x"]'),
        ("{metadata.x: {eq: null}}", 'routes[0].when["metadata.x"].eq'),
        ("{stream: {eq: null}}", "routes[0].when.stream.eq"),
        ("{model: null}", "routes[0].when.model"),
        ("{metadata.x: {in: []}}", 'routes[0].when["metadata.x"].in'),
        ("{tags: {in: []}}", "routes[0].when.tags.in"),
        ("{any: [{params.seed: {in: []}}]}", 'routes[0].when.any[0]["params.seed"].in'),
    ],
)
def test_a_test_that_never_holds_is_pr117_once(when: str, path: str) -> None:
    # the route silently never matched
    assert _codes(when) == [("PR117", path)]


@pytest.mark.parametrize(
    "when",
    [
        "{metadata.x: {ne: null}}",
        "{metadata.x: {nin: []}}",
        "{tags: {nin: []}, model: {ne: null}}",
        "{all: [{model: {ne: null}}]}",
        "{any: [{has_tools: true}, {metadata.y: {nin: []}}]}",
    ],
)
def test_a_test_that_always_holds_makes_a_catch_all(when: str) -> None:
    assert _codes(when) == [("PR110", "routes[1]")]


@pytest.mark.parametrize("when", ["{metadata.x: {ne: null}}", "{metadata.x: {nin: []}}"])
def test_such_a_catch_all_does_match_every_request(when: str) -> None:
    text = HEAD + f"  - {{name: r, to: m, when: {when}}}\n"
    result = validate_text(text, environ={})
    assert result.ok
    assert result.spec is not None
    compiled = compile_policy(result.spec)
    for metadata in ({}, {"x": None}, {"x": 1}, {"x": [None]}):
        assert compiled.route({"messages": "hi", "metadata": metadata}).route == "r"


@pytest.mark.parametrize(
    "when", ["{metadata.x: {ne: 1}}", "{metadata.x: {nin: [a]}}", "{not: {metadata.x: {in: [a]}}}"]
)
def test_ordinary_negations_are_not_catch_alls(when: str) -> None:
    assert _codes(when) == []
