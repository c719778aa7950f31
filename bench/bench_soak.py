"""Soak: does policyroute hold on to anything per call under long, production-like use?

One fake provider on loopback serves two deployments of one route (``a`` falls over to
``b``); the policy has a per-user daily budget and a global daily budget in a SQLite store
and writes JSON-lines receipts, all in a temporary directory (the working directory during
the run, as in ``bench_end_to_end``). ``a`` answers from a seeded queue in which about a third
of the steps are faults: 429 with ``Retry-After: 0``, 500, connection resets, streams cut or
sending a malformed chunk, first tokens slower than the policy's ``first_token_timeout``; so
retries, fallback, the circuit breaker and partial billing all run. ``b`` always answers.

Each round runs, at once, two calls of each kind: ``ChatPolicyRoute.ainvoke``; ``astream``
consumed to its end; ``astream`` abandoned after its first chunk, closed with ``aclose`` or
dropped without it; ``policyroute.acompletion``, streamed or not, some streams abandoned; a
task cancelled after a few milliseconds; and from worker threads ``invoke``, ``stream`` (some
abandoned) or ``asyncio.run(policyroute.acompletion(...))``, a new event loop per call. Some
calls ask for so many tokens that the per-user budget downgrades them to ``b`` or refuses them.

Every K rounds, with no call in flight and after a garbage collection, it samples the
process (RSS, tracemalloc's traced size, open file descriptors, threads, asyncio tasks), the
entries of policyroute's per-call registries (accounting tallies, threshold-event watches,
downgrade records, in-flight counts, breakers and their probes, loading policies, loop
clean-ups, default accountings), litellm's logging backlog, the bounded caches, the live
instances of policyroute's own classes and the store's open reservations.
It prints the samples, then each measure's growth per 1,000 calls over the first and the
second half of the run: warm-up shows in the first half; a leak grows in both. Finally it
checks the books: one call receipt per call, attempt receipts numbered 1..n, no reservation
left, each budget line's spend equal to what the attempt receipts charged to it.

Exit status 1 when a book does not balance or a per-call registry (or fd, thread, task or
live-object count) grew for good over the second half: by more than its allowance per 1,000
calls, by at least ``MIN_GROWTH``, with its lowest late samples above every sample of the
first half.

    /work/venv/bin/python bench/bench_soak.py [ROUNDS] [SAMPLE_EVERY] [SEED] [RELOAD_EVERY]
    SOAK_TRACEMALLOC=0 /work/venv/bin/python bench/bench_soak.py 150 10

RELOAD_EVERY (default 0: never) rewrites the policy file every that many rounds with another
global limit, as a service whose policy is edited while it runs; each version gets the
default accounting of its own (``default accountings`` counts them).

RSS is not judged: it grows by steps of a few MB for the first ~2,000 calls (glibc's heaps and
free lists, 16 arenas on two cores, as the thread pools and litellm's logging threads fill) and
0.2 to 0.6 MB per 1,000 calls after that with tracemalloc off, heap in use outside any Python
object count or registry measured here.

Defaults: 50 rounds after 10 of warm-up, 18 calls each (about 90 s on two busy cores, most of
it tracemalloc's cost), a sample every 5 rounds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import linecache
import logging
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("SOAK_API_KEY", "sk-soak")

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

import policyroute
from policyroute import ChatPolicyRoute
from policyroute._lazy import import_litellm
from policyroute.errors import PolicyRouteError
from policyroute.testing import FakeProvider, Fault, Reply, Step

POLICY = """
policyroute: 1
name: soak
models:
  a:
    model: openai/soak-a
    api_base: {base}
    api_key: ${{SOAK_API_KEY}}
    price: {{input_per_mtok: 10, output_per_mtok: 20}}
  b:
    model: openai/soak-b
    api_base: {base}
    api_key: ${{SOAK_API_KEY}}
    price: {{input_per_mtok: 5, output_per_mtok: 10}}
groups:
  cheap: {{strategy: ordered, models: [b]}}
routes:
  - name: default
    to: [a, b]
budgets:
  - name: per-user
    per: metadata.user_id
    limit_usd: 5
    window: day
    on_exceed: {{downgrade: cheap}}
  - name: total
    limit_usd: {total}
    window: day
store: {{backend: sqlite, path: budgets.sqlite3, lease: 30s}}
receipts:
  sink: jsonl
  path: "receipts/{{date}}.jsonl"
defaults:
  max_tokens: 24
  timeout: 2s
  first_token_timeout: 0.3s
  idle_timeout: 0.5s
  retry: {{attempts: 1, backoff: {{initial: 1ms, max: 2ms}}}}
  circuit_breaker: {{failures: 4, cooldown: 0.3s}}
"""
USERS = 8
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")
THREAD_KINDS = ("invoke", "stream", "stream-abandoned", "asyncio.run plain", "asyncio.run stream")
WIDTH = 2  # calls of each kind at once in a round
QUEUE = 24  # scripted steps kept waiting for deployment ``a``
WARMUP_SAMPLES = 2  # samples before tracemalloc starts and the measured run begins
# Worst cases over the per-user budget of 5 USD: on ``a`` 8 USD, downgraded to ``b`` 4 USD;
# 20 USD and 10 USD, refused.
DOWNGRADED_MAX_TOKENS = 400_000
REFUSED_MAX_TOKENS = 1_000_000

# Per-call registries: entries for calls in flight only, so with none in flight they must
# stay at their warm-up level. Allowance: entries per 1,000 calls over the second half.
REGISTRY_ALLOWANCE = 0.2
OBJECT_ALLOWANCE = 2.0  # live policyroute objects per 1,000 calls
# And by at least this much over the second half: one more entry or object once (the breaker
# of a deployment first failing late in the run) is a step, not a leak.
MIN_GROWTH = 3
# tracemalloc slows the calls two- to threefold and its own tables grow the RSS; set
# SOAK_TRACEMALLOC=0 for longer runs that read RSS without it.
TRACE = os.environ.get("SOAK_TRACEMALLOC", "1") != "0"


@dataclass
class Soak:
    """The run's policy, model, books and samples."""

    path: Path
    llm: ChatPolicyRoute
    pool: ThreadPoolExecutor
    rng: random.Random
    calls: int = 0
    started: float = field(default_factory=time.perf_counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # call tag -> what its caller saw
    samples: list[dict[str, float]] = field(default_factory=list)
    objects: list[Counter[str]] = field(default_factory=list)

    def tag(self) -> str:
        self.calls += 1
        return str(self.calls)

    def saw(self, tag: str, kind: str, exc: BaseException | None) -> None:
        outcome = "ok" if exc is None else type(exc).__name__
        self.seen[tag] = f"{kind}:{outcome}"
        self.outcomes[f"{kind}:{outcome}"] += 1
        typed = isinstance(exc, PolicyRouteError | asyncio.CancelledError)
        if exc is not None and not typed:
            self.untyped.append(f"{kind}: {type(exc).__module__}.{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------------------ workload


def _fault(rng: random.Random) -> Step:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 10)))
    reply = Reply(text=text)
    makers: tuple[Callable[[], Step], ...] = (
        lambda: Fault.status(429, retry_after=0),
        lambda: Fault.status(500),
        lambda: Fault.connection_reset(),
        lambda: Fault.stream_cut(after=rng.randint(0, 3), reply=reply),
        lambda: Fault.slow_first_token(0.5, reply=reply),
        lambda: Fault.malformed_chunk(after=rng.randint(0, 2), reply=reply),
    )
    return rng.choice(makers)() if rng.random() < 0.35 else reply


def _top_up(fp: FakeProvider, rng: random.Random) -> None:
    """Keep ``QUEUE`` steps scripted for ``a``: bounded, so the fake provider's own memory
    stays flat and does not read as policyroute's."""
    missing = QUEUE - fp.pending("soak-a")
    if missing > 0:
        fp.script("soak-a", *(_fault(rng) for _ in range(missing)))


def _config(tag: str, rng: random.Random) -> RunnableConfig:
    return {"metadata": {"user_id": f"u{rng.randrange(USERS)}"}, "tags": [tag]}


def _kwargs(rng: random.Random) -> dict[str, Any]:
    draw = rng.random()
    if draw < 0.02:
        return {"max_tokens": REFUSED_MAX_TOKENS}
    return {"max_tokens": DOWNGRADED_MAX_TOKENS} if draw < 0.04 else {}


async def _guarded(soak: Soak, tag: str, kind: str, work: Any) -> None:
    try:
        await work
    except BaseException as exc:  # every outcome is booked, then judged
        soak.saw(tag, kind, exc)
        if not isinstance(exc, Exception | asyncio.CancelledError):
            raise
    else:
        soak.saw(tag, kind, None)


async def _astream(soak: Soak, tag: str, abandon: bool, close: bool = True) -> None:
    config = _config(tag, soak.rng)
    stream = soak.llm.astream([HumanMessage(f"question {tag}")], config, **_kwargs(soak.rng))
    try:
        async for _ in stream:
            if abandon:
                break
    finally:
        if close:
            await stream.aclose()  # type: ignore[attr-defined]
        # else dropped: the loop's async generator finalizer closes it


async def _acompletion(soak: Soak, tag: str, mode: str) -> None:
    config = _config(tag, soak.rng)
    answer = await policyroute.acompletion(
        policy=str(soak.path),
        messages=[{"role": "user", "content": f"question {tag}"}],
        metadata=config["metadata"],
        tags=[tag],
        stream=mode != "plain",
        **_kwargs(soak.rng),
    )
    if mode == "plain":
        return
    try:
        async for _ in answer:
            if mode == "abandoned":
                break
    finally:
        await answer.aclose()


def _sync_call(soak: Soak, tag: str, kind: str, config: RunnableConfig) -> None:
    messages = [HumanMessage(f"question {tag}")]
    if kind.startswith("asyncio.run"):
        # Sync code calling the async API, one event loop per call (scripts, task workers).
        asyncio.run(_acompletion(soak, tag, kind.rpartition(" ")[2]))
        return
    if kind == "invoke":
        soak.llm.invoke(messages, config)
        return
    stream = soak.llm.stream(messages, config)
    try:
        for _ in stream:
            if kind == "stream-abandoned":
                break
    finally:
        stream.close()  # type: ignore[attr-defined]


async def _cancelled(soak: Soak, tag: str) -> None:
    config = _config(tag, soak.rng)
    if soak.rng.random() < 0.5:
        call: Any = soak.llm.ainvoke([HumanMessage(f"question {tag}")], config)
    else:
        call = _astream(soak, tag, abandon=False)
    task = asyncio.ensure_future(call)
    # At least one step of the loop: the call has started (a task cancelled before its first
    # step never ran, and owes no receipt).
    await asyncio.sleep(soak.rng.choice((0.0, 0.002, 0.01, 0.05)))
    task.cancel()
    await task


async def one_round(soak: Soak, fp: FakeProvider) -> None:
    """``WIDTH`` calls of each kind, all at once."""
    _top_up(fp, soak.rng)
    await asyncio.gather(*(_calls(soak) for _ in range(WIDTH)))


async def _calls(soak: Soak) -> None:
    rng = soak.rng
    loop = asyncio.get_running_loop()
    jobs = []

    def add(kind: str, make: Callable[[str], Any]) -> None:
        tag = soak.tag()
        jobs.append(_guarded(soak, tag, kind, make(tag)))

    add(
        "ainvoke",
        lambda t: soak.llm.ainvoke(
            [HumanMessage(f"question {t}")], _config(t, rng), **_kwargs(rng)
        ),
    )
    add("astream", lambda t: _astream(soak, t, abandon=False))
    add("astream-abandoned", lambda t: _astream(soak, t, abandon=True))
    add("astream-dropped", lambda t: _astream(soak, t, abandon=True, close=False))
    mode = rng.choice(("plain", "plain", "stream", "abandoned"))
    add(f"acompletion-{mode}", lambda t: _acompletion(soak, t, mode))
    add("cancelled", lambda t: _cancelled(soak, t))
    for _ in range(3):
        kind = rng.choice(THREAD_KINDS)
        add(
            kind,
            lambda t, k=kind: loop.run_in_executor(  # type: ignore[misc]
                soak.pool, _sync_call, soak, t, k, _config(t, rng)
            ),
        )
    await asyncio.gather(*jobs)


# ------------------------------------------------------------------------------ measures


def _rss_kb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


def _len(obj: Any, *names: str) -> float:
    """``len`` of the attribute chain ``names`` of ``obj``; NaN if it is not there (the code
    under test changed shape)."""
    for name in names:
        obj = getattr(obj, name, None)
        if obj is None:
            return float("nan")
    try:
        return float(len(obj))
    except TypeError:
        return float("nan")


def _module(name: str) -> Any:
    return sys.modules.get(name)


def registries(soak: Soak) -> dict[str, float]:
    """Entries of the per-call registries: they hold a call while it runs, and no longer."""
    executor = soak.llm.executor
    acct: Any = executor.accounting
    guard = getattr(acct, "guard", None)
    return {
        "accounting._tallies": _len(acct, "_tallies"),
        "events._pending": _len(_module("policyroute.langchain_.events"), "_pending"),
        "guard._downgrades": _len(guard, "_downgrades"),
        "stats._in_flight": _len(executor.stats, "_in_flight"),
        "shared_cache._loading": _len(_module("policyroute._shared_cache"), "_loading"),
        "loop_cleanup._closers": _len(_module("policyroute.execution.loop_cleanup"), "_closers"),
        "breaker probes held": float(_probes_held(executor.breakers)),
        "default accountings": _len(_module("policyroute.accounting"), "_cache"),
        "unwritten receipts": _len(acct, "unwritten"),
        "open reservations": float(_open_reservations()),
        "litellm logging backlog": float(_logging_backlog()),
        "litellm closer backlog": float(_closer_backlog()),
    }


def _probes_held(breakers: Any) -> int:
    """Half-open probes taken: with no call in flight, one held is a permit never given back,
    which keeps its deployment skipped for good."""
    table = getattr(breakers, "_breakers", {})
    return sum(1 for b in list(table.values()) if getattr(b, "probe", None) is not None)


def _logging_backlog() -> int:
    """litellm's logging work queued, or dequeued and never started (see
    ``policyroute.execution.loop_cleanup``)."""
    module = _module("litellm.litellm_core_utils.logging_worker")
    worker = getattr(module, "GLOBAL_LOGGING_WORKER", None)
    queue = getattr(worker, "_queue", None)
    unstarted = getattr(worker, "_unstarted_dequeued_tasks", None)
    queued = queue.qsize() if queue is not None else 0
    return queued + (len(unstarted()) if callable(unstarted) else 0)


def _closer_backlog() -> int:
    """Evicted clients litellm's closer has queued: one queued for a loop that ended is never
    closed nor dropped (see ``policyroute.execution.loop_cleanup._disown``)."""
    module = _module("litellm.caching.evicted_client_closer")
    closer = getattr(module, "default_evicted_client_closer", None)
    return int(getattr(closer, "pending_count", 0))


def caches(soak: Soak) -> dict[str, float]:
    """Entries of the bounded caches: they fill up to their bound, then stay."""
    shared = _module("policyroute._shared_cache")
    litellm = import_litellm()
    return {
        "shared_cache._policies": _len(shared, "_policies"),
        "shared_cache._executors": _len(shared, "_executors"),
        "stats._seen (per deployment)": _len(soak.llm.executor.stats, "_seen"),
        "breakers._breakers (per deployment)": _len(soak.llm.executor.breakers, "_breakers"),
        "token counts (estimate._COUNTS)": _len(
            _module("policyroute.costs.estimate"), "_COUNTS", "_entries"
        ),
        "receipts._ISO_SECONDS": _len(_module("policyroute.costs.receipts"), "_ISO_SECONDS"),
        "windows._CALENDAR_CACHE": _len(_module("policyroute.budgets.windows"), "_CALENDAR_CACHE"),
        "litellm client cache": _len(litellm, "in_memory_llm_clients_cache", "cache_dict"),
    }


def _open_reservations() -> int:
    with sqlite3.connect("budgets.sqlite3") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM open_reservations").fetchone()
    db.close()
    return int(count)


# Allocations left out of "net traced KB": the token-count cache, a bounded LRU (its entries
# are reported among the caches) that a run of unique prompts fills for its first thousand
# calls; linecache's source lines, read once per file when a traceback is formatted (litellm
# logs its exceptions); and this benchmark's own books.
_NOT_NET = (
    tracemalloc.Filter(False, "*/policyroute/costs/token_cache.py"),
    tracemalloc.Filter(False, linecache.__file__),
    tracemalloc.Filter(False, __file__),
    tracemalloc.Filter(False, tracemalloc.__file__),
)


def _net_traced() -> float:
    snapshot = tracemalloc.take_snapshot().filter_traces(_NOT_NET)
    return sum(stat.size for stat in snapshot.statistics("filename")) / 1024


def _litellm_pool(thread: threading.Thread) -> bool:
    return thread.name.startswith("litellm-logging")


def live_objects() -> Counter[str]:
    """Live instances of policyroute's own classes (the OpenStreams, calls and attempts a leak
    would keep), by class."""
    found: Counter[str] = Counter()
    for obj in gc.get_objects():
        module = type(obj).__dict__.get("__module__")
        if (
            isinstance(module, str)
            and module.startswith("policyroute")
            and not module.startswith("policyroute.testing")
        ):
            found[type(obj).__qualname__] += 1
    return found


async def sample(soak: Soak) -> None:
    for _ in range(20):  # let the callbacks litellm schedules after a call run
        await asyncio.sleep(0)
    gc.collect()
    objects = live_objects()
    tracing = tracemalloc.is_tracing()
    traced = tracemalloc.get_traced_memory()[0] / 1024 if tracing else 0.0
    net = _net_traced() if tracing else 0.0
    row = {
        "calls": float(soak.calls),
        "seconds": time.perf_counter() - soak.started,
        "rss KB": _rss_kb(),
        "traced KB": traced,
        "net traced KB": net,
        "tracemalloc's own KB": tracemalloc.get_tracemalloc_memory() / 1024,
        "fds": float(len(os.listdir("/proc/self/fd"))),
        # litellm's logging pool starts threads as bursts need them, up to 100: not ours.
        "threads": float(sum(1 for t in threading.enumerate() if not _litellm_pool(t))),
        "litellm logging threads": float(sum(1 for t in threading.enumerate() if _litellm_pool(t))),
        "tasks": float(len(asyncio.all_tasks())),
        "pr objects": float(sum(objects.values())),
    }
    row.update(registries(soak))
    row.update(caches(soak))
    soak.samples.append(row)
    soak.objects.append(objects)
    if len(soak.samples) == 1:
        print(" ".join(f"{name:>13}" for name in SHOWN))
    print(" ".join(f"{row[name]:13.0f}" for name in SHOWN), flush=True)


SHOWN = ("calls", "seconds", "rss KB", "traced KB", "net traced KB", "fds", "threads", "tasks")


# ------------------------------------------------------------------------------ books


def books(soak: Soak) -> list[str]:
    """What does not balance: receipts against calls, spend against attempt receipts."""
    problems = [f"untyped error: {u}" for u in soak.untyped[:5]]
    records = [
        json.loads(line)
        for path in sorted(Path("receipts").iterdir())
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    calls = [r for r in records if r["kind"] == "call"]
    attempts = [r for r in records if r["kind"] == "attempt"]
    receipted = Counter(c["tags"][0] for c in calls)
    twice = {tag: n for tag, n in receipted.items() if n != 1}
    if twice:
        problems.append(f"calls with more than one call receipt: {list(twice.items())[:5]}")
    missing = {tag: kind for tag, kind in soak.seen.items() if tag not in receipted}
    if missing:
        problems.append(f"{len(missing)} calls without a call receipt: {list(missing.items())[:5]}")
    numbers: dict[str, list[int]] = defaultdict(list)
    for a in attempts:
        numbers[a["request_id"]].append(a["attempt"])
    for c in calls:
        got = sorted(numbers.pop(c["request_id"], []))
        if got != list(range(1, c["attempts"] + 1)):
            problems.append(f"call {c['tags'][0]} says {c['attempts']} attempts, receipts {got}")
    if numbers:
        problems.append(f"{len(numbers)} attempt receipts without a call receipt")
    charged: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for a in attempts:
        for line in a["budgets"]:
            charged[line["budget"], line["scope"]] += Decimal(a["cost"])
    store = soak.llm.executor.accounting.guard.store  # type: ignore[attr-defined]
    spent: dict[tuple[str, str], Decimal] = {}
    for state in store.scan("", now=time.time()):
        if state.reserved:
            problems.append(f"reservation left: {state}")
        budget, scope = state.key.split("/")[:2]
        spent[budget, "*" if scope == "%2A" else scope] = state.spent
    expected = {k: v for k, v in charged.items() if v or k in spent}
    if spent != expected:
        problems.append(f"spend {spent} != attempt receipts {expected}")
    if _open_reservations():
        problems.append(f"{_open_reservations()} open reservations left")
    return problems


# ------------------------------------------------------------------------------ report


def _growth(samples: list[dict[str, float]], name: str) -> tuple[float, float]:
    """Growth per 1,000 calls over the first and the second half of the samples."""
    first, mid, last = samples[0], samples[len(samples) // 2], samples[-1]

    def rate(a: dict[str, float], b: dict[str, float]) -> float:
        calls = b["calls"] - a["calls"]
        return (b[name] - a[name]) / calls * 1000 if calls else float("nan")

    return rate(first, mid), rate(mid, last)


def _steady(samples: list[dict[str, float]], name: str) -> bool:
    """Whether ``name`` rose for good: the lowest of the last quarter of the samples is above
    the highest of the first half. Counts that come and go (litellm's logging threads,
    sockets on their way to being closed) do not pass; a leak does."""
    k = max(1, len(samples) // 4)
    return min(row[name] for row in samples[-k:]) > max(
        row[name] for row in samples[: len(samples) // 2 + 1]
    )


def report(soak: Soak, seconds: float) -> list[str]:
    """Print the samples and the growth table; return the measures that leak."""
    samples = soak.samples[WARMUP_SAMPLES:]
    print(f"{soak.calls} calls in {seconds:.0f} s ({soak.calls / seconds:.0f}/s)")
    print("outcomes:", ", ".join(f"{k} {n}" for k, n in sorted(soak.outcomes.items())))
    print()
    print(f"{'measure':<34} {'first':>9} {'last':>9} {'1st half/1k':>12} {'2nd half/1k':>12}")
    leaks: list[str] = []
    registry_names = set(registries(soak)) | {"fds", "threads", "tasks"}
    for name in soak.samples[0]:
        if name in ("calls", "seconds"):
            continue
        early, late = _growth(samples, name)
        allowance = (
            REGISTRY_ALLOWANCE
            if name in registry_names
            else OBJECT_ALLOWANCE
            if name == "pr objects"
            else None
        )
        flag = ""
        grew = samples[-1][name] - samples[len(samples) // 2][name]
        checked = allowance is not None and late > allowance and grew >= MIN_GROWTH
        if checked and _steady(samples, name):
            flag = "  LEAK"
            leaks.append(name)
        print(
            f"{name:<34} {samples[0][name]:9.0f} {samples[-1][name]:9.0f}"
            f" {early:12.2f} {late:12.2f}{flag}"
        )
    mid, last = soak.objects[WARMUP_SAMPLES + len(samples) // 2], soak.objects[-1]
    grown = {k: last[k] - mid[k] for k in last if last[k] - mid[k] > 0}
    if grown:
        print()
        print("policyroute classes with more live instances at the end than mid-run:")
        for name, more in sorted(grown.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {name:<40} +{more} (now {last[name]})")
    return leaks


def _top_allocations(before: tracemalloc.Snapshot) -> None:
    after = tracemalloc.take_snapshot()
    print()
    print("largest tracemalloc growth over the second half, by line:")
    after, before = after.filter_traces(_NOT_NET), before.filter_traces(_NOT_NET)
    for stat in after.compare_to(before, "lineno")[:10]:
        print(f"  {stat.size_diff / 1024:9.1f} KB {stat.count_diff:+7d}  {stat.traceback[0]}")


async def main(rounds: int, every: int, seed: int, reload_every: int = 0) -> int:
    litellm = import_litellm()
    litellm.suppress_debug_info = True
    # asyncio warns of every write to a connection a fault or an abandoned stream cut.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeProvider(max_recorded=64) as fp,
        ThreadPoolExecutor(2 * WIDTH, thread_name_prefix="soak") as pool,
    ):
        os.chdir(tmp)
        fp.set_default("*", Reply(text="the usual answer"))
        path = Path(tmp, "policy.yaml")
        path.write_text(POLICY.format(base=fp.openai_base, total=100000), encoding="utf-8")
        soak = Soak(path, ChatPolicyRoute(policy=str(path)), pool, random.Random(seed))
        start = time.perf_counter()
        mid_snapshot: tracemalloc.Snapshot | None = None
        total = rounds + WARMUP_SAMPLES * every
        for i in range(1, total + 1):
            if reload_every and i % reload_every == 0:
                # A policy edited while the service runs (here the global limit goes up).
                text = POLICY.format(base=fp.openai_base, total=100000 + i)
                path.write_text(text, encoding="utf-8")
            await one_round(soak, fp)
            if i % every == 0:
                if len(soak.samples) == WARMUP_SAMPLES - 1 and TRACE:
                    tracemalloc.start()
                await sample(soak)
                if len(soak.samples) == WARMUP_SAMPLES + rounds // every // 2 + 1 and TRACE:
                    mid_snapshot = tracemalloc.take_snapshot()
        seconds = time.perf_counter() - start
        leaks = report(soak, seconds)
        if mid_snapshot is not None:
            _top_allocations(mid_snapshot)
        tracemalloc.stop()
        problems = books(soak)
        os.chdir("/")
    print()
    for problem in problems:
        print("BOOKS:", problem)
    for leak in leaks:
        print("LEAK:", leak)
    if not problems:
        print(f"books balance: {len(soak.seen)} calls, one call receipt each, no reservation left")
    return 1 if problems or leaks else 0


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:5]]
    rounds, every, seed, reload_every = (args + [50, 5, 20261122, 0][len(args) :])[:4]
    sys.exit(asyncio.run(main(rounds, every, seed, reload_every)))
