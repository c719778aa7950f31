"""`receipts report` sums what calls cost, not their costs rounded to 6 places.

A receipt's ``cost`` is rounded to 6 places. Summed over calls cheaper than a few millionths of
a dollar, those roundings drifted: 200 calls at $0.00000525 (11 input and 6 output tokens of a
$0.15/$0.60 model) reported $0.001000 where they cost $0.001050, and where the budget they
charged says $0.00105 spent. Receipts now also carry ``cost_exact``, every digit, which the
report sums; receipts written without it are summed from ``cost`` as before.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from policyroute.accounting import _clear_default_cache
from policyroute.api import clear_cache
from policyroute.cli import main
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(120)

CALLS = 200

POLICY = """
policyroute: 1
name: report-exact-costs
models:
  small:
    model: openai/fake-small
    api_base: {base}
    api_key: ${{PR_EXACT_KEY}}
    price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
routes:
  - name: default
    to: small
budgets:
  - name: daily
    limit_usd: 1.00
    window: day
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults:
  max_tokens: 10
  retry: {{attempts: 0}}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_EXACT_KEY", "sk-test")
    try:
        with FakeProvider() as provider:
            provider.set_default(
                "fake-small", Reply(text="ok", usage=Usage(prompt=11, completion=6))
            )
            (tmp_path / "policy.yaml").write_text(POLICY.format(base=provider.openai_base))
            for _ in range(CALLS):
                policyroute.completion(
                    policy="policy.yaml", messages=[{"role": "user", "content": "hi"}]
                )
            assert len(provider.requests) == CALLS
    finally:
        clear_cache()
        _clear_default_cache()
    return tmp_path


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_receipts_carry_the_exact_cost_beside_the_rounded_one(workdir: Path) -> None:
    records = [json.loads(line) for line in (workdir / "receipts.jsonl").read_text().splitlines()]
    assert len(records) == 2 * CALLS  # an attempt and a call receipt each
    assert {(r["cost"], r["cost_exact"]) for r in records} == {("0.000005", "0.00000525")}


def test_the_report_sums_exact_costs_and_agrees_with_the_budget(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(
        ["receipts", "report", "receipts.jsonl", "--by", "model,budget", "--format", "json"], capsys
    )
    assert isinstance(report, dict)
    assert report["total"]["cost"] == "0.001050"  # 200 times 0.00000525, not 200 times 0.000005
    assert report["by"]["model"]["openai/fake-small"]["cost"] == "0.001050"
    assert report["by"]["budget"]["daily"]["cost"] == "0.001050"
    status = _json(["budget", "status", "policy.yaml", "--format", "json"], capsys)
    assert isinstance(status, list)
    assert Decimal(status[0]["spent"]) == Decimal("0.00105")


def test_receipts_without_the_exact_cost_are_summed_from_the_rounded_one(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (workdir / "receipts.jsonl").read_text().splitlines()
    older = workdir / "older.jsonl"
    stripped = []
    for line in lines:
        record = json.loads(line)
        del record["cost_exact"]
        stripped.append(json.dumps(record))
    older.write_text("\n".join(stripped) + "\n")
    report = _json(["receipts", "report", str(older), "--format", "json"], capsys)
    assert isinstance(report, dict)
    assert report["total"]["cost"] == "0.001000"


def test_an_unreadable_exact_cost_is_named(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = workdir / "bad.jsonl"
    record = json.loads((workdir / "receipts.jsonl").read_text().splitlines()[-1])
    record["cost_exact"] = "abc"
    bad.write_text(json.dumps(record) + "\n")
    assert main(["receipts", "report", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "'cost_exact' must be a decimal amount" in err
