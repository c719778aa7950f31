"""`policyroute explain` says when a call may try the candidates in another order than shown.

A ``weighted`` group draws its order on every call, so two runs of explain showed two orders
under "tried in this order" with nothing to say why; ``fastest`` and ``least_busy`` groups and
open circuits reorder at run time what an offline explanation lists in policy order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: orders
models:
  a: {model: openai/gpt-4o-mini}
  b: {model: openai/gpt-4o}
  c: {model: openai/gpt-4.1}
groups:
  spread: {strategy: weighted, models: [a, b]}
  quick: {strategy: fastest, models: [a, c]}
  idle: {strategy: least_busy, models: [b, c]}
routes:
  - name: spread
    when: {metadata.task: spread}
    to: [spread, c]
  - name: live
    when: {metadata.task: live}
    to: [quick, idle]
  - name: single
    when: {metadata.task: single}
    to: a
  - name: default
    to: [a, b]
defaults: {max_tokens: 100}
"""


def _explain(tmp_path: Path, task: str, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    request = tmp_path / "r.yaml"
    request.write_text(f"messages: hi\nmetadata: {{task: {task}}}\n", encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request), "--format", fmt]) == 0
    return capsys.readouterr().out


def test_a_weighted_order_is_said_to_be_one_draw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _explain(tmp_path, "spread", "text", capsys)
    assert "note: group 'spread' (weighted) is drawn at random by weight on every call" in out
    notes = json.loads(_explain(tmp_path, "spread", "json", capsys))["order_notes"]
    assert notes[0].startswith("group 'spread' (weighted) is drawn at random")


def test_run_time_orders_and_circuits_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = json.loads(_explain(tmp_path, "live", "json", capsys))["order_notes"]
    assert notes == [
        "group 'quick' (fastest) is ordered by measured latency at run time"
        " (none offline: the order listed)",
        "group 'idle' (least_busy) is ordered by calls in flight at run time"
        " (none offline: the order listed)",
        "a deployment whose circuit is open at run time is tried last",
    ]
    assert json.loads(_explain(tmp_path, "other", "json", capsys))["order_notes"] == [
        "a deployment whose circuit is open at run time is tried last"
    ]


def test_a_single_candidate_has_no_order_to_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "note:" not in _explain(tmp_path, "single", "text", capsys)
    assert json.loads(_explain(tmp_path, "single", "json", capsys))["order_notes"] == []
