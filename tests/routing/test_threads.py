"""One CompiledPolicy routing from many threads gives each thread the answer it would alone."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from policyroute.policy.compile import compile_policy
from policyroute.request import Request
from policyroute.routing import DeploymentStatsTracker

from .helpers import fc, group, model, policy, route


def test_many_threads_share_one_policy() -> None:
    routes = [route(f"t{i}", ("a", "g"), fc("metadata.tenant", "eq", f"t{i}")) for i in range(40)]
    routes.append(route("long", "b", fc("input_tokens", "gt", 50)))
    routes.append(route("default", "w"))
    compiled = compile_policy(
        policy(
            routes,
            models=[model("a"), model("b", price=("0.1", "0.1")), model("c", price=("3", "3"))],
            groups=[group("g", ("c", "b"), "cheapest"), group("w", ("a", "b", "c"), "weighted")],
        ),
        rng=random.Random(3),
    )
    stats = DeploymentStatsTracker()

    def expected(i: int) -> str:
        return f"t{i % 45}" if i % 45 < 40 else ("long" if i % 2 else "default")

    def work(seed: int) -> list[str]:
        errors = []
        for i in range(seed, seed + 400):
            tenant = f"t{i % 45}"
            words = 200 if i % 2 else 1
            request = Request(
                messages=[{"role": "user", "content": "w " * words}], metadata={"tenant": tenant}
            )
            with stats.track("a"):
                decision = compiled.route(
                    request,
                    stats=stats,
                    token_counter=lambda r: len(r.messages[0]["content"]) // 2,
                    trace=bool(i % 3),
                )
            want = expected(i)
            if decision.route != want:
                errors.append(f"{i}: {decision.route} != {want}")
            if want.startswith("t") and [c.alias for c in decision.candidates] != ["a", "b", "c"]:
                errors.append(f"{i}: candidates {decision.candidates}")
            if want == "default" and sorted(c.alias for c in decision.candidates) != [
                "a",
                "b",
                "c",
            ]:
                errors.append(f"{i}: weighted candidates {decision.candidates}")
        return errors

    barrier = threading.Barrier(8)

    def start(seed: int) -> list[str]:
        barrier.wait()
        return work(seed)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(start, range(0, 8000, 1000)))
    assert [e for errors in results for e in errors] == []
    assert stats.in_flight("a") == 0
