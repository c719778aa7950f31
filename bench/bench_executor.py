"""Per-call overhead of the executor over bare litellm, on a loopback fake provider.

Runs ``N`` sequential calls of each kind after a warm-up, interleaving bare
``litellm.acompletion`` and ``Executor.acomplete`` (NullAccounting) so that drift in the
machine's load affects both alike, and prints the medians and their ratio.

    /work/venv/bin/python bench/bench_executor.py [N]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("BENCH_API_KEY", "sk-bench")

from policyroute._lazy import import_litellm
from policyroute.execution.executor import Executor
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

POLICY = """
policyroute: 1
name: bench
models:
  fast:
    model: openai/bench-model
    api_base: {base}
    api_key: ${{BENCH_API_KEY}}
    price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
routes:
  - name: default
    to: fast
defaults:
  max_tokens: 64
"""
MESSAGES = [{"role": "user", "content": "say something short"}]


async def main(n: int) -> None:
    litellm = import_litellm()
    litellm.suppress_debug_info = True
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        policy = load_policy_text(POLICY.format(base=fp.openai_base))
        executor = Executor(policy)

        async def bare() -> None:
            await litellm.acompletion(
                model="openai/bench-model",
                api_base=fp.openai_base,
                api_key="sk-bench",
                messages=MESSAGES,
                max_tokens=64,
                timeout=600.0,
                num_retries=0,
                max_retries=0,
            )

        async def routed() -> None:
            await executor.acomplete(Request(messages=MESSAGES))

        for _ in range(30):  # warm-up: connections, litellm's caches
            await bare()
            await routed()
        times: dict[str, list[float]] = {"bare": [], "executor": []}
        for i in range(n):
            pair = ((bare, "bare"), (routed, "executor"))
            for fn, name in pair if i % 2 == 0 else pair[::-1]:
                start = time.perf_counter()
                await fn()
                times[name].append(time.perf_counter() - start)
    bare_ms = statistics.median(times["bare"]) * 1000
    exec_ms = statistics.median(times["executor"]) * 1000
    print(f"calls per kind: {n}")
    print(f"bare litellm.acompletion  median {bare_ms:.3f} ms")
    print(f"Executor.acomplete        median {exec_ms:.3f} ms")
    print(f"ratio executor / bare     {exec_ms / bare_ms:.3f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
