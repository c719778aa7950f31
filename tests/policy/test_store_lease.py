"""A store lease of zero is refused at validation (PR013), as timeouts are.

A reservation's lease is how long it holds its budget before another call may reclaim it, as
a crashed process's: at zero, every stream's reservation had lapsed before its first chunk,
each call logged that it was "charged its worst case (raise store.lease)", and nothing had
said so when the policy validated.
"""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

POLICY = """policyroute: 1
name: lease
models:
  mini: {{model: openai/gpt-4o-mini, max_output_tokens: 100}}
routes:
  - {{name: default, to: mini}}
store: {{backend: memory, lease: {lease}}}
"""


def _diagnostics(lease: str) -> list[tuple[str, str]]:
    result = validate_text(POLICY.format(lease=lease), environ={})
    return [(d.code, d.path) for d in result.diagnostics]


@pytest.mark.parametrize("lease", ["0", "0s", "0ms", "0.0", "-1"])
def test_a_lease_of_zero_is_refused(lease: str) -> None:
    assert _diagnostics(lease) == [("PR013", "store.lease")]


@pytest.mark.parametrize("lease", ["1ms", "0.5", "300s", "3650d"])
def test_a_lease_above_zero_validates(lease: str) -> None:
    assert _diagnostics(lease) == []
