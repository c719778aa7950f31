"""Compiled policies: matching, candidates, requirements, stats, traces and immutability."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from policyroute.errors import NoCandidateError, PolicyError, RoutingError
from policyroute.policy.compile import CompiledPolicy, canonical_hash, compile_policy
from policyroute.policy.model import (
    BudgetSpec,
    DefaultsSpec,
    Requirements,
    Secret,
    WindowSpec,
)
from policyroute.request import Request
from policyroute.routing import DeploymentStatsTracker

from .helpers import fc, group, model, msgs, policy, route

CHEAP_MODELS = [
    model("mini", price=("0.15", "0.6"), window=128_000),
    model("haiku", price=("1", "5"), window=200_000),
    model("local", price=("0", "0"), window=8_192, caps={"tools": True}),
    model("nocost", price=None, window=None, caps={}),
]


def aliases(decision_or_candidates: Any) -> list[str]:
    cands = getattr(decision_or_candidates, "candidates", decision_or_candidates)
    return [c.alias for c in cands]


def test_first_match_wins_and_route_params() -> None:
    p = compile_policy(
        policy(
            [
                route(
                    "code",
                    ("a", "b"),
                    fc("metadata.task", "in", ["code"]),
                    params={"temperature": 0},
                ),
                route("also-code", "c", fc("metadata.task", "eq", "code")),
                route("default", "c"),
            ]
        )
    )
    d = p.route({"messages": "x", "metadata": {"task": "code"}}, trace=False)
    assert (d.route, aliases(d), dict(d.params), d.trace) == (
        "code",
        ["a", "b"],
        {"temperature": 0},
        (),
    )
    assert p.route({"messages": "x"}).route == "default"
    assert p.route_names == ("code", "also-code", "default")
    assert p.indexed_facts == 1


def test_no_route_matches_is_a_routing_error() -> None:
    p = compile_policy(policy([route("only", "a", fc("metadata.x", "eq", 1))]))
    with pytest.raises(RoutingError, match="catch-all"):
        p.route({"messages": "x"}, trace=False)
    with pytest.raises(RoutingError):
        p.route({"messages": "x"}, trace=True)


def test_cheapest_group_and_trace() -> None:
    p = compile_policy(
        policy(
            [route("default", "cheap")],
            models=CHEAP_MODELS,
            groups=[group("cheap", ("nocost", "haiku", "mini", "local"), "cheapest")],
        )
    )
    d = p.route(Request(messages=msgs()))
    assert aliases(d) == ["local", "mini", "haiku", "nocost"]
    assert all(c.via == "cheap" for c in d.candidates)
    assert (
        "group 'cheap' (cheapest): local $0.00/$0.00 per Mtok, mini $0.15/$0.60 per Mtok,"
        " haiku $1.00/$5.00 per Mtok, nocost unpriced"
    ) in d.trace
    assert d.trace[0] == "route 'default' matched: catch-all"


def test_nested_groups_expand_in_place_and_deduplicate() -> None:
    p = compile_policy(
        policy(
            [route("default", ("b", "outer", "a"))],
            models=[model(x) for x in "abcde"],
            groups=[
                group("inner", ("d", "c", "b")),
                group("outer", ("e", "inner", "a")),
            ],
        )
    )
    d = p.route({"messages": "x"})
    assert aliases(d) == ["b", "e", "d", "c", "a"]
    vias = {c.alias: c.via for c in d.candidates}
    assert vias == {"b": None, "e": "outer", "d": "inner", "c": "inner", "a": "outer"}


def test_nested_group_is_ranked_by_its_first_member() -> None:
    p = compile_policy(
        policy(
            [route("default", "outer")],
            models=[
                model("x", price=("5", "5")),
                model("y", price=("1", "1")),
                model("z", price=("9", "9")),
            ],
            groups=[
                group("inner", ("z", "y"), "cheapest"),
                group("outer", ("x", "inner"), "cheapest"),
            ],
        )
    )
    assert aliases(p.route({"messages": "x"})) == ["y", "z", "x"]


def test_group_cycle_is_a_policy_error() -> None:
    spec = policy(
        [route("default", "g1")],
        groups=[group("g1", ("a", "g2")), group("g2", ("g1",))],
    )
    with pytest.raises(PolicyError, match="loop"):
        compile_policy(spec)


def test_unknown_model_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="sonet"):
        compile_policy(policy([route("default", "sonet")]))


def test_static_requirements_drop_candidates() -> None:
    models = [
        model("a", caps={"tools": False, "vision": True}),
        model("b", caps={"tools": True}, window=8000),
        model("c", caps={"tools": True}, window=None),
        model("d", caps={"tools": True, "vision": True}, window=200_000),
    ]
    p = compile_policy(
        policy(
            [route("default", ("a", "g"), require=Requirements(tools=True))],
            models=models,
            groups=[group("g", ("b", "c", "d"), require=Requirements(min_context_window=100_000))],
        )
    )
    d = p.route({"messages": "x"})
    assert aliases(d) == ["d"]
    assert dict(d.skipped) == {
        "a": "lacks tool calling (required)",
        "b": "context window 8000 < required 100000",
        "c": "context window unknown (required >= 100000)",
    }
    assert d.requirements == Requirements(tools=True, min_context_window=100_000)
    assert "skipped a: lacks tool calling (required)" in d.trace


def test_group_requirement_applies_only_to_its_members() -> None:
    models = [model("a", caps={}), model("b", caps={"vision": True}), model("c", caps={})]
    p = compile_policy(
        policy(
            [route("default", ("a", "g"))],
            models=models,
            groups=[group("g", ("b", "c"), require=Requirements(vision=True))],
        )
    )
    d = p.route({"messages": "x"})
    assert aliases(d) == ["a", "b"]
    assert d.skipped == (("c", "lacks vision (required)"),)


def test_a_later_occurrence_survives_when_an_earlier_one_is_filtered() -> None:
    models = [model("a", caps={}), model("b")]
    p = compile_policy(
        policy(
            [route("default", ("g", "a"))],
            models=models,
            groups=[group("g", ("a", "b"), require=Requirements(vision=True))],
        )
    )
    d = p.route({"messages": "x"})
    assert aliases(d) == ["b", "a"]
    assert d.candidates[1].via is None
    assert d.skipped == ()


def test_request_implied_requirements() -> None:
    models = [
        model("plain", caps={}),
        model("tooly", caps={"tools": True}),
        model("full"),
    ]
    p = compile_policy(policy([route("default", ("plain", "tooly", "full"))], models=models))
    assert aliases(p.route({"messages": "x"})) == ["plain", "tooly", "full"]

    tools = [{"type": "function", "function": {"name": "f"}}]
    d = p.route({"messages": "x", "tools": tools})
    assert aliases(d) == ["tooly", "full"]
    assert d.requirements.tools is True
    assert d.skipped == (("plain", "request offers tools; deployment lacks tool calling"),)

    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]
    d = p.route({"messages": image})
    assert aliases(d) == ["full"]
    assert d.requirements.vision is True

    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    d = p.route({"messages": "x", "response_format": schema})
    assert aliases(d) == ["full"]
    assert d.requirements.json_schema is True


def test_context_window_drops_and_tokens_counted_only_when_big() -> None:
    models = [model("small", window=1_000), model("big", window=1_000_000)]
    p = compile_policy(policy([route("default", ("small", "big"))], models=models))
    counted: list[int] = []

    def counter(request: Request) -> int:
        counted.append(1)
        return 5_000

    assert aliases(p.route({"messages": "short"}, token_counter=counter)) == ["small", "big"]
    assert counted == []
    d = p.route({"messages": "word " * 1_000}, token_counter=counter)
    assert counted == [1]
    assert aliases(d) == ["big"]
    assert d.skipped == (("small", "input_tokens=5000 > context window 1000"),)


def test_big_request_that_fits_is_not_filtered() -> None:
    models = [model("small", window=1_000), model("big", window=1_000_000)]
    p = compile_policy(policy([route("default", ("small", "big"))], models=models))
    d = p.route({"messages": "word " * 1_000}, token_counter=lambda r: 900)
    assert aliases(d) == ["small", "big"]


def test_no_candidate_left() -> None:
    p = compile_policy(policy([route("default", "a", require=Requirements(reasoning=True))]))
    with pytest.raises(NoCandidateError) as info:
        p.route({"messages": "x"})
    assert info.value.route == "default"
    assert info.value.skipped == ("a: lacks reasoning (required)",)


def test_unavailable_deployments_move_last() -> None:
    stats = DeploymentStatsTracker(availability=lambda alias: alias != "a")
    p = compile_policy(policy([route("default", ("a", "b", "c"))]))
    d = p.route({"messages": "x"}, stats=stats)
    assert aliases(d) == ["b", "c", "a"]
    assert "unavailable (circuit open), moved last: a" in d.trace
    assert d.skipped == ()


def test_fastest_and_least_busy_use_stats() -> None:
    stats = DeploymentStatsTracker()
    p = compile_policy(
        policy(
            [route("fast", "f", fc("metadata.m", "eq", "fast")), route("default", "busy")],
            groups=[
                group("f", ("a", "b", "c"), "fastest"),
                group("busy", ("a", "b", "c"), "least_busy"),
            ],
        )
    )
    fast = {"messages": "x", "metadata": {"m": "fast"}}
    assert aliases(p.route(fast, stats=stats)) == ["a", "b", "c"]
    for alias, seconds in (("a", 0.9), ("b", 0.1), ("c", 0.5)):
        stats.record_latency(alias, seconds)
    d = p.route(fast, stats=stats)
    assert aliases(d) == ["b", "c", "a"]
    assert "group 'f' (fastest): b 100ms, c 500ms, a 900ms" in d.trace
    assert aliases(p.route(fast, stats=None)) == ["a", "b", "c"]
    stats.start("a")
    stats.start("b")
    stats.start("b")
    assert aliases(p.route({"messages": "x"}, stats=stats, trace=False)) == ["c", "a", "b"]


def test_weighted_group_uses_the_injected_rng() -> None:
    spec = policy(
        [route("default", "w")],
        models=[model("a", weight=1.0), model("b", weight=3.0), model("z", weight=0.0)],
        groups=[group("w", ("a", "b", "z"), "weighted")],
    )
    first = [
        aliases(p.route({"messages": "x"}, trace=False))
        for p in [compile_policy(spec, rng=random.Random(5))]
        for _ in range(20)
    ]
    again = [
        aliases(p.route({"messages": "x"}, trace=False))
        for p in [compile_policy(spec, rng=random.Random(5))]
        for _ in range(20)
    ]
    assert first == again
    assert all(order[-1] == "z" for order in first)
    assert {order[0] for order in first} == {"a", "b"}


def test_litellm_params() -> None:
    models = [
        model(
            "remote",
            model="azure/gpt-4o",
            api_base="https://example.invalid",
            api_key=Secret("sk-123", source="KEY"),
            api_version="2024-10-21",
            timeout=30.0,
            params={"temperature": 0.1, "model": "ignored"},
        ),
        model("unset", api_key=Secret(None, source="MISSING_KEY")),
    ]
    p = compile_policy(
        policy(
            [route("default", ("remote", "unset"))],
            models=models,
            defaults=DefaultsSpec(timeout=99.0),
        )
    )
    remote, unset = p.route({"messages": "x"}).candidates
    assert dict(remote.litellm_params) == {
        "model": "azure/gpt-4o",
        "api_base": "https://example.invalid",
        "api_key": "sk-123",
        "api_version": "2024-10-21",
        "timeout": 30.0,
        "temperature": 0.1,
    }
    assert dict(unset.litellm_params) == {"model": "test/unset", "timeout": 99.0}
    assert "sk-123" not in repr(remote)
    assert p.defaults.timeout == 99.0


def test_budgets_for() -> None:
    day = WindowSpec(kind="day")
    everywhere = BudgetSpec(name="all", limit_usd=Decimal(1), window=day)
    code_only = BudgetSpec(name="code", limit_usd=Decimal(1), window=day, routes=("code",))
    p = compile_policy(
        policy(
            [route("code", "a", fc("metadata.t", "eq", "c")), route("default", "b")],
            budgets=(everywhere, code_only),
        )
    )
    assert p.budgets_for("code") == (everywhere, code_only)
    assert p.budgets_for("default") == (everywhere,)
    assert p.budgets_for("elsewhere") == (everywhere,)
    assert p.route({"messages": "x", "metadata": {"t": "c"}}).budgets == (everywhere, code_only)


def test_candidates_for() -> None:
    p = compile_policy(
        policy(
            [
                route("premium", "c", fc("metadata.t", "eq", 1), require=Requirements(tools=True)),
                route("default", "g"),
            ],
            models=[model("a", caps={}), model("b"), model("c")],
            groups=[group("g", ("a", "b"))],
        )
    )
    request = Request(messages=msgs())
    assert aliases(p.candidates_for("g", request)) == ["a", "b"]
    assert aliases(p.candidates_for("a", {"messages": "x"})) == ["a"]
    assert aliases(p.candidates_for("premium", request)) == ["c"]
    assert aliases(p.candidates_for("g", request, requirements=Requirements(vision=True))) == ["b"]
    with pytest.raises(NoCandidateError):
        p.candidates_for("a", request, requirements=Requirements(tools=True))
    with pytest.raises(RoutingError, match="nowhere"):
        p.candidates_for("nowhere", request)


def test_model_info_and_identity() -> None:
    spec = policy([route("default", "a")])
    p = compile_policy(spec, source="policies/x.yaml")
    assert p.model_info("a").input_cost_per_token == Decimal("0.000001")
    with pytest.raises(RoutingError):
        p.model_info("nope")
    assert p.name == "test"
    assert p.source == "policies/x.yaml"
    assert p.spec is spec
    assert p.content_hash == canonical_hash(spec) == compile_policy(spec).content_hash
    assert len(p.content_hash) == 64
    assert compile_policy(spec, content_hash="abc").content_hash == "abc"
    other = policy([route("default", "b")])
    assert canonical_hash(other) != p.content_hash


def test_hash_ignores_secret_values() -> None:
    a = policy([route("default", "m")], models=[model("m", api_key=Secret("one", source="K"))])
    b = policy([route("default", "m")], models=[model("m", api_key=Secret("two", source="K"))])
    assert canonical_hash(a) == canonical_hash(b)


def test_compiled_policy_is_immutable() -> None:
    p = compile_policy(policy([route("default", "a")]))
    assert isinstance(p, CompiledPolicy)
    with pytest.raises(AttributeError):
        p.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.spec
    with pytest.raises(AttributeError):
        p.extra = 1  # type: ignore[attr-defined]
    assert "test" in repr(p)


def test_trace_off_builds_nothing_and_agrees_with_trace_on() -> None:
    p = compile_policy(
        policy(
            [
                route("long", "a", fc("input_tokens", "gt", 100)),
                route("code", "b", fc("metadata.task", "in", ["code", "review"])),
                route("default", "c"),
            ]
        )
    )
    request = {"messages": "x", "metadata": {"task": "review"}}
    on = p.route(request, token_counter=lambda r: 12)
    off = p.route(request, token_counter=lambda r: 12, trace=False)
    assert off.trace == ()
    assert (on.route, aliases(on)) == (off.route, aliases(off)) == ("code", ["b"])
    assert on.trace[:2] == (
        "route 'long' skipped: input_tokens=12 not > 100",
        "route 'code' matched: metadata.task in ['code', 'review']",
    )
    assert on.trace[-1] == "candidates: b"


def test_token_counter_not_called_when_no_condition_needs_it() -> None:
    p = compile_policy(
        policy(
            [
                route("code", "a", fc("metadata.task", "eq", "code")),
                route("long", "b", fc("input_tokens", "gt", 100)),
                route("default", "c"),
            ]
        )
    )

    def explode(request: Request) -> int:
        raise AssertionError("input tokens must not be counted")

    assert (
        p.route({"messages": "x", "metadata": {"task": "code"}}, token_counter=explode).route
        == "code"
    )
    calls: list[int] = []
    p.route({"messages": "x"}, token_counter=lambda r: calls.append(1) or 5)
    assert calls == [1]


def test_policy_text_from_the_language_reference() -> None:
    from policyroute.policy.loader import load_policy_text

    compiled = load_policy_text(
        """
policyroute: 1
name: support
models:
  sonnet: {model: anthropic/claude-sonnet-4-5-20250929}
  mini: {model: openai/gpt-4o-mini}
  local:
    model: ollama/llama3.1
    price: {input_per_mtok: 0, output_per_mtok: 0}
groups:
  cheap: {strategy: cheapest, models: [mini, local]}
routes:
  - name: long
    when: {input_tokens: {gt: 100000}}
    to: sonnet
  - name: code
    when:
      any:
        - metadata.task: {in: [code, review]}
        - has_tools: true
      input_tokens: {lte: 100000}
    to: [sonnet, mini]
    params: {temperature: 0}
  - name: default
    to: cheap
"""
    )
    counter = {"token_counter": lambda r: 12}
    code = compiled.route({"messages": "x", "metadata": {"task": "review"}}, **counter)
    assert (code.route, aliases(code), dict(code.params)) == (
        "code",
        ["sonnet", "mini"],
        {"temperature": 0},
    )
    default = compiled.route({"messages": "x", "metadata": {"task": "chat"}}, **counter)
    assert (default.route, aliases(default)) == ("default", ["local", "mini"])
    assert (
        "group 'cheap' (cheapest): local $0.00/$0.00 per Mtok, mini $0.15/$0.60 per Mtok"
        in default.trace
    )


def test_unchanged_decisions_are_shared_and_changed_ones_are_not() -> None:
    p = compile_policy(
        policy([route("default", ("a", "b"))], models=[model("a", caps={}), model("b")])
    )
    stats = DeploymentStatsTracker()
    first = p.route({"messages": "x"}, trace=False)
    assert p.route({"messages": "y"}, trace=False) is first
    assert p.route({"messages": "y"}, stats=stats, trace=False) is first
    tools = [{"type": "function", "function": {"name": "f"}}]
    with_tools = p.route({"messages": "x", "tools": tools}, trace=False)
    assert with_tools is not first
    assert aliases(with_tools) == ["b"]
    assert aliases(p.route({"messages": "x"}, trace=False)) == ["a", "b"]
    stats.set_availability(lambda alias: alias != "a")
    assert aliases(p.route({"messages": "x"}, stats=stats, trace=False)) == ["b", "a"]


def test_size_bound_counts_tool_calls_and_names() -> None:
    from policyroute.policy.facts import RequestFacts

    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}" * 500}}
    facts = RequestFacts(
        Request(messages=[{"role": "assistant", "content": None, "tool_calls": [call]}])
    )
    assert facts.token_upper_bound() > 1000
    assert facts.get("has_images") is False
