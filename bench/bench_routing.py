"""Decision latency of ``CompiledPolicy.route(request, trace=False)`` as routes grow.

Run: ``python bench/bench_routing.py [--decisions 20000]``. Prints a table of p50/p99 in µs per
decision for policies of 10, 100 and 1,000 routes, and the growth of p50 from 10 to 1,000.

The policies look like real multi-tenant ones: mostly exact matches on metadata
(``metadata.tenant: t123``, some with an extra numeric or ``in`` test), four global rules that
cannot be indexed (numeric comparisons and regexes) and a catch-all last. Requests hit routes
spread over the whole list, the unindexable ones and the catch-all. Each decision gets a fresh
``Request``, so lazily computed facts are really computed; only ``route()`` is timed.

Targets: p50 <= 10 µs and p99 <= 50 µs at 100 routes; p50 at 1,000 routes <= 2x p50 at 10.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from decimal import Decimal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from policyroute.policy.compile import CompiledPolicy, compile_policy
from policyroute.policy.model import (
    AllOf,
    Condition,
    FactCondition,
    GroupSpec,
    ModelSpec,
    PolicySpec,
    PriceSpec,
    RouteSpec,
    TargetSpec,
    Test,
)
from policyroute.request import Request

MODELS = {
    "mini": ModelSpec(alias="mini", model="openai/gpt-4o-mini"),
    "haiku": ModelSpec(alias="haiku", model="anthropic/claude-haiku-4-5"),
    "sonnet": ModelSpec(alias="sonnet", model="anthropic/claude-sonnet-4-5-20250929"),
    "local": ModelSpec(
        alias="local",
        model="ollama/llama3.1",
        price=PriceSpec(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0)),
        context_window=8192,
    ),
}
GROUPS = {
    "cheap": GroupSpec(name="cheap", strategy="cheapest", models=("mini", "haiku", "local")),
}
TARGETS = (("sonnet", "mini"), ("cheap",), ("haiku",), ("mini", "cheap"))

# the rules no index can help with, placed at fixed fractions of the route list
GLOBAL_RULES: tuple[tuple[float, Condition], ...] = (
    (0.1, FactCondition("metadata.priority", (Test("gte", 9),))),
    (0.35, FactCondition("metadata.region", (Test("regex", r"^eu-"),))),
    (0.6, FactCondition("params.max_tokens", (Test("gt", 32000),))),
    (0.85, FactCondition("last_user_message", (Test("regex", r"(?i)^translate\b"),))),
)


def _tenant_rule(i: int) -> Condition:
    exact = FactCondition("metadata.tenant", (Test("eq", f"t{i}"),))
    if i % 7 == 3:
        return AllOf((exact, FactCondition("message_count", (Test("lte", 20),))))
    if i % 5 == 1:
        return AllOf((exact, FactCondition("metadata.task", (Test("in", ("code", "review")),))))
    return exact


def make_policy(n_routes: int) -> tuple[CompiledPolicy, list[int]]:
    """A policy of ``n_routes`` routes and the tenant numbers its exact routes match."""
    n_exact = n_routes - 1 - len(GLOBAL_RULES)
    slots: list[Condition | None] = [_tenant_rule(i) for i in range(n_exact)]
    for offset, (fraction, cond) in enumerate(GLOBAL_RULES):
        slots.insert(int(fraction * n_exact) + offset, cond)
    slots.append(None)
    routes = tuple(
        RouteSpec(name=f"r{i}", when=cond, to=TargetSpec(TARGETS[i % len(TARGETS)]))
        for i, cond in enumerate(slots)
    )
    spec = PolicySpec(
        name=f"bench-{n_routes}", version=1, models=MODELS, groups=GROUPS, routes=routes
    )
    return compile_policy(spec), list(range(n_exact))


def make_requests(tenants: list[int], count: int, seed: int = 7) -> list[Request]:
    """Fresh requests: most for tenants across the list, some for global rules or none."""
    rng = random.Random(seed)
    out: list[Request] = []
    for _ in range(count):
        roll = rng.random()
        metadata: dict[str, object] = {"user_id": f"u{rng.randrange(1000)}"}
        params: dict[str, object] = {"temperature": 0.2}
        text = "Summarise the ticket below in two sentences, please."
        if roll < 0.7:
            i = rng.choice(tenants)
            metadata["tenant"] = f"t{i}"
            metadata["task"] = rng.choice(("code", "chat"))
        elif roll < 0.75:
            metadata["priority"] = 9
        elif roll < 0.8:
            metadata["region"] = "eu-west-1"
        elif roll < 0.85:
            params["max_tokens"] = 64000
        elif roll < 0.9:
            text = "Translate this to French: good morning"
        else:
            metadata["tenant"] = "unknown"  # falls through to the catch-all
        out.append(
            Request(
                messages=[
                    {"role": "system", "content": "You are a helpful support assistant."},
                    {"role": "user", "content": text},
                ],
                params=params,
                metadata=metadata,
            )
        )
    return out


def measure(policy: CompiledPolicy, requests: list[Request]) -> list[int]:
    """Nanoseconds per ``route`` call, one timing per request."""
    route = policy.route
    clock = time.perf_counter_ns
    timings = []
    gc.collect()
    gc.disable()  # a collection landing inside one timed call is noise, not routing cost
    try:
        for request in requests:
            start = clock()
            route(request, trace=False)
            timings.append(clock() - start)
    finally:
        gc.enable()
    return timings


def percentile(sorted_ns: list[int], q: float) -> float:
    """The q-quantile in µs of already sorted nanosecond timings."""
    index = min(len(sorted_ns) - 1, round(q * (len(sorted_ns) - 1)))
    return sorted_ns[index] / 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, {args.decisions} decisions per policy\n")
    print(f"{'routes':>7} {'indexed':>8} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8}")
    p50s: dict[int, float] = {}
    ok = True
    for n in (10, 100, 1000):
        policy, tenants = make_policy(n)
        measure(policy, make_requests(tenants, args.warmup, seed=1))
        timings = sorted(measure(policy, make_requests(tenants, args.decisions)))
        p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
        mean = statistics.fmean(timings) / 1000.0
        p50s[n] = p50
        indexed = policy.indexed_facts
        print(f"{n:>7} {indexed:>8} {p50:>8.2f} {p99:>8.2f} {mean:>8.2f}")
        if n == 100:
            ok = ok and p50 <= 10 and p99 <= 50
    growth = p50s[1000] / p50s[10]
    ok = ok and growth <= 2
    print(f"\np50 growth 1000/10 routes: {growth:.2f}x")
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
