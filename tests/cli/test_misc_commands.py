"""`policyroute --version`, `schema`, `demo`, `receipts report` and `budget status`."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.costs.report import DIMENSIONS

REPO = Path(__file__).resolve().parents[2]

RECEIPTS = (
    '{"kind": "attempt", "cost": "0.25", "provider": "openai", "model": "openai/gpt-4o-mini",'
    ' "route": "default"}\n'
    '{"kind": "call", "cost": "0.25", "model": "openai/gpt-4o-mini", "route": "default"}\n'
    '{"kind": "attempt", "cost": "1.5", "provider": "anthropic",'
    ' "model": "anthropic/claude-haiku-4-5", "route": "code"}\n'
    '{"kind": "call", "cost": "1.5", "model": "anthropic/claude-haiku-4-5", "route": "code"}\n'
)

BUDGET_POLICY = """\
policyroute: 1
name: budgets
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
budgets:
  - name: monthly
    limit_usd: 100
    window: month
store: {backend: sqlite, path: state/budgets.sqlite3}
"""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("policyroute 0.")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("validate", "explain", "test", "schema", "demo", "receipts", "budget"):
        assert command in out


def test_schema_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    published = json.loads((REPO / "schemas" / "policy.schema.json").read_text("utf-8"))
    assert printed == published
    assert printed["$schema"].startswith("https://json-schema.org/")


def test_report_keys_are_the_report_dimensions(
    receipts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipts", "report", str(receipts), "--by", ",".join(DIMENSIONS)]) == 0
    capsys.readouterr()
    assert main(["receipts", "report", str(receipts), "--by", "model,colour"]) == 2
    assert f"invalid key(s) colour; choose from {','.join(DIMENSIONS)}" in capsys.readouterr().err


def _breakdowns(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    return list(doc["by"])


def test_report_keys_given_again_add_up_in_order_each_once(
    receipts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = ["receipts", "report", str(receipts)]
    assert _breakdowns(report, capsys) == ["provider", "model"]
    assert _breakdowns([*report, "--by", "route"], capsys) == ["route"]
    by_twice = [*report, "--by", "model", "--by", "route,model", "--by", "day"]
    assert _breakdowns(by_twice, capsys) == ["model", "route", "day"]


@pytest.fixture
def receipts(tmp_path: Path) -> Path:
    path = tmp_path / "receipts.jsonl"
    path.write_text(RECEIPTS, encoding="utf-8")
    return path


def test_receipts_report_formats(receipts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts", "report", str(receipts), "--by", "route"]) == 0
    table = capsys.readouterr().out
    assert "code" in table
    assert "1.750000" in table  # the total

    assert main(["receipts", "report", str(receipts), "--by", "provider", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by_key = {(r["dimension"], r["key"]): r for r in rows}
    assert by_key[("provider", "anthropic")]["attempt_cost"] == "1.500000"

    assert (
        main(["receipts", "report", str(receipts), "--by", "model,route", "--format", "json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert json.dumps(doc)  # a single JSON document
    assert "0.25" in json.dumps(doc)


@pytest.mark.parametrize(
    "argv",
    [
        ["receipts"],
        ["receipts", "report"],
        ["receipts", "report", "RECEIPTS", "--by", "colour"],
        ["receipts", "report", "RECEIPTS", "--format", "xml"],
        ["receipts", "report", "missing.jsonl"],
        ["budget", "status"],
        ["budget", "status", "missing.yaml"],
    ],
)
def test_receipts_and_budget_usage_errors_exit_2(
    argv: list[str], receipts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(receipts) if a == "RECEIPTS" else a for a in argv]) == 2
    assert capsys.readouterr().err


def test_budget_status_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the store path in the policy is relative
    (tmp_path / "p.yaml").write_text(BUDGET_POLICY, encoding="utf-8")
    assert main(["budget", "status", "p.yaml"]) == 0
    assert "monthly" in capsys.readouterr().out
    assert main(["budget", "status", "p.yaml", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["budget"], r["limit"], r["spent"]) for r in rows] == [("monthly", "100", "0")]
    assert main(["budget", "status", "p.yaml", "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("budget,scope,window,limit,spent")


# Budgets of every kind: per-user lines charged by real calls, a global budget charged too, a
# per-team budget and a global one nothing reaches (only the unused "code" route is in their
# scope), and a per-call limit. Charged budgets use rolling windows so that no calendar
# boundary can fall between the calls and the status.
SPEND_POLICY = """\
policyroute: 1
name: status
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_STATUS_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: code
    when: {{metadata.task: code}}
    to: a
  - name: default
    to: a
budgets:
  - name: users
    per: metadata.user_id
    limit_usd: 1
    window: 6h
  - name: teams
    per: metadata.team
    limit_usd: 3
    window: day
    routes: [code]
  - name: global
    limit_usd: 10
    window: 24h
  - name: code-weekly
    limit_usd: 4
    window: week
    routes: [code]
  - name: per-call
    limit_usd: "0.50"
    window: call
store: {{backend: sqlite, path: state/budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def spent_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policy whose SQLite store holds the spend of three real calls (by two users)."""
    import policyroute
    from policyroute.accounting import _clear_default_cache
    from policyroute.api import clear_cache
    from policyroute.testing import FakeProvider, Reply, Usage

    monkeypatch.chdir(tmp_path)  # the store and receipt paths in the policy are relative
    monkeypatch.setenv("PR_STATUS_KEY", "sk-test")
    path = tmp_path / "policy.yaml"
    try:
        with FakeProvider() as fp:
            # 7 input tokens at $0.001 + 3 output tokens at $0.002: $0.013 a call.
            fp.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
            path.write_text(SPEND_POLICY.format(base=fp.openai_base), encoding="utf-8")
            for user in ("u,2", "u1", "u1"):
                policyroute.completion(
                    policy=path,
                    messages=[{"role": "user", "content": "hello"}],
                    metadata={"user_id": user},
                )
    finally:
        clear_cache()  # release the store the cached executor holds
        _clear_default_cache()
    return path


def test_budget_status_lists_every_budget_of_a_used_policy(
    spent_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["budget", "status", str(spent_policy), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row in rows:
        if row["window"] not in ("call", "rolling:21600s", "rolling:86400s"):
            assert re.fullmatch(r"(day:\d{4}-\d\d-\d\d|week:\d{4}-W\d\d)", row["window"])
            row["window"] = row["window"].split(":")[0]
    assert rows == [
        {
            "budget": "users",
            "scope": "u,2",
            "window": "rolling:21600s",
            "limit": "1",
            "spent": "0.013",
            "reserved": "0",
            "expired": "0",
            "remaining": "0.987",
            "per": "metadata.user_id",
            "state": "charged",
        },
        {
            "budget": "users",
            "scope": "u1",
            "window": "rolling:21600s",
            "limit": "1",
            "spent": "0.026",
            "reserved": "0",
            "expired": "0",
            "remaining": "0.974",
            "per": "metadata.user_id",
            "state": "charged",
        },
        {
            "budget": "teams",
            "scope": "<per metadata.team: none charged>",
            "window": "day",
            "limit": "3",
            "spent": "0",
            "reserved": "0",
            "expired": "0",
            "remaining": "3",
            "per": "metadata.team",
            "state": "idle",
        },
        {
            "budget": "global",
            "scope": "*",
            "window": "rolling:86400s",
            "limit": "10",
            "spent": "0.039",
            "reserved": "0",
            "expired": "0",
            "remaining": "9.961",
            "per": None,
            "state": "charged",
        },
        {
            "budget": "code-weekly",
            "scope": "*",
            "window": "week",
            "limit": "4",
            "spent": "0",
            "reserved": "0",
            "expired": "0",
            "remaining": "4",
            "per": None,
            "state": "idle",
        },
        {
            "budget": "per-call",
            "scope": "<each call>",
            "window": "call",
            "limit": "0.50",
            "spent": None,
            "reserved": None,
            "expired": None,
            "remaining": None,
            "per": None,
            "state": "per-call",
        },
    ]


def test_budget_status_table_and_csv_of_a_used_policy(
    spent_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["budget", "status", str(spent_policy)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "budget",
        "scope",
        "window",
        "limit",
        "spent",
        "reserved",
        "expired",
        "remaining",
        "state",
    ]
    cells = [line.split() for line in table[1:]]
    assert [c[0] for c in cells] == ["users", "users", "teams", "global", "code-weekly", "per-call"]
    assert cells[1] == ["users", "u1", "rolling:21600s", "1", "0.026", "0", "0", "0.974", "charged"]
    assert table[3].startswith("teams        <per metadata.team: none charged>  day:")
    assert cells[2][-6:] == ["3", "0", "0", "0", "3", "idle"]
    assert cells[5] == [
        "per-call",
        "<each",
        "call>",
        "call",
        "0.50",
        "n/a",
        "n/a",
        "n/a",
        "n/a",
        "per-call",
    ]

    assert main(["budget", "status", str(spent_policy), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    header = "budget,scope,window,limit,spent,reserved,expired,remaining,per,state"
    assert out.splitlines()[0] == header
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert [(r["budget"], r["scope"], r["state"]) for r in parsed] == [
        ("users", "u,2", "charged"),
        ("users", "u1", "charged"),
        ("teams", "<per metadata.team: none charged>", "idle"),
        ("global", "*", "charged"),
        ("code-weekly", "*", "idle"),
        ("per-call", "<each call>", "per-call"),
    ]
    assert parsed[3]["spent"] == "0.039"
    assert [parsed[5][k] for k in ("limit", "spent", "reserved", "remaining", "per")] == [
        "0.50",
        "",
        "",
        "",
        "",
    ]


def test_budget_status_of_an_invalid_policy_exits_1(
    broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["budget", "status", str(broken_path)]) == 1
    assert "[PR101]" in capsys.readouterr().err


def test_an_unreadable_input_is_reported_not_raised(
    tmp_path: Path, policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder_as_receipts = tmp_path / "dir.jsonl"
    folder_as_receipts.mkdir()
    assert main(["receipts", "report", str(folder_as_receipts)]) == 1
    assert "policyroute receipts report: error:" in capsys.readouterr().err


def test_demo_runs_the_library_demo_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo itself (a fake provider, LangChain calls) is tested with the demo; here only
    # that the command hands it stdout and returns its status.
    import policyroute.demo

    def fake_demo(out: io.TextIOBase) -> int:
        out.write("demo ran\n")
        return 3

    monkeypatch.setattr(policyroute.demo, "run_demo", fake_demo)
    assert main(["demo"]) == 3
    assert capsys.readouterr().out == "demo ran\n"
