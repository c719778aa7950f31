"""The builder: durations, exact money, windows, on_exceed forms, conditions, env expansion."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute.policy import model as m_
from policyroute.policy.build import parse_duration
from policyroute.policy.validate import validate_text

HEAD = "policyroute: 1\nname: t\nmodels:\n  m: {model: openai/gpt-4o-mini}\n"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("1.5s", 1.5), ("30m", 1800.0), ("6h", 21600.0), ("7d", 604800.0), (3, 3.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_money_is_exact_decimal_from_the_source_text() -> None:
    text = HEAD + "routes: [{name: d, to: m}]\nbudgets:\n"
    text += "  - {name: a, limit_usd: 0.1000000000000000055511, window: 6h}\n"
    text += "  - {name: b, limit_usd: '2.50', window: week, on_exceed: {downgrade: d}}\n"
    text += "  - {name: c, limit_usd: 3, window: call, on_exceed: {clamp_max_tokens: {}}}\n"
    spec = validate_text(text, environ={}).spec
    assert spec is not None
    a, b, c = spec.budgets
    assert a.limit_usd == Decimal("0.1000000000000000055511")
    assert a.window == m_.WindowSpec(kind="rolling", seconds=21600.0)
    assert (b.limit_usd, b.on_exceed) == (Decimal("2.50"), m_.OnExceed("downgrade", target="d"))
    assert c.on_exceed == m_.OnExceed("clamp_max_tokens", min_tokens=1)
    assert c.window.kind == "call"
    assert a.on_exceed == m_.OnExceed("block")


def test_conditions_become_the_condition_tree() -> None:
    text = HEAD + (
        "routes:\n  - name: r\n    when:\n"
        "      any: [{has_tools: true}, {not: {tags: {contains: x}}}]\n"
        "      metadata.task: {in: [a, b], ne: c}\n    to: m\n  - {name: d, to: m}\n"
    )
    spec = validate_text(text, environ={}).spec
    assert spec is not None
    assert spec.routes[0].when == m_.AllOf(
        (
            m_.AnyOf(
                (
                    m_.FactCondition("has_tools", (m_.Test("eq", True),)),
                    m_.Not(m_.FactCondition("tags", (m_.Test("contains", "x"),))),
                )
            ),
            m_.FactCondition("metadata.task", (m_.Test("in", ("a", "b")), m_.Test("ne", "c"))),
        )
    )
    assert spec.routes[1].when is None


def test_api_base_expansion_and_unset_variables() -> None:
    text = HEAD.replace("}", ", api_base: 'http://${H}:${P}/v1'}") + "routes: [{name: d, to: m}]\n"
    spec = validate_text(text, environ={"H": "host", "P": "80"}).spec
    assert spec is not None
    assert spec.models["m"].api_base == "http://host:80/v1"
    result = validate_text(text, environ={"H": "host"})
    assert [d.code for d in result.diagnostics] == ["PR119"]
    assert result.spec is not None
    assert result.spec.models["m"].api_base is None


def test_defaults_are_applied() -> None:
    spec = validate_text(HEAD + "routes: [{name: d, to: m}]\n", environ={}).spec
    assert spec is not None
    assert spec.defaults.timeout == 600.0
    assert spec.store.backend == "sqlite"
    assert spec.groups == {}
    assert spec.budgets == ()
    assert spec.models["m"].weight == 1.0
