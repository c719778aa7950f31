"""Per-call overhead of ChatPolicyRoute with budgets and receipts on, against bare litellm.

One fake provider on loopback answers every call, as ``openai/gpt-4o-mini`` (a model litellm
prices, so settling goes through litellm's price map as in production). The policy has a
per-user daily budget and a global monthly budget in a SQLite store, and writes JSON-lines
receipts; both live in a temporary directory, which is the working directory during the run
(``default_accounting`` resolves the policy's relative paths against it).

After a warm-up, each round makes one call of each kind in turn, so that drift in the
machine's load hits all of them alike:

- bare ``litellm.acompletion``,
- ``ChatPolicyRoute.ainvoke`` with ``NullAccounting`` (routing, executor, LangChain),
- ``ChatPolicyRoute.ainvoke`` with the policy's guard and receipts,
- ``policyroute.acompletion`` with the policy's guard and receipts,
- ``litellm.acompletion`` without litellm's own success logging, as policyroute calls it,
- the same with only the store and sink work of a guarded call around it: a reservation on
  two lines and its settle in a SQLite store of its own, and two receipt lines (a real
  receipt, re-encoded) appended by a ``JsonlSink`` of its own. Nothing else of policyroute
  runs: this is the floor the guard and receipts cannot go below as they are built, two
  write transactions and two appends per call.

The last two run in a second pass, interleaved with bare ``litellm.acompletion`` again, so
that the first four keep the company they are measured in.

It prints the median time per call of each and their ratios to bare litellm, then the median
time of each accounting step per call, measured in a separate instrumented pass (timers
perturb the calls they time, so they are kept out of the first table).

    /work/venv/bin/python bench/bench_end_to_end.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("BENCH_API_KEY", "sk-bench")

from _harness import interleave, settle
from langchain_core.messages import HumanMessage

import policyroute
from policyroute._lazy import import_litellm
from policyroute.accounting import PolicyAccounting, default_accounting
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.costs.jsonl_sink import JsonlSink
from policyroute.execution.hooks import NullAccounting
from policyroute.execution.unlogged import unlogged_call
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply

MODEL = "openai/gpt-4o-mini"
POLICY = """
policyroute: 1
name: bench-e2e
models:
  mini:
    model: {model}
    api_base: {base}
    api_key: ${{BENCH_API_KEY}}
routes:
  - name: default
    to: mini
budgets:
  - name: per-user-daily
    per: metadata.user_id
    limit_usd: 100000
    window: day
  - name: global-monthly
    limit_usd: 1000000
    window: month
defaults:
  max_tokens: 64
store:
  backend: sqlite
  path: budgets.sqlite3
receipts:
  sink: jsonl
  path: receipts/{{date}}.jsonl
"""
TEXT = "say something short"
METADATA = {"user_id": "u-bench"}
WARMUP = 30


def instrument(acct: PolicyAccounting, spent: dict[str, list[float]]) -> None:
    """Wrap the accounting's steps on this instance with timers that append to ``spent``."""

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def sync(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name].append(time.perf_counter() - start)

        @functools.wraps(fn)
        async def coro(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                spent[name].append(time.perf_counter() - start)

        return coro if asyncio.iscoroutinefunction(fn) else sync

    guard: Any = acct.guard
    guard.aadmit = timed("reserve (guard.aadmit)", guard.aadmit)
    guard.asettle = timed("settle (guard.asettle)", guard.asettle)
    acct._price = timed("price (attempt_cost)", acct._price)  # type: ignore[method-assign]
    acct._attempt_record = timed("attempt receipt (build)", acct._attempt_record)  # type: ignore[method-assign]
    acct._call_record = timed("call receipt (build)", acct._call_record)  # type: ignore[method-assign]
    for sink in acct.sinks:
        sink.write = timed(f"{type(sink).__name__}.write", sink.write)  # type: ignore[method-assign]


async def main(rounds: int) -> None:
    litellm = import_litellm()
    litellm.suppress_debug_info = True
    with tempfile.TemporaryDirectory() as tmp, FakeProvider() as fp:
        os.chdir(tmp)
        fp.set_default("*", Reply(text="ok"))
        base = fp.openai_base
        key = os.environ["BENCH_API_KEY"]
        messages = [{"role": "user", "content": TEXT}]
        lc_messages = [HumanMessage(TEXT)]
        policy = load_policy_text(POLICY.format(model=MODEL, base=base))
        null = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
        guarded = ChatPolicyRoute(policy=policy)
        acct = default_accounting(policy)
        if not isinstance(acct, PolicyAccounting) or acct.guard is None or not acct.sinks:
            raise SystemExit("the policy's accounting has no guard or no receipt sink")
        config: Any = {"metadata": METADATA}

        async def bare() -> Any:
            return await litellm.acompletion(
                model=MODEL, api_base=base, api_key=key, messages=messages, max_tokens=64
            )

        async def completion() -> Any:
            return await policyroute.acompletion(
                policy=policy, messages=messages, metadata=METADATA
            )

        async def unlogged() -> Any:
            with unlogged_call({}):
                return await bare()

        # One guarded call for a real receipt, which the floor's sink writes again.
        await guarded.ainvoke(lc_messages, config)
        first = next(Path(tmp, "receipts").iterdir())
        receipt = json.loads(first.read_text(encoding="utf-8").splitlines()[0])
        floor_store = SQLiteStore(Path(tmp, "floor.sqlite3"))
        floor_sink = JsonlSink(str(Path(tmp, "floor.jsonl")))
        worst = Decimal("0.0001")
        limits = (Decimal(100000), Decimal(1000000))

        async def floor() -> Any:
            now = time.time()
            rid = os.urandom(16).hex()
            lines = [
                ReserveLine(f"floor-{i}/u-bench/w", limit, worst, now + 86400)
                for i, limit in enumerate(limits)
            ]
            await floor_store.areserve(lines, reservation_id=rid, lease_seconds=300, now=now)
            try:
                answer = await unlogged()
            finally:
                await floor_store.asettle(rid, Decimal("0.000002"), now=time.time())
            floor_sink.write(receipt)
            floor_sink.write(receipt)
            return answer

        kinds: dict[str, Callable[[], Awaitable[Any]]] = {
            "litellm.acompletion": bare,
            "ChatPolicyRoute.ainvoke (null)": lambda: null.ainvoke(lc_messages, config),
            "ChatPolicyRoute.ainvoke (guard+receipts)": lambda: guarded.ainvoke(
                lc_messages, config
            ),
            "policyroute.acompletion (guard+receipts)": completion,
        }
        times = await interleave(kinds, rounds=rounds, warmup=WARMUP)
        # A pass of its own, with its own bare baseline: the calls above keep their company.
        floor_kinds: dict[str, Callable[[], Awaitable[Any]]] = {
            "litellm.acompletion": bare,
            "litellm.acompletion, unlogged": unlogged,
            "unlogged + 2 store transactions + 2 lines": floor,
        }
        floor_times = await interleave(floor_kinds, rounds=rounds, warmup=WARMUP)

        spent: dict[str, list[float]] = defaultdict(list)
        instrument(acct, spent)
        for _ in range(min(rounds, 200)):
            await guarded.ainvoke(lc_messages, config)
            await settle()
        receipts = sum(1 for path in Path(tmp, "receipts").iterdir() for _ in path.open())
        floor_store.close()
        floor_sink.close()
        os.chdir("/")

    print(f"{rounds} rounds after {WARMUP} warm-up rounds, loopback fake provider, {MODEL}")
    print("per-user daily + global monthly budget (SQLite), JSONL receipts")
    print()
    table(times)
    print()
    print("the floor of the guard and receipts: their store and sink work alone (a second pass)")
    table(floor_times)
    print()
    print(f"accounting steps of ChatPolicyRoute.ainvoke (guard+receipts), {receipts} receipts")
    print(f"{'step':<42} {'calls/call':>10} {'median us':>12}")
    calls = min(rounds, 200)
    for name, values in spent.items():
        print(f"{name:<42} {len(values) / calls:10.1f} {statistics.median(values) * 1e6:12.1f}")


def table(times: dict[str, list[float]]) -> None:
    """Each kind's median and its ratio to the pass's bare ``litellm.acompletion``."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    bare_median = medians["litellm.acompletion"]
    print(f"{'call':<42} {'median ms':>10} {'overhead us':>12} {'ratio':>7}")
    for name, median in medians.items():
        print(
            f"{name:<42} {median * 1e3:10.3f} {(median - bare_median) * 1e6:12.0f}"
            f" {median / bare_median:7.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
