"""Counting a growing conversation's prompt tokens, turn after turn, as a budget guard does.

An agent resends its whole conversation on every turn. Counted whole (litellm's
``token_counter`` on every call, the baseline), the cost grows with the conversation; counted
with the kept counts of earlier turns (``policyroute.costs.estimate.count_input_tokens``), only
the new messages are tokenized. Both give the same figure (checked here on every turn).

It prints, at several conversation lengths, the time per count of each way (the kept way: the
median of the last few turns' single counts) and their ratio, plus the cost of a short prompt
counted again (the whole list found in the kept counts), and of a prompt with an agent's
30 tools, rebuilt as new objects for every call as an agent framework does (the kept way
keys them by their JSON text).

    /work/venv/bin/python bench/bench_token_count.py [TURNS]
"""

from __future__ import annotations

import copy
import functools
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from policyroute._lazy import import_litellm
from policyroute.costs.estimate import count_input_tokens

MODEL = "gpt-4o-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the documentation",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]
REPEATS = 5
WORDS = "the quick brown fox jumps over the lazy dog while the agent plans its next step "


def agent_tools(count: int) -> list[dict[str, Any]]:
    """``count`` tools with a few typed parameters each, as an agent's tool belt."""
    return [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": f"Does task {i} and returns what it found.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "what to look for"},
                        "limit": {"type": "integer", "description": "at most this many"},
                        "mode": {"type": "string", "enum": ["fast", "thorough"]},
                        "filters": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "field": {"type": "string"},
                                    "value": {"type": "string"},
                                },
                            },
                        },
                    },
                    "required": ["query"],
                },
            },
        }
        for i in range(count)
    ]


def turn_messages(i: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"turn {i}: " + WORDS * 12},
        {"role": "assistant", "content": f"answer {i}: " + WORDS * 12},
    ]


def timed(fn: Any) -> tuple[float, int]:
    samples = []
    result = 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main(turns: int) -> None:
    litellm = import_litellm()
    whole_counter = litellm.token_counter
    conversation: list[dict[str, Any]] = [{"role": "system", "content": "You are an agent."}]
    marks = {10, 25, 50, 100, 200, turns}
    print(f"{MODEL}, one tool, ~200 tokens per message, {REPEATS} repeats per point")
    print(f"{'turn':>5} {'tokens':>7} {'whole (us)':>11} {'kept (us)':>10} {'ratio':>7}")
    kept_times: list[float] = []
    for i in range(1, turns + 1):
        conversation += turn_messages(i)
        snapshot = list(conversation)
        # One count per turn, as an agent makes: the previous turn's list is kept.
        start = time.perf_counter()
        kept = count_input_tokens(MODEL, snapshot, TOOLS)
        kept_times.append(time.perf_counter() - start)
        if i in marks:
            whole_time, whole = timed(
                functools.partial(count_input_tokens, MODEL, snapshot, TOOLS, whole_counter)
            )
            assert whole == kept, (whole, kept)
            kept_time = statistics.median(kept_times[-REPEATS:])
            print(
                f"{i:>5} {whole:>7} {whole_time * 1e6:>11.0f} {kept_time * 1e6:>10.0f}"
                f" {whole_time / kept_time:>7.1f}"
            )
    short = [{"role": "user", "content": "say something short"}]
    count_input_tokens(MODEL, short, None)
    again, _ = timed(lambda: count_input_tokens(MODEL, short, None))
    whole_short, _ = timed(lambda: count_input_tokens(MODEL, short, None, whole_counter))
    print(
        f"short prompt counted again: whole {whole_short * 1e6:.0f} us, kept {again * 1e6:.1f} us"
    )
    tools = agent_tools(30)
    ask = [{"role": "user", "content": "which tool fits?"}]
    count_input_tokens(MODEL, ask, copy.deepcopy(tools))
    rebuilt = iter([copy.deepcopy(tools) for _ in range(REPEATS)])
    kept_tools, kept = timed(lambda: count_input_tokens(MODEL, ask, next(rebuilt)))
    whole_tools, whole = timed(lambda: count_input_tokens(MODEL, ask, tools, whole_counter))
    assert whole == kept, (whole, kept)
    print(
        f"30 tools, a new list each call: whole {whole_tools * 1e6:.0f} us,"
        f" kept {kept_tools * 1e6:.0f} us ({whole_tools / kept_tools:.1f}x)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
