"""`policyroute explain` text: what the request brings into the table is escaped and aligned.

Budget scopes and tags come from the request file: a line break split a budget row in two, an
escape sequence reached the terminal as it was, and CJK characters, two columns wide, pushed
the columns out of line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: scopes
models:
  mini: {model: openai/gpt-4o-mini}
budgets:
  - {name: per-tag, limit_usd: 1, window: day, per: tags}
  - {name: per-user, limit_usd: 2, window: day, per: metadata.user_id}
routes:
  - name: default
    to: mini
defaults: {max_tokens: 100}
"""

REQUEST = {
    "messages": "hi",
    "tags": ["東京都", "x\ny", "\x1b[31mred"],
    "metadata": {"user_id": "u\u202eevil"},
}


def _explain(tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    request = tmp_path / "r.json"
    request.write_text(json.dumps(REQUEST), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request), "--format", fmt]) == 0
    return capsys.readouterr().out


def test_scopes_from_the_request_are_escaped_and_aligned_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _explain(tmp_path, "text", capsys)
    assert "\x1b" not in out
    assert "\u202e" not in out
    lines = out.splitlines()
    rows = lines[lines.index("budgets") + 1 : lines.index("trace")]
    assert [row.split()[1] for row in rows] == [
        "tags=東京都",
        "tags=x\\ny",
        "tags=\\x1b[31mred",
        "metadata.user_id=u\\u202eevil",
    ]
    # the limit column starts at the same terminal column on every row (東京都 takes six)
    starts = [row.index("$") + (3 if "東京都" in row else 0) for row in rows]
    assert len(set(starts)) == 1


def test_json_keeps_the_exact_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    budgets = json.loads(_explain(tmp_path, "json", capsys))["budgets"]
    assert [b["scope"] for b in budgets] == [*REQUEST["tags"], "u\u202eevil"]
