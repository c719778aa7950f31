"""Many calls, every kind of provider fault, cancellations and abandoned streams at once: the
books must still balance.

Calls go through ``ChatPolicyRoute`` (``ainvoke``, ``astream``, ``invoke``, ``stream``) and
``policyroute.acompletion``/``completion`` on one policy with two budgets (a global one small
enough to refuse calls, one per user), a SQLite or Redis store and JSON-lines receipts. The fake
provider answers with a seeded random mix of good replies, status errors, resets, cut, stalled
and malformed streams, slow first tokens, 400s and hung connections; some callers give up early.

Afterwards, whatever happened to each call:

- every call left exactly one call receipt, and as many attempt receipts as it says it made;
- every receipt line is complete JSON;
- no reservation is left in the store, no budget is over its limit, and what each budget line
  spent is what the attempt receipts charged to it, to the last micro-dollar;
- every failure the callers saw is one of policyroute's typed errors (or their own timeout).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.stores import open_store
from policyroute.errors import PolicyRouteError
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy
from policyroute.testing import FakeProvider, Fault, Reply, Step

pytestmark = pytest.mark.timeout(90)

os.environ.setdefault("CHAOS_TEST_KEY", "sk-chaos")

POLICY = """
policyroute: 1
name: chaos
models:
  a:
    model: openai/chaos-a
    api_base: {base}
    api_key: ${{CHAOS_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: openai/chaos-b
    api_base: {base}
    api_key: ${{CHAOS_TEST_KEY}}
    price: {{input_per_mtok: 500, output_per_mtok: 1000}}
routes:
  - name: default
    to: [a, b]
budgets:
  - name: total
    limit_usd: {limit}
    window: day
  - name: per-user
    per: metadata.user_id
    limit_usd: 0.4
    window: day
store: {store}
receipts: {{sink: jsonl, path: {receipts}}}
defaults:
  max_tokens: 20
  timeout: 1s
  first_token_timeout: 0.5s
  idle_timeout: 0.3s
  retry: {{attempts: 1, backoff: {{initial: 5ms, max: 10ms}}}}
  circuit_breaker: {{failures: 1000, cooldown: 1s}}
"""
USERS = 5
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon")


def _step(rng: random.Random) -> Step:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
    reply = Reply(text=text, chunk_delay=rng.choice((0.0, 0.0, 0.005)))
    makers: tuple[Callable[[], Step], ...] = (
        lambda: reply,
        lambda: reply,
        lambda: reply,
        lambda: reply,
        lambda: Fault.status(429),
        lambda: Fault.status(500),
        lambda: Fault.status(503, retry_after=0),
        lambda: Fault.connection_reset(),
        lambda: Fault.stream_cut(after=rng.randint(0, 4), reply=reply),
        lambda: Fault.malformed_chunk(after=rng.randint(0, 3), reply=reply),
        lambda: Fault.missing_done(reply=reply),
        lambda: Fault.slow_first_token(rng.choice((0.02, 0.8)), reply=reply),
        lambda: Fault.stall(after=rng.randint(0, 3), reply=reply, timeout=rng.choice((0.1, 0.8))),
        lambda: Fault.context_length(),
        lambda: Fault.content_filter(),
        lambda: Fault.bad_request(),
        lambda: Fault.malformed_body(),
        lambda: Fault.no_response(timeout=1.5),
    )
    return rng.choice(makers)()


@dataclass
class Run:
    """One policy on disk over a scripted fake provider, and what the callers saw."""

    policy: CompiledPolicy
    path: Path
    receipts: Path
    accounting: PolicyAccounting
    llm: ChatPolicyRoute
    outcomes: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # call number -> what its caller saw

    @property
    def calls(self) -> int:
        return len(self.seen)

    def saw(self, i: int, kind: str, exc: BaseException | None) -> None:
        outcome = "ok" if exc is None else type(exc).__name__
        self.seen[str(i)] = f"{kind}:{outcome}"
        if exc is None or isinstance(exc, PolicyRouteError):
            self.outcomes[f"{kind}:{outcome}"] += 1
        else:
            self.untyped.append(f"{kind}: {type(exc).__module__}.{type(exc).__name__}: {exc}")


@pytest.fixture(params=["sqlite", "redis"])
def run(request: pytest.FixtureRequest, tmp_path: Path, fp: FakeProvider) -> Iterator[Run]:
    if request.param == "sqlite":
        store = f"{{backend: sqlite, path: {tmp_path / 'budgets.sqlite'}, lease: 30s}}"
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"chaos-{time.time_ns()}"
        store = f"{{backend: redis, url: '{url}', prefix: {prefix}, lease: 30s}}"
    receipts = tmp_path / "receipts.jsonl"
    path = tmp_path / "policy.yaml"
    path.write_text(
        POLICY.format(base=fp.openai_base, limit="0.6", store=store, receipts=receipts),
        encoding="utf-8",
    )
    policy = load_policy(path)
    accounting = PolicyAccounting.from_policy(policy)
    llm = ChatPolicyRoute(policy=policy, accounting=accounting)
    yield Run(policy, path, receipts, accounting, llm)
    accounting.close()


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


def _script(fp: FakeProvider, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    for model in ("chaos-a", "chaos-b"):
        for _ in range(steps):
            fp.script(model, _step(rng))
        fp.set_default(model, Reply(text="the provider's usual answer"))


def _config(i: int) -> RunnableConfig:
    # The tag reaches every receipt: a failed check names the call and what its caller saw.
    return {"metadata": {"user_id": f"u{i % USERS}"}, "tags": [str(i)]}


def _prompt(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {i}"}]


# ---------------------------------------------------------------------------------- checks


def _books_balance(run: Run) -> None:
    assert not run.untyped, run.untyped[:5]
    lines = run.receipts.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line complete JSON
    calls = [r for r in records if r["kind"] == "call"]
    attempts = [r for r in records if r["kind"] == "attempt"]
    receipted = Counter(c["tags"][0] for c in calls)
    assert {i: n for i, n in receipted.items() if n != 1} == {}
    assert {i: kind for i, kind in run.seen.items() if i not in receipted} == {}
    by_call: dict[str, list[int]] = defaultdict(list)
    for a in attempts:
        by_call[a["request_id"]].append(a["attempt"])
    for c in calls:
        numbers = sorted(by_call.pop(c["request_id"], []))
        assert numbers == list(range(1, c["attempts"] + 1)), (run.seen[c["tags"][0]], c)
    assert not by_call, "attempt receipts without a call receipt"

    charged: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for a in attempts:
        for line in a["budgets"]:
            charged[line["budget"], line["scope"]] += Decimal(a["cost"])
    store = open_store(run.policy.spec.store)
    try:
        states = store.scan("", now=time.time())
    finally:
        store.close()
    assert states, "nothing was charged"
    spent: dict[tuple[str, str], Decimal] = {}
    for state in states:
        assert state.reserved == 0, (state, _unsettled(records, run))
        assert state.spent <= state.limit, state
        budget, scope = state.key.split("/")[:2]
        spent[budget, "*" if scope == "%2A" else scope] = state.spent
    assert spent == {k: v for k, v in charged.items() if v or k in spent}
    # The global budget was small enough to refuse calls, and the mix let many through.
    assert run.outcomes.total() == run.calls
    assert sum(n for k, n in run.outcomes.items() if k.endswith(":BudgetExceeded")) > 0
    assert sum(n for k, n in run.outcomes.items() if k.endswith(":ok")) > run.calls // 10


def _unsettled(records: list[dict[str, Any]], run: Run) -> dict[str, str]:
    """The calls with a call receipt whose attempts do not all have a settled receipt."""
    done = {r["tags"][0] for r in records if r["kind"] == "attempt"}
    return {
        r["tags"][0]: run.seen[r["tags"][0]]
        for r in records
        if r["kind"] == "call" and r["attempts"] and r["tags"][0] not in done
    }


# ---------------------------------------------------------------------------------- runs


@pytest.mark.asyncio
async def test_async_calls_under_faults_cancellations_and_abandoned_streams(
    run: Run, fp: FakeProvider
) -> None:
    calls = 160
    _script(fp, seed=20261122, steps=calls)
    rng = random.Random(7)
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        kind = rng.choice(("ainvoke", "astream", "acompletion", "cancelled", "abandoned"))
        async with gate:
            try:
                if kind == "ainvoke":
                    await run.llm.ainvoke([HumanMessage(f"question {i}")], _config(i))
                elif kind == "astream":
                    async for _ in run.llm.astream([HumanMessage(f"question {i}")], _config(i)):
                        pass
                elif kind == "acompletion":
                    await policyroute.acompletion(
                        policy=run.policy,
                        messages=_prompt(i),
                        metadata={"user_id": f"u{i % USERS}"},
                        tags=[str(i)],
                        accounting=run.accounting,
                    )
                elif kind == "cancelled":
                    limit = rng.choice((0.02, 0.05, 0.2))
                    try:
                        await asyncio.wait_for(
                            run.llm.ainvoke([HumanMessage(f"question {i}")], _config(i)), limit
                        )
                    except asyncio.TimeoutError:
                        kind = "cancelled-in-time"
                else:
                    stream = run.llm.astream([HumanMessage(f"question {i}")], _config(i))
                    async for _ in stream:
                        break
                    await stream.aclose()  # type: ignore[attr-defined]
            except Exception as exc:
                run.saw(i, kind, exc)
            else:
                run.saw(i, kind, None)

    await asyncio.gather(*(one(i) for i in range(calls)))
    _books_balance(run)


# A thread run sometimes leaves one socket to the fake provider to the collector (about 1 run
# in 8). Threads whose first calls miss litellm's client cache together each build a sync
# OpenAI client and store it under the same key; the client stored first is replaced without
# being closed, and a connection it kept alive (an error status answer is read to the end)
# is closed by the collector only. No fault path leaks on its own: see
# tests/execution/test_sync_stream_sockets.py. Ignored here until the sync client cache fill
# is serialized; the async runs are checked for sockets.
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
def test_threads_under_faults_and_abandoned_streams(run: Run, fp: FakeProvider) -> None:
    calls = 80
    _script(fp, seed=1122, steps=calls)
    rng = random.Random(11)
    kinds = [rng.choice(("invoke", "stream", "completion", "abandoned")) for _ in range(calls)]

    def one(i: int) -> None:
        kind = kinds[i]
        try:
            if kind == "invoke":
                run.llm.invoke([HumanMessage(f"question {i}")], _config(i))
            elif kind == "stream":
                for _ in run.llm.stream([HumanMessage(f"question {i}")], _config(i)):
                    pass
            elif kind == "completion":
                policyroute.completion(
                    policy=run.policy,
                    messages=_prompt(i),
                    metadata={"user_id": f"u{i % USERS}"},
                    tags=[str(i)],
                    accounting=run.accounting,
                )
            else:
                stream = run.llm.stream([HumanMessage(f"question {i}")], _config(i))
                for _ in stream:
                    break
                stream.close()  # type: ignore[attr-defined]
        except Exception as exc:
            run.saw(i, kind, exc)
        else:
            run.saw(i, kind, None)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(calls)))
    _books_balance(run)
