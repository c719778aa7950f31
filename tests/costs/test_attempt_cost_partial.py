"""attempt_cost of a stream that broke before the provider's usage arrived: what was
reported as reported, the rest counted locally, and the cost says it was."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from policyroute.costs.actual import attempt_cost, cost_from_usage, count_locally
from policyroute.execution.hooks import AttemptOutcome, Usage

from .helpers import candidate

CLAUDE = "anthropic/claude-sonnet-4-5-20250929"
REPORTED = Usage(input_tokens=1500, cache_read_tokens=200, cache_write_tokens=300)
# The partial answer as litellm assembles it: its usage is counted locally.
PARTIAL = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "one two"}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
}


MESSAGES = [{"role": "user", "content": "hello there"}]


class _Attempt:
    def __init__(self, cand: Any) -> None:
        self.candidate, self.params = cand, {"stream": True}
        self.call = SimpleNamespace(request=SimpleNamespace(messages=MESSAGES))


def _cost(
    status: str, response: Any, usage: Usage | None = REPORTED, error: Any = None
) -> tuple[Usage, Any]:
    outcome = AttemptOutcome(
        status=status,  # type: ignore[arg-type]
        response=response,
        usage=usage,
        error=error,
        provider_billed=True,
    )
    return attempt_cost(_Attempt(candidate(CLAUDE)), outcome)  # type: ignore[arg-type]


def test_interrupted_stream_keeps_the_reported_input_and_counts_the_output_received() -> None:
    usage, cost = _cost("interrupted", PARTIAL)
    assert usage == Usage(
        input_tokens=1500, output_tokens=2, cache_read_tokens=200, cache_write_tokens=300
    )
    assert cost.usage_estimated
    assert cost.cost == cost_from_usage(usage, candidate(CLAUDE)).cost


def test_cancelled_stream_with_content_is_charged_its_output_too() -> None:
    usage, _ = _cost("cancelled", PARTIAL)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens) == (1500, 2, 300)


def test_a_failure_before_content_is_charged_its_input_only() -> None:
    usage, cost = _cost("error", None)
    assert usage == REPORTED
    assert cost == cost_from_usage(REPORTED, candidate(CLAUDE))
    assert cost.cost > 0
    assert not cost.usage_estimated


def test_a_partial_answer_without_any_reported_usage_is_estimated() -> None:
    usage, cost = _cost("interrupted", PARTIAL, usage=None)
    assert (usage.input_tokens, usage.output_tokens) == (11, 2)
    assert cost.usage_estimated


def test_a_prompt_counted_locally_is_estimated() -> None:
    usage, cost = _cost("error", None, usage=None)
    assert usage.input_tokens == count_locally(CLAUDE, messages=MESSAGES) > 0
    assert cost.usage_estimated


def test_text_received_counted_locally_is_estimated() -> None:
    error = SimpleNamespace(partial_text="one two three")
    usage, cost = _cost("interrupted", None, usage=Usage(input_tokens=40), error=error)
    assert usage.output_tokens == count_locally(CLAUDE, text="one two three") > 0
    assert cost.usage_estimated


def test_an_answer_is_not_estimated() -> None:
    answer = {**PARTIAL, "usage": {"prompt_tokens": 1500, "completion_tokens": 9}}
    usage, cost = _cost("ok", answer, usage=None)
    assert usage == Usage(input_tokens=1500, output_tokens=9)
    assert not cost.usage_estimated


def test_a_cut_stream_that_asked_for_priority_is_charged_the_priority_rates() -> None:
    # OpenAI bills a priority call at its priority rates (gpt-4o: $4.25/M in, $17/M out
    # against $2.50/M and $10/M), as litellm prices its answer; so is what it billed of a
    # stream cut before its usage arrived.
    cand = candidate("openai/gpt-4o")
    attempt = _Attempt(cand)
    attempt.params = {"stream": True, "service_tier": "priority"}
    reported = Usage(input_tokens=1000)
    outcome = AttemptOutcome(
        status="interrupted", response=PARTIAL, usage=reported, provider_billed=True
    )
    usage, cost = attempt_cost(attempt, outcome)  # type: ignore[arg-type]
    assert (usage.input_tokens, usage.output_tokens) == (1000, 2)
    assert cost.cost == Decimal("0.004284")
    # Failed after the provider billed the input: the input at the priority rate.
    failed = AttemptOutcome(status="error", response=None, usage=reported, provider_billed=True)
    assert attempt_cost(attempt, failed)[1].cost == Decimal("0.00425")  # type: ignore[arg-type]


def _streamed_answer(tier: str | None) -> Any:
    import litellm

    answer = litellm.ModelResponse(
        model="gpt-4o",
        choices=[{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
        usage={"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
    )
    if tier is not None:
        answer.service_tier = tier
    return answer


def test_a_whole_stream_that_asked_for_priority_is_charged_the_tier_it_was_served() -> None:
    # An assembled stream need not name its tier (litellm keeps it only when a chunk did):
    # priced at the tier asked for, as litellm prices the answers it returns; at the tier it
    # names when it names one (OpenAI answers "default" when priority had no room).
    attempt = _Attempt(candidate("openai/gpt-4o"))
    attempt.params = {"stream": True, "service_tier": "priority"}
    usage = Usage(input_tokens=1000, output_tokens=1000)

    def charged(answer: Any) -> Decimal:
        outcome = AttemptOutcome(status="ok", response=answer, usage=usage, provider_billed=True)
        return attempt_cost(attempt, outcome)[1].cost  # type: ignore[arg-type]

    assert charged(_streamed_answer(None)) == Decimal("0.02125")
    assert charged(_streamed_answer("default")) == Decimal("0.0125")
    # An answer priced from its usage (a policy price or repaired counts) likewise.
    broken = _streamed_answer(None)
    broken.usage.completion_tokens = -5
    assert charged(broken) == Decimal("0.00425")
