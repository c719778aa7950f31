"""PR134: a budget over a model whose output nothing bounds is found when the policy is
validated, and a call refused for it is told only what is missing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import policyroute
from policyroute.api import clear_cache
from policyroute.cli import main
from policyroute.errors import BudgetError, BudgetExceeded
from policyroute.policy.compile import compile_policy
from policyroute.policy.loader import load_policy_text
from policyroute.policy.validate import validate_text
from policyroute.testing import FakeProvider, Reply, Usage

# The case at stake: a priced model litellm has no output limit for, under a budget.
MINI = """\
policyroute: 1
name: t
models:
  mini:
    model: acme/mini-unlisted
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
"""
CAPPED = """\
  capped:
    model: acme/capped-unlisted
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
    max_output_tokens: 4096
"""
MODELS = MINI + CAPPED
POLICY = MINI + "routes:\n  - name: default\n    to: mini\n"
POLICY += "budgets:\n  - {name: daily, limit_usd: 5, window: day}\n"


def _pr134(text: str) -> list[str]:
    result = validate_text(text, environ={})
    return [d.format() for d in result.diagnostics if d.code == "PR134"]


def test_validate_strict_fails_naming_the_model_the_budget_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    assert main(["validate", "--strict", str(path)]) == 1
    out = capsys.readouterr().out
    assert "models.mini:" in out
    assert "[PR134]" in out
    assert "budget 'daily'" in out
    assert "max_output_tokens" in out
    assert "max_tokens to defaults" in out
    assert "0 errors, 1 warning" in out


def test_without_strict_it_is_a_warning_and_the_policy_loads() -> None:
    result = validate_text(POLICY, environ={})
    assert [(d.code, d.severity) for d in result.diagnostics] == [("PR134", "warning")]
    assert result.ok
    assert load_policy_text(POLICY).route_names == ("default",)


@pytest.mark.parametrize(
    ("change", "old", "new"),
    [
        ("defaults", "budgets:", "defaults: {max_tokens: 100}\nbudgets:"),
        ("route params", "    to: mini\n", "    to: mini\n    params: {max_tokens: 100}\n"),
        (
            "model params",
            "model: acme/mini-unlisted\n",
            "model: acme/mini-unlisted\n    params: {max_tokens: 100}\n",
        ),
        (
            "model limit",
            "model: acme/mini-unlisted\n",
            "model: acme/mini-unlisted\n    max_output_tokens: 100\n",
        ),
        ("limit from litellm", "model: acme/mini-unlisted", "model: openai/gpt-4o-mini"),
        (
            "a budget on another route",
            "budgets:\n  - {name: daily, limit_usd: 5, window: day}\n",
            "  - {name: other, to: mini, when: {metadata.k: v}, params: {max_tokens: 9}}\n"
            "budgets:\n  - {name: daily, limit_usd: 5, window: day, routes: [other]}\n",
        ),
        ("no budget", "budgets:\n  - {name: daily, limit_usd: 5, window: day}\n", ""),
    ],
)
def test_any_bound_or_no_budget_silences_it(change: str, old: str, new: str) -> None:
    text = POLICY.replace(old, new)
    assert text != POLICY, change
    assert _pr134(text) == [], change


def test_each_model_is_reported_once_with_every_budget_that_covers_it() -> None:
    text = MINI + "  other: {model: acme/other, price: {input_per_mtok: 1, output_per_mtok: 1}}\n"
    text += """\
routes:
  - {name: code, to: [mini, other], when: {metadata.k: v}}
  - {name: default, to: mini}
budgets:
  - {name: daily, limit_usd: 5, window: day}
  - {name: hourly, limit_usd: 1, window: {rolling: 1h}, routes: [code]}
"""
    found = _pr134(text)
    assert len(found) == 2
    assert "models.mini:" in found[0]
    assert "budgets 'daily', 'hourly'" in found[0]
    assert "routes 'code', 'default'" in found[0]
    assert "models.other:" in found[1]
    assert "budgets 'daily', 'hourly'" in found[1]
    assert "route 'code')" in found[1]


def test_a_model_reached_by_a_budget_downgrade_to_a_group_is_covered() -> None:
    text = (
        MODELS
        + """\
groups:
  fallback: {models: [mini]}
routes:
  - name: default
    to: capped
budgets:
  - {name: daily, limit_usd: 5, window: day, on_exceed: {downgrade: fallback}}
"""
    )
    (line,) = _pr134(text)
    assert "models.mini:" in line
    assert "budget 'daily'" in line
    assert "route 'default'" in line


def test_a_downgrade_carries_the_route_params_of_the_call() -> None:
    # calls on 'bounded' keep its max_tokens when downgraded; those on 'open' do not
    base = (
        MODELS
        + """\
routes:
  - {name: open, to: capped, when: {metadata.k: v}}
  - name: bounded
    to: mini
    params: {max_tokens: 100}
budgets:
  - {name: on-open, limit_usd: 5, window: day, routes: [open], on_exceed: {downgrade: bounded}}
  - {name: on-bounded, limit_usd: 5, window: day, routes: [bounded]}
"""
    )
    (line,) = _pr134(base)
    # charged to the route it was downgraded to, and fixed by the params of the one it left
    assert "budget 'on-bounded'" in line
    assert "route 'open'" in line
    assert "'bounded'" not in line.split("params of")[1]
    quiet = base.replace(
        "{name: open, to: capped,", "{name: open, to: capped, params: {max_tokens: 5},"
    )
    assert _pr134(quiet) == []


def test_a_downgrade_to_a_route_no_budget_covers_is_not_guarded() -> None:
    text = (
        MODELS
        + """\
routes:
  - {name: open, to: capped, when: {metadata.k: v}}
  - {name: free, to: mini}
budgets:
  - {name: on-open, limit_usd: 5, window: day, routes: [open], on_exceed: {downgrade: free}}
"""
    )
    assert _pr134(text) == []


@pytest.mark.timeout(60)  # a walk from every route along the chain is quadratic: 1500**2 steps
def test_a_long_downgrade_chain_to_an_unbounded_model_is_checked_in_linear_time() -> None:
    n = 1500
    routes = "".join(
        f"  - {{name: r{i}, to: capped, when: {{metadata.k: v{i}}}}}\n" for i in range(n)
    )
    budgets = "".join(
        f"  - {{name: b{i}, limit_usd: 1, window: day, routes: [r{i}],"
        f" on_exceed: {{downgrade: {f'r{i + 1}' if i < n - 1 else 'd'}}}}}\n"
        for i in range(n)
    )
    budgets += "  - {name: last, limit_usd: 1, window: day, routes: [d]}\n"
    text = MODELS + "routes:\n" + routes + "  - {name: d, to: mini}\nbudgets:\n" + budgets
    (line,) = _pr134(text)
    assert "budget 'last'" in line
    assert "routes 'd', 'r1499', 'r1498', 'r1497', 'r1496' and 1496 more" in line


# --------------------------------------------------------------------------- the call


@pytest.fixture
def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR134_TEST_KEY", "sk-test")
    with FakeProvider() as fp:
        yield fp
    clear_cache()


def _served(fp: FakeProvider) -> str:
    text = POLICY.replace("    price:", "    api_key: ${PR134_TEST_KEY}\n    price:").replace(
        "model: acme/mini-unlisted\n",
        f"model: openai/mini-unlisted\n    api_base: {fp.openai_base}\n",
    )
    return text + "store: {backend: memory}\nreceipts: {sink: none}\n"


MESSAGES = [{"role": "user", "content": "hello there"}]


def test_a_priced_call_is_told_only_to_bound_its_output(provider: FakeProvider) -> None:
    with pytest.raises(BudgetError) as info:
        policyroute.completion(policy=_served(provider), messages=MESSAGES)
    message = str(info.value)
    assert not isinstance(info.value, BudgetExceeded)
    assert "budget(s) 'daily'" in message
    assert "the output of 'mini' is unbounded" in message
    assert "price" not in message
    assert "max_tokens at the call" in message
    assert "`max_output_tokens:`" in message
    assert provider.requests == []


def test_the_same_call_with_max_tokens_goes_through(provider: FakeProvider) -> None:
    provider.set_default("mini-unlisted", Reply(text="hi", usage=Usage(prompt=3, completion=2)))
    response = policyroute.completion(policy=_served(provider), messages=MESSAGES, max_tokens=20)
    assert response.choices[0].message.content == "hi"
    assert len(provider.requests) == 1


def test_a_call_missing_both_is_told_both(provider: FakeProvider) -> None:
    # validation refuses an unpriced model (PR118): a spec built in code can still have one
    spec = load_policy_text(_served(provider)).spec
    mini = dataclasses.replace(spec.models["mini"], price=None)
    unpriced = compile_policy(dataclasses.replace(spec, models={**spec.models, "mini": mini}))
    with pytest.raises(BudgetError) as info:
        policyroute.completion(policy=unpriced, messages=MESSAGES)
    message = str(info.value)
    assert "has no known price, and its output is unbounded" in message
    assert "add `price:` to model 'mini'" in message
    assert "max_tokens at the call" in message
    assert "`max_output_tokens:`" in message
    assert provider.requests == []
