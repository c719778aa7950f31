"""A call a budget refuses says which budget refused it, and ``receipts report`` counts the
refusals: in the totals, per user, and under the refusing budget (which it did not charge)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from policyroute import acompletion
from policyroute.cli import main
from policyroute.errors import BudgetExceeded
from policyroute.testing import FakeProvider, Reply

os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

CALLS = 12


def _policy(base: str, tmp_path: Path) -> str:
    # Each call may cost up to 100 input + 100 output tokens at $1,000/Mtok: $0.2 at most.
    # "per-user" lets a user's calls reserve $0.5 a day: two at a time, whatever they spend.
    return f"""policyroute: 1
name: refusals
models:
  m:
    model: openai/fake-m
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 1000}}
routes:
  - {{name: default, to: m}}
budgets:
  - {{name: per-user, per: metadata.user_id, limit_usd: 0.5, window: day}}
  - {{name: everyone, limit_usd: 100, window: day}}
store: {{backend: sqlite, path: {tmp_path / "budgets.sqlite3"}}}
receipts: {{sink: jsonl, path: {tmp_path / "receipts.jsonl"}}}
"""


async def _calls(policy: str, user: str) -> list[Any]:
    async def one() -> Any:
        return await acompletion(
            policy=policy,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=100,
            metadata={"user_id": user},
        )

    return await asyncio.gather(*(one() for _ in range(CALLS)), return_exceptions=True)


def test_refusals_are_named_in_receipts_and_counted_by_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeProvider() as fp:
        # slow enough that every call is still holding its reservation when the last is made
        fp.set_default("*", Reply(text="ok", delay=0.2))
        policy = _policy(fp.openai_base, tmp_path)
        results = asyncio.run(_calls(policy, "spender"))
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert len(refused) + len(answered) == CALLS, results
    assert refused
    assert answered

    records = [json.loads(line) for line in (tmp_path / "receipts.jsonl").read_text().splitlines()]
    refusals = [r for r in records if r["kind"] == "call" and r["status"] == "refused"]
    assert len(refusals) == len(refused)
    for record in refusals:
        assert record["refused_by"]["budget"] == "per-user"
        assert record["refused_by"]["scope"] == "spender"
        assert record["refused_by"]["window"].startswith("day:")
        assert record["refused_by"]["limit"] == "0.5"
        assert float(record["refused_by"]["estimate"]) > 0
    assert all(
        "refused_by" not in r for r in records if r["kind"] == "call" and r["status"] == "ok"
    )

    code = main(
        [
            "receipts",
            "report",
            str(tmp_path / "receipts.jsonl"),
            "--by",
            "budget,user,status",
            "--format",
            "json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["calls"] == CALLS
    assert report["total"]["refused"] == len(refused)
    assert report["by"]["user"]["spender"]["refused"] == len(refused)
    assert report["by"]["status"]["refused"]["refused"] == len(refused)
    assert report["by"]["status"]["ok"]["refused"] == 0
    per_user = report["by"]["budget"]["per-user"]
    # the refused calls charged nothing: the budget's calls are the answered ones
    assert (per_user["calls"], per_user["refused"]) == (len(answered), len(refused))
    assert (report["by"]["budget"]["everyone"]["refused"]) == 0

    assert main(["receipts", "report", str(tmp_path / "receipts.jsonl"), "--by", "budget"]) == 0
    table = capsys.readouterr().out
    header, _, *rows = table.split("\n\n")[1].splitlines()
    columns = header.split()
    assert "refused" in columns
    by_key = {row.split()[0]: dict(zip(columns, row.split(), strict=True)) for row in rows}
    assert by_key["per-user"]["refused"] == str(len(refused))


def test_a_refusal_without_a_budget_name_counts_under_none() -> None:
    from policyroute.costs.report import summarize

    call = {"kind": "call", "request_id": "r1", "status": "refused", "cost": "0"}
    report = summarize([call], by=["budget"])
    assert report.groups["budget"]["(none)"].refused == 1
    assert report.total.refused == 1
    assert report.total.errors == 1
