"""Receipt throughput: JSONL lines per second, one process and eight processes on one file.

Also times one whole ``PolicyAccounting.settle`` (litellm's exact price, the receipt, the
JSONL append) in one process.

Each writer appends realistic attempt receipts (about 1 KB of JSON each, built the way
``PolicyAccounting`` builds them) through :class:`policyroute.costs.sinks.JsonlSink`: one
``os.write`` per line on an ``O_APPEND`` descriptor. Afterwards every line is parsed and
counted, so a torn line would show up as a failure, not as a faster figure.

Run:
    python bench/bench_receipts.py [--records 20000] [--writers 8] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from policyroute.costs.receipts import SCHEMA_VERSION, format_usd
from policyroute.costs.sinks import JsonlSink


def realistic_record(writer: int, seq: int) -> dict[str, Any]:
    """An attempt receipt as PolicyAccounting writes it (values vary per record)."""
    cost = Decimal(seq % 997) * Decimal("0.000003141")
    return {
        "schema_version": SCHEMA_VERSION,
        "request_id": f"{writer:02d}{seq:030x}",
        "run_id": "3f1c9a7e-2b4d-4e8f-9a1b-7c6d5e4f3a2b",
        "policy": "support-assistant",
        "policy_hash": "5d41402abc4b2a76b9719d911017c592" * 2,
        "route": "code" if seq % 3 else "default",
        "user": f"user-{seq % 500}",
        "metadata": {"user_id": f"user-{seq % 500}"},
        "tags": ["prod", "support"],
        "litellm_version": "1.80.0",
        "kind": "attempt",
        "ts": "2026-01-02T03:04:05.678+00:00",
        "started_at": "2026-01-02T03:04:04.866+00:00",
        "litellm_call_id": "chatcmpl-9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "attempt": 1 + seq % 2,
        "retry": seq % 2,
        "deployment": "sonnet",
        "via": "strong",
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "provider": "anthropic",
        "input_tokens": 4512 + seq % 100,
        "cache_read_tokens": 3000,
        "cache_write_tokens": 1500,
        "output_tokens": 250 + seq % 50,
        "reasoning_tokens": 0,
        "estimated_cost": "0.075000",
        "cost": format_usd(cost),
        "price_source": "litellm",
        "latency_ms": 812.5,
        "ttft_ms": 240.125,
        "status": "ok",
        "error_class": None,
        "error": None,
        "provider_billed": True,
        "budgets": [
            {
                "budget": "per-user-daily",
                "scope": f"user-{seq % 500}",
                "window": "day",
                "limit": "2.000000",
                "spent": format_usd(cost * 10),
                "reserved": "0.000000",
                "remaining": format_usd(Decimal(2) - cost * 10),
                "thresholds_crossed": [],
            }
        ],
        "threshold_crossed": False,
    }


def _write(path: str, writer: int, count: int, ready: Any, start: Any, ends: Any) -> None:
    records = [realistic_record(writer, i) for i in range(count)]
    sink = JsonlSink(path)
    ready.wait()  # every writer has imported and built its records
    start.wait()
    for record in records:
        sink.write(record)
    ends.put(time.perf_counter())
    sink.close()


def _verify(path: Path, expected: int) -> int:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "file does not end with a newline"
    for line in lines[:-1]:
        json.loads(line)
    assert len(lines) - 1 == expected, f"{len(lines) - 1} lines, expected {expected}"
    return len(lines[-2]) + 1


def run(writers: int, per_writer: int, directory: Path) -> tuple[float, int]:
    """Lines per second with ``writers`` processes each appending ``per_writer`` records.

    The clock runs from the moment all writers are released to the moment the last one has
    written its last line (process start-up and exit are not counted).
    """
    path = directory / f"bench-{writers}.jsonl"
    path.unlink(missing_ok=True)
    ctx = mp.get_context("spawn")
    ready, start, ends = ctx.Barrier(writers + 1), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_write, args=(str(path), n, per_writer, ready, start, ends))
        for n in range(writers)
    ]
    for p in procs:
        p.start()
    ready.wait()
    t0 = time.perf_counter()
    start.set()
    finished = [ends.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(finished) - t0
    assert all(p.exitcode == 0 for p in procs)
    line_bytes = _verify(path, writers * per_writer)
    path.unlink()
    return writers * per_writer / elapsed, line_bytes


def settle_us(directory: Path, rounds: int = 2000) -> float:
    """Microseconds per ``PolicyAccounting.settle`` of an answered gpt-4o-mini attempt."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import warnings

    warnings.simplefilter("ignore")  # litellm's pydantic warnings on first use
    from policyroute._lazy import import_litellm
    from policyroute.accounting import PolicyAccounting
    from policyroute.execution.hooks import AttemptInfo, AttemptOutcome, CallInfo
    from policyroute.policy.compile import compile_policy
    from policyroute.policy.model import ModelSpec, PolicySpec, RouteSpec, TargetSpec
    from policyroute.request import Request

    litellm = import_litellm()
    spec = PolicySpec(
        name="bench",
        version=1,
        models={"mini": ModelSpec(alias="mini", model="openai/gpt-4o-mini")},
        groups={},
        routes=(RouteSpec(name="default", to=TargetSpec(("mini",))),),
    )
    policy = compile_policy(spec)
    acct = PolicyAccounting(policy, guard=None, sinks=[JsonlSink(directory / "settle.jsonl")])
    request = Request(messages=[{"role": "user", "content": "hi"}], metadata={"user_id": "u1"})
    call = CallInfo(request=request, policy=policy, decision=policy.route(request))
    attempt = AttemptInfo(call=call, candidate=call.decision.candidates[0], params={}, number=1)
    usage = litellm.Usage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200)
    outcome = AttemptOutcome(
        status="ok",
        response=litellm.ModelResponse(model="gpt-4o-mini", usage=usage),
        provider_billed=True,
    )
    admission = acct.admit(attempt)
    for _ in range(50):
        acct.settle(attempt, admission, outcome)
    t0 = time.perf_counter()
    for _ in range(rounds):
        acct.settle(attempt, admission, outcome)
    elapsed = time.perf_counter() - t0
    acct.close()
    return elapsed / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per writer")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        single, size = run(1, args.records, Path(tmp))
        multi, _ = run(args.writers, args.records, Path(tmp))
        settle = settle_us(Path(tmp))
    print(f"record size: {size} bytes per line (CPU cores: {os.cpu_count()})")
    print(f"1 writer process:   {single:>10,.0f} lines/s")
    print(
        f"{args.writers} writer processes: {multi:>10,.0f} lines/s (all lines parsed, counts exact)"
    )
    print(f"PolicyAccounting.settle (litellm price + receipt + append): {settle:,.0f} us/attempt")


if __name__ == "__main__":
    main()
