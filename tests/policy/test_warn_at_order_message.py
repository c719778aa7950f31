"""PR123 names the two warn_at fractions out of order, so a repeated fraction (which is in
order, just not strictly) does not leave the reader looking for a descending pair."""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

POLICY = """policyroute: 1
name: warn
models:
  mini: {{model: openai/gpt-4o-mini}}
routes:
  - {{name: default, to: mini}}
budgets:
  - {{name: b, limit_usd: 1, window: day, warn_at: {warn_at}}}
"""


@pytest.mark.parametrize(
    ("warn_at", "message"),
    [
        ("[0.5, 0.5]", "warn_at fractions must be strictly ascending, but 0.5 follows 0.5"),
        (
            "[0.25, 0.9, 0.5, 1]",
            "warn_at fractions must be strictly ascending, but 0.5 follows 0.9",
        ),
    ],
)
def test_pr123_names_the_pair_out_of_order(warn_at: str, message: str) -> None:
    (d,) = validate_text(POLICY.format(warn_at=warn_at), environ={}).diagnostics
    assert (d.code, d.path, d.message, d.hint) == (
        "PR123",
        "budgets[0].warn_at",
        message,
        "list each fraction once, smallest first",
    )
