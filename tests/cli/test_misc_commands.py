"""`policyroute --version`, `schema`, `demo`, `receipts report` and `budget status`."""

from __future__ import annotations

import csv
import io
import json
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
    assert "policyroute receipts: error:" in capsys.readouterr().err


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
