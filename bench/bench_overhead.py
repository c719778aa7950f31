"""Per-call overhead of ChatPolicyRoute over bare litellm and over langchain-litellm.

One fake provider on loopback answers every call. After a warm-up, each round makes one call of
each kind in turn, so that drift in the machine's load hits all of them alike:

- bare ``litellm.acompletion``,
- the same without litellm's own success logging, as policyroute calls it while no callback
  is registered with litellm (:mod:`policyroute.execution.unlogged`): the baseline the layers
  below are measured from, since each of them skips that logging too,
- langchain-litellm's ``ChatLiteLLM.ainvoke``,
- ``ChatPolicyRoute.ainvoke`` with the policy's own accounting (no budgets, receipts off:
  each attempt priced for ``response_metadata``),
- ``ChatPolicyRoute.ainvoke`` (NullAccounting: routing, executor, conversions, LangChain),
- ``ChatPolicyRoute._agenerate``, the same without LangChain's ``ainvoke`` (config, input
  conversion, and the run machinery when something observes the call),
- ``Executor.acomplete`` on a ready ``Request``: routing, admission, the litellm call and
  result bookkeeping, without the LangChain adapter's conversions,

to tell LangChain's share, the adapter's and the executor's apart.

It prints the median time per call of each, their ratios to bare litellm, and the overhead
of each layer (difference of medians, the executor's from unlogged litellm). The machine's
load moves the medians by several percent from run to run; compare ratios within one run.

    /work/venv/bin/python bench/bench_overhead.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("BENCH_API_KEY", "sk-bench")

from _harness import interleave
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_litellm import ChatLiteLLM

from policyroute._lazy import import_litellm
from policyroute.execution.hooks import NullAccounting
from policyroute.execution.unlogged import release, unlogged
from policyroute.langchain import ChatPolicyRoute
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
receipts: {{sink: none}}
"""
TEXT = "say something short"
WARMUP = 30


async def main(rounds: int) -> None:
    litellm = import_litellm()
    litellm.suppress_debug_info = True
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        base = fp.openai_base
        key = os.environ["BENCH_API_KEY"]
        messages = [{"role": "user", "content": TEXT}]
        lc_messages: list[BaseMessage] = [HumanMessage(TEXT)]
        chat_litellm = ChatLiteLLM(
            model="openai/bench-model", api_base=base, api_key=key, max_tokens=64
        )
        policyroute = ChatPolicyRoute(policy=POLICY.format(base=base), accounting=NullAccounting())
        priced = ChatPolicyRoute(policy=POLICY.format(base=base))
        executor = policyroute.executor

        async def bare() -> Any:
            return await litellm.acompletion(
                model="openai/bench-model",
                api_base=base,
                api_key=key,
                messages=messages,
                max_tokens=64,
            )

        async def unlogged_bare() -> Any:
            mark = unlogged({})
            if mark is None:
                raise SystemExit("litellm has callbacks registered: its logging cannot be skipped")
            try:
                return await bare()
            finally:
                release(mark)

        kinds: dict[str, Callable[[], Awaitable[Any]]] = {
            "litellm.acompletion": bare,
            "litellm, unlogged": unlogged_bare,
            "ChatLiteLLM.ainvoke": lambda: chat_litellm.ainvoke(lc_messages),
            "ChatPolicyRoute, priced": lambda: priced.ainvoke(lc_messages),
            "ChatPolicyRoute.ainvoke": lambda: policyroute.ainvoke(lc_messages),
            # The adapter without LangChain's run machinery (callbacks, tracing, result
            # objects): what policyroute itself adds, for attributing the difference.
            "ChatPolicyRoute._agenerate": lambda: policyroute._agenerate(lc_messages),
            "Executor.acomplete": lambda: executor.acomplete(Request(messages=messages)),
        }
        times = await interleave(kinds, rounds=rounds, warmup=WARMUP)

    medians = {name: statistics.median(values) for name, values in times.items()}
    bare_median = medians["litellm.acompletion"]
    print(f"{rounds} rounds after {WARMUP} warm-up rounds, loopback fake provider")
    print("time per call includes the background work it leaves behind (see settle())")
    print("unlogged: without litellm's own success logging, as policyroute calls litellm")
    for name, median in medians.items():
        print(
            f"{name:<26} median {median * 1e3:7.3f} ms   ratio to bare {median / bare_median:5.3f}"
        )
    layers = (
        ("executor (routing, admission, bookkeeping)", "Executor.acomplete", "litellm, unlogged"),
        ("adapter (conversions, results)", "ChatPolicyRoute._agenerate", "Executor.acomplete"),
        ("LangChain ainvoke", "ChatPolicyRoute.ainvoke", "ChatPolicyRoute._agenerate"),
        ("pricing each attempt", "ChatPolicyRoute, priced", "ChatPolicyRoute.ainvoke"),
    )
    print()
    print("overhead per layer (difference of medians)")
    for label, outer, inner in layers:
        print(f"{label:<44} {(medians[outer] - medians[inner]) * 1e6:7.0f} us")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
