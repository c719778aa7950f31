"""Token counts and other integers written with a decimal point (``max_tokens: 100.0``).

JSON Schema counts ``100.0`` as an integer, so the schema and the validator accept it, and so
must everything after them: the worst-case cost multiplies the output bound by a ``Decimal``
price, which a float cannot, and ``policyroute explain`` (and every budgeted call) failed with
a TypeError on such a policy.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute.explain import explain
from policyroute.policy.loader import load_policy
from policyroute.policy.validate import validate_text

POLICY = """\
policyroute: 1
name: floats
models:
  mini:
    model: openai/gpt-4o-mini
    context_window: 1000.0
    max_output_tokens: 500.0
    max_image_tokens: 100.0
    params: {max_tokens: 50.0, seed: 3.0}
routes:
  - {name: default, to: mini, params: {max_tokens: 20.0}, require: {min_context_window: 10.0}}
budgets:
  - {name: b, limit_usd: 1, window: day, on_exceed: {clamp_max_tokens: {min_tokens: 5.0}}}
defaults:
  max_tokens: 100.0
  retry: {attempts: 1.0}
  circuit_breaker: {failures: 2.0}
"""


def test_every_integer_of_the_spec_is_an_int() -> None:
    spec = validate_text(POLICY, environ={}).spec
    assert spec is not None
    (model,) = spec.models.values()
    (route,) = spec.routes
    values = [
        model.context_window,
        model.max_output_tokens,
        model.max_image_tokens,
        model.params["max_tokens"],
        model.params["seed"],
        route.params["max_tokens"],
        route.require.min_context_window,
        spec.budgets[0].on_exceed.min_tokens,
        spec.defaults.max_tokens,
        spec.defaults.retry.attempts,
        spec.defaults.circuit_breaker.failures,
    ]
    assert values == [1000, 500, 100, 50, 3, 20, 10, 5, 100, 1, 2]
    assert all(type(v) is int for v in values)


@pytest.mark.parametrize("where", ["route", "defaults"])
def test_explain_prices_a_call_bounded_by_a_whole_number_float(where: str) -> None:
    text = POLICY if where == "route" else POLICY.replace(", params: {max_tokens: 20.0}", "")
    ex = explain(load_policy(text), {"messages": "hi"}, token_counter=lambda _: 10)
    (candidate,) = ex.candidates
    out = 20 if where == "route" else 50
    assert candidate.output_tokens == out
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens
    assert candidate.worst_case_cost == Decimal("0.00000015") * 10 + Decimal("0.0000006") * out
