"""`policyroute explain` shows what server-side tools do to a call's worst case."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.explain import CandidateLine, Explanation, render_text

POLICY = """\
policyroute: 1
name: t
models:
  mini:
    model: acme/mini-unlisted
    price: {input_per_mtok: 1, output_per_mtok: 1}
    max_output_tokens: 1000
    capabilities: {tools: true}
routes:
  - name: default
    to: mini
budgets:
  - {name: daily, limit_usd: 5, window: day}
"""
CAP = "    max_server_tool_cost_usd: 0.05\n"
CAPPED = POLICY.replace("    capabilities:", CAP + "    capabilities:")
REQUEST = """\
messages: what happened today?
tools:
  - {type: web_search_20250305, name: web_search, max_uses: 3}
"""


def _explain(tmp_path: Path, policy: str, request: str, *extra: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    request_path = tmp_path / "request.yaml"
    request_path.write_text(request)
    assert main(["explain", str(path), "--request", str(request_path), *extra]) == 0


def _row(out: str) -> str:
    (row,) = [line for line in out.splitlines() if "acme/mini-unlisted" in line]
    return row


def test_text_labels_a_search_without_a_bound_server_tools_unbounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(tmp_path, POLICY, REQUEST)
    row = _row(capsys.readouterr().out)
    assert "server tools unbounded" in row
    assert re.search(r"\b\d+\+1000$", row)


def test_json_says_the_estimate_lacks_a_server_tool_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(tmp_path, POLICY, REQUEST, "--format", "json")
    (mini,) = json.loads(capsys.readouterr().out)["candidates"]
    worst = mini["worst_case"]
    assert worst["cost_usd"] is None
    assert worst["missing"] == ["server_tools"]
    assert worst["server_tools"] == ["web_search_20250305"]
    assert worst["server_tool_cost_usd"] is None


def test_with_a_bound_the_worst_case_includes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(tmp_path, CAPPED, REQUEST, "--format", "json")
    (mini,) = json.loads(capsys.readouterr().out)["candidates"]
    worst = mini["worst_case"]
    assert worst["missing"] == []
    assert worst["server_tool_cost_usd"] == "0.05"
    tokens = worst["input_tokens"] + worst["output_tokens"]
    assert Decimal(worst["cost_usd"]) == Decimal(tokens) / 1_000_000 + Decimal("0.05")

    _explain(tmp_path, CAPPED, REQUEST)
    row = _row(capsys.readouterr().out)
    assert re.search(r"\$0\.05\d+ \(incl\. \$0\.05 server tools\)", row)


def test_a_request_without_server_tools_shows_no_server_tool_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(tmp_path, CAPPED, "messages: what happened today?\n", "--format", "json")
    (mini,) = json.loads(capsys.readouterr().out)["candidates"]
    assert mini["worst_case"]["server_tools"] == []
    assert mini["worst_case"]["server_tool_cost_usd"] is None
    assert Decimal(mini["worst_case"]["cost_usd"]) < Decimal("0.01")


def test_render_text_names_server_tools_beside_the_other_gaps() -> None:
    line = CandidateLine(
        alias="m",
        model="acme/m",
        via=None,
        input_per_mtok=None,
        output_per_mtok=None,
        price_source="none",
        context_window=None,
        input_tokens=7,
        output_tokens=0,
        worst_case_cost=None,
        missing=("price", "output_bound", "server_tools"),
        server_tools=("web_search",),
    )
    ex = Explanation("t", "default", None, (line,), {}, {}, (), (), ())
    (row,) = [r for r in render_text(ex).splitlines() if "acme/m" in r]
    assert re.search(r"\sunpriced, output unbounded, server tools unbounded\s+7\+\?$", row)
