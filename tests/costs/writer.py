"""A receipt writer process for the multi-process tests: ``python writer.py PATH N TAG``.

Writes ``N`` realistic attempt receipts through :class:`JsonlSink` (``N = 0``: until killed).
"""

from __future__ import annotations

import sys
from typing import Any

from policyroute.costs.sinks import JsonlSink


def sample_record(tag: str, seq: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "attempt",
        "ts": "2026-01-02T03:04:05.678+00:00",
        "started_at": "2026-01-02T03:04:05.123+00:00",
        "request_id": f"{tag}-{seq:08d}-0123456789abcdef",
        "run_id": "run-7d1f3c",
        "litellm_call_id": "5b0e6a4e-1c1d-4bd6-9a9d-9c1e0f2a7b3c",
        "writer": tag,
        "seq": seq,
        "attempt": 1,
        "retry": 0,
        "policy": "support-assistant",
        "policy_hash": "9f2c" * 16,
        "route": "code",
        "deployment": "sonnet",
        "via": None,
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "provider": "anthropic",
        "input_tokens": 4512,
        "cache_read_tokens": 3000,
        "cache_write_tokens": 1500,
        "output_tokens": 250,
        "reasoning_tokens": 0,
        "estimated_cost": "0.075000",
        "cost": "0.010311",
        "price_source": "litellm",
        "litellm_version": "1.80.0",
        "latency_ms": 812.5,
        "ttft_ms": 240.1,
        "status": "ok",
        "error_class": None,
        "error": None,
        "provider_billed": True,
        "budgets": [
            {
                "budget": "per-user-daily",
                "scope": "user-42",
                "window": "day",
                "limit": "2.000000",
                "spent": "1.234567",
                "reserved": "0.000000",
                "remaining": "0.765433",
                "thresholds_crossed": [],
            }
        ],
        "threshold_crossed": False,
        "user": "user-42",
        "metadata": {"user_id": "user-42"},
        "tags": ["prod", "support"],
    }


def main() -> None:
    path, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sink = JsonlSink(path)
    seq = 0
    while count == 0 or seq < count:
        sink.write(sample_record(tag, seq))
        seq += 1
    sink.close()


if __name__ == "__main__":
    main()
