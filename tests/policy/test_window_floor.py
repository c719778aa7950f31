"""A rolling window shorter than 1ms is refused (PR141).

The schema takes any window above zero, but a rolling window is kept as 60 buckets numbered
``now // (window / 60)``: at ``1e-300`` seconds that number is past a float's range, and every
call the budget covers failed with an OverflowError after the policy had validated.
"""

from __future__ import annotations

import pytest

from policyroute.budgets.windows import window_for
from policyroute.policy.validate import validate_text

POLICY = """policyroute: 1
name: windows
models:
  mini: {{model: openai/gpt-4o-mini, max_output_tokens: 100}}
routes:
  - {{name: default, to: mini}}
budgets:
  - {{name: b, limit_usd: 1, window: {window}}}
"""


def _diagnostics(window: str) -> list[tuple[str, str]]:
    result = validate_text(POLICY.format(window=window), environ={})
    return [(d.code, d.path) for d in result.diagnostics]


@pytest.mark.parametrize("window", ["1e-300", "0.0009", "0.0000001ms", "0.0001s", "0.5ms"])
def test_a_rolling_window_under_a_millisecond_is_refused(window: str) -> None:
    assert _diagnostics(window) == [("PR141", "budgets[0].window")]


@pytest.mark.parametrize("window", ["1ms", "0.001", "0.001s", "6h", "day", "call", "3650d"])
def test_a_window_of_a_millisecond_or_more_validates(window: str) -> None:
    assert _diagnostics(window) == []


def test_the_shortest_window_numbers_its_buckets() -> None:
    spec = validate_text(POLICY.format(window="1ms"), environ={}).spec
    assert spec is not None
    window = window_for(spec.budgets[0].window, 1_900_000_000.0)
    assert window.bucket_seconds is not None
    assert int(1_900_000_000.0 // window.bucket_seconds) > 0


def test_a_timeout_under_a_millisecond_still_validates() -> None:
    text = POLICY.format(window="day") + "defaults: {timeout: 0.001ms}\n"
    assert validate_text(text, environ={}).diagnostics == ()
