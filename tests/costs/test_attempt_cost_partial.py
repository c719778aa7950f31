"""attempt_cost of a stream that broke after the provider reported its input but not its
output: the input as reported, the output counted from the partial answer."""

from __future__ import annotations

from typing import Any

from policyroute.costs.actual import attempt_cost, cost_from_usage
from policyroute.execution.hooks import AttemptOutcome, Usage

from .helpers import candidate

CLAUDE = "anthropic/claude-sonnet-4-5-20250929"
REPORTED = Usage(input_tokens=1500, cache_read_tokens=200, cache_write_tokens=300)
# The partial answer as litellm assembles it: its usage is counted locally.
PARTIAL = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "one two"}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
}


class _Attempt:
    def __init__(self, cand: Any) -> None:
        self.candidate, self.params = cand, {"stream": True}


def _cost(status: str, response: Any) -> tuple[Usage, Any]:
    outcome = AttemptOutcome(
        status=status,  # type: ignore[arg-type]
        response=response,
        usage=REPORTED,
        provider_billed=True,
    )
    return attempt_cost(_Attempt(candidate(CLAUDE)), outcome)  # type: ignore[arg-type]


def test_interrupted_stream_keeps_the_reported_input_and_counts_the_output_received() -> None:
    usage, cost = _cost("interrupted", PARTIAL)
    assert usage == Usage(
        input_tokens=1500, output_tokens=2, cache_read_tokens=200, cache_write_tokens=300
    )
    assert cost == cost_from_usage(usage, candidate(CLAUDE))


def test_cancelled_stream_with_content_is_charged_its_output_too() -> None:
    usage, _ = _cost("cancelled", PARTIAL)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens) == (1500, 2, 300)


def test_a_failure_before_content_is_charged_its_input_only() -> None:
    usage, cost = _cost("error", None)
    assert usage == REPORTED
    assert cost == cost_from_usage(REPORTED, candidate(CLAUDE))
    assert cost.cost > 0
