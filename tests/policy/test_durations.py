"""Durations that cannot work are refused: zero-length windows and timeouts, and values so large
that a timeout overflows (every call fails) or a window never ends."""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

HEAD = "policyroute: 1\nname: t\nmodels:\n  m: {model: openai/gpt-4o-mini%s}\n"
ROUTES = "routes: [{name: d, to: m}]\n"


def _diagnostics(*, model: str = "", rest: str = "") -> list[tuple[str, str]]:
    result = validate_text(HEAD % model + ROUTES + rest, environ={})
    return [(d.code, d.path) for d in result.diagnostics]


@pytest.mark.parametrize("window", ["0s", "0ms", "0.0h", "00d"])
def test_a_rolling_window_of_zero_length_is_refused(window: str) -> None:
    # it used to pass validation, then every call raised ValueError from the budget guard
    budget = f"budgets: [{{name: b, limit_usd: 1, window: {window}}}]\n"
    assert _diagnostics(rest=budget) == [("PR013", "budgets[0].window")]


@pytest.mark.parametrize("key", ["timeout", "first_token_timeout", "idle_timeout"])
@pytest.mark.parametrize("value", ["0", "0.0", "0s", "0ms", "0.000d"])
def test_a_timeout_of_zero_is_refused(key: str, value: str) -> None:
    # a zero timeout failed every call (a connection error on each attempt)
    assert _diagnostics(rest=f"defaults: {{{key}: {value}}}\n") == [("PR013", f"defaults.{key}")]


def test_a_model_timeout_of_zero_is_refused() -> None:
    assert _diagnostics(model=", timeout: 0s") == [("PR013", "models.m.timeout")]


@pytest.mark.parametrize(
    "value", ["1e10", "9300000000", "99999999999s", "3651d", "1" + "0" * 400 + "d"]
)
@pytest.mark.parametrize(
    "key",
    [
        "timeout",
        "first_token_timeout",
        "idle_timeout",
        "retry.retry_after_max",
        "retry.backoff.max",
        "circuit_breaker.cooldown",
    ],
)
def test_a_duration_beyond_ten_years_is_refused(key: str, value: str) -> None:
    # past threading.TIMEOUT_MAX (~9.2e9 s) a timeout made every call a server_error
    head, _, last = key.rpartition(".")
    tree = f"{{{last}: {value}}}"
    for part in reversed(head.split(".") if head else []):
        tree = f"{{{part}: {tree}}}"
    assert _diagnostics(rest=f"defaults: {tree}\n") == [("PR013", f"defaults.{key}")]


@pytest.mark.parametrize("window", ["99999999d", "315360001s"])
def test_a_rolling_window_beyond_ten_years_is_refused(window: str) -> None:
    budget = f"budgets: [{{name: b, limit_usd: 1, window: {window}}}]\n"
    assert _diagnostics(rest=budget) == [("PR013", "budgets[0].window")]


def test_the_store_lease_is_bounded_too() -> None:
    store = "store: {backend: memory, lease: 4000d}\n"
    assert _diagnostics(rest=store) == [("PR013", "store.lease")]


@pytest.mark.parametrize("value", ["3650d", "315360000", "1ms", "1", "600s"])
def test_durations_up_to_ten_years_are_accepted(value: str) -> None:
    window = value if value[-1].isalpha() else f"{value}s"
    budget = f"budgets: [{{name: b, limit_usd: 1, window: {window}}}]\n"
    rest = f"defaults: {{timeout: {value}}}\n{budget}"
    assert _diagnostics(rest=rest) == []
