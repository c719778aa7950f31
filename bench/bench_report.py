"""Receipt report throughput: lines per second read and added up by ``receipts report``.

Writes ``--lines`` realistic receipt lines (attempt and call receipts as ``PolicyAccounting``
writes them: several routes, users, budgets and days, a call in seven falling over to a
second attempt) through :class:`policyroute.costs.sinks.JsonlSink`, plus a rotated copy of
the first 2% of them (read as duplicates, as overlapping rotated files are). Then times, in
one run and interleaved, so that drift in the machine's load hits all alike:

- the baseline: reading the file and a bare ``json.loads`` of every line;
- ``summarize(load_receipts(files), by)``;
- the CLI: ``policyroute receipts report FILES --by ... --format json`` (in process,
  output discarded).

Ratios are read within one run: time per line over the baseline's (lower is better).

Run:
    python bench/bench_report.py [--lines 200000] [--by route,user,budget,day] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from policyroute.costs.receipts import SCHEMA_VERSION, format_usd
from policyroute.costs.sinks import JsonlSink

_ROUTES = ("default", "code", "long-context", "summarise")
_MODELS = (
    ("sonnet", "anthropic/claude-sonnet-4-5-20250929", "anthropic"),
    ("mini", "openai/gpt-4o-mini", "openai"),
    ("haiku", "anthropic/claude-haiku-4-5", "anthropic"),
)


def _budgets(user: str, team: str, cost: Decimal) -> list[dict[str, Any]]:
    return [
        {
            "budget": "per-user-daily",
            "scope": user,
            "window": "day",
            "limit": "2.000000",
            "spent": format_usd(cost * 10),
            "reserved": "0.000000",
            "remaining": format_usd(Decimal(2) - cost * 10),
            "thresholds_crossed": [],
        },
        {
            "budget": "per-team-monthly",
            "scope": team,
            "window": "month",
            "limit": "500.000000",
            "spent": format_usd(cost * 1000),
            "reserved": "0.010000",
            "remaining": format_usd(Decimal(500) - cost * 1000),
            "thresholds_crossed": [0.5],
        },
    ]


def call_records(seq: int) -> list[dict[str, Any]]:
    """The receipts of call ``seq``: one attempt (two when it fell over) and the call."""
    user = f"user-{seq % 300}"
    team = f"team-{seq % 7}"
    day = 1 + seq % 28
    ts = f"2026-01-{day:02d}T{seq % 24:02d}:04:05.{seq % 1000:03d}+00:00"
    common = {
        "schema_version": SCHEMA_VERSION,
        "request_id": f"{seq:032x}",
        "run_id": "3f1c9a7e-2b4d-4e8f-9a1b-7c6d5e4f3a2b",
        "policy": "support-assistant",
        "policy_hash": "5d41402abc4b2a76b9719d911017c592" * 2,
        "route": _ROUTES[seq % len(_ROUTES)],
        "user": user,
        "metadata": {"user_id": user, "team": team},
        "tags": ["prod", "support"],
        "litellm_version": "1.106.2",
    }
    fell_over = seq % 7 == 0
    attempts = []
    total = Decimal(0)
    tokens = {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0}
    for number in (1, 2) if fell_over else (1,):
        alias, model, provider = _MODELS[(seq + number - 1) % len(_MODELS)]
        failed = fell_over and number == 1
        cost = Decimal(0) if failed else Decimal(seq % 997 + 1) * Decimal("0.000003141")
        total += cost
        used = {
            "input_tokens": 0 if failed else 4512 + seq % 100,
            "cache_read_tokens": 0 if failed else 3000,
            "cache_write_tokens": 0 if failed else 1500,
            "output_tokens": 0 if failed else 250 + seq % 50,
            "reasoning_tokens": 0,
        }
        for name in tokens:
            tokens[name] += used[name]
        attempts.append(
            {
                **common,
                "kind": "attempt",
                "ts": ts,
                "started_at": ts,
                "litellm_call_id": f"chatcmpl-{seq:032x}{number}",
                "attempt": number,
                "retry": number - 1,
                "waited_ms": 0.0 if number == 1 else 512.5,
                "wait_source": None if number == 1 else "backoff",
                "deployment": alias,
                "via": None,
                "model": model,
                "provider": provider,
                **used,
                "estimated_cost": "0.075000",
                "cost": format_usd(cost),
                "price_source": "litellm",
                "usage_estimated": False,
                "latency_ms": 812.5,
                "ttft_ms": 240.125,
                "status": "error" if failed else "ok",
                "error_class": "rate_limit" if failed else None,
                "error": "429 Too Many Requests" if failed else None,
                "provider_billed": not failed,
                "budgets": _budgets(user, team, cost),
                "threshold_crossed": False,
            }
        )
    alias, model, provider = _MODELS[(seq + len(attempts) - 1) % len(_MODELS)]
    call = {
        **common,
        "kind": "call",
        "ts": ts,
        "started_at": ts,
        "deployment": alias,
        "model": model,
        "provider": provider,
        "attempts": len(attempts),
        **tokens,
        "cache_write_tokens": 1500,
        "reasoning_tokens": 0,
        "usage_estimated": False,
        "cost": format_usd(total),
        "latency_ms": 1250.5,
        "ttft_ms": None,
        "status": "ok",
        "error_class": None,
        "error": None,
    }
    return [*attempts, call]


def write_files(directory: Path, lines: int) -> list[Path]:
    """A live receipts file of about ``lines`` lines and a rotated copy of its first 2%."""
    live, rotated = directory / "receipts.jsonl", directory / "receipts.jsonl.1"
    sink = JsonlSink(live)
    written, seq = 0, 0
    while written < lines:
        records = call_records(seq)
        for record in records:
            sink.write(record)
        written += len(records)
        seq += 1
    sink.close()
    data = live.read_bytes()
    cut = data.index(b"\n", len(data) // 50) + 1
    rotated.write_bytes(data[:cut])
    return [rotated, live]


def _baseline(files: list[Path]) -> int:
    count = 0
    for path in files:
        with open(path, "rb") as fh:
            for line in fh:
                json.loads(line)
                count += 1
    return count


def _summarize(files: list[Path], by: list[str]) -> Any:
    from policyroute.costs.report import load_receipts, summarize

    return summarize(load_receipts(files), by)


def _cli(files: list[Path], by: list[str]) -> str:
    from policyroute.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(
            ["receipts", "report", *map(str, files), "--by", ",".join(by), "--format", "json"]
        )
    assert status == 0, status
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--by", default="route,user,budget,day")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    by = args.by.split(",")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        files = write_files(Path(tmp), args.lines)
        size = sum(os.path.getsize(p) for p in files)
        count = _baseline(files)  # also warms the page cache
        report = _summarize(files, by)
        assert report.skipped == 0, report.problems
        assert not report.problems, report.problems
        assert report.duplicates > 0
        kinds: dict[str, Callable[[], Any]] = {
            "json.loads": lambda: _baseline(files),
            "summarize": lambda: _summarize(files, by),
            "cli": lambda: _cli(files, by),
        }
        times: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(args.rounds):
            for name, run in kinds.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    print(
        f"{count:,} lines, {size / 1e6:,.1f} MB ({size / count:,.0f} bytes a line),"
        f" --by {args.by}, median of {args.rounds} rounds"
    )
    base = statistics.median(times["json.loads"])
    for name, spent in times.items():
        typical = statistics.median(spent)
        print(
            f"{name:>11}: {count / typical:>10,.0f} lines/s  {typical:6.2f} s"
            f"  x{typical / base:5.2f}"
        )


if __name__ == "__main__":
    main()
