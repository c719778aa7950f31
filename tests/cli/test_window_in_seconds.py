"""A rolling budget window may be a number of seconds, as every other duration of the language
may (``timeout: 90``): ``window: 3600`` was refused with a hint to quote it, and ``"3600"``
quoted was refused again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: rolling-seconds
models:
  mini: {{model: openai/gpt-4o-mini}}
routes: [{{name: default, to: mini}}]
budgets:
  - {{name: hourly, limit_usd: 2, window: {window}}}
store: {{backend: memory}}
"""


@pytest.mark.parametrize(("window", "key"), [("3600", "rolling:3600s"), ("90.5", "rolling:90.5s")])
def test_a_window_given_in_seconds_validates_and_is_a_rolling_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], window: str, key: str
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.format(window=window), encoding="utf-8")
    assert main(["validate", str(policy)]) == 0
    assert capsys.readouterr().out == "0 errors, 0 warnings in 1 file\n"
    assert main(["budget", "status", str(policy), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["window"] == key


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("0", "must be > 0, got 0"),
        ("-5", "must be > 0, got -5"),
        ("315360001", "must be <= 315360000, got 315360001"),
    ],
)
def test_a_window_in_seconds_must_be_above_zero_and_at_most_ten_years(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], window: str, message: str
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.format(window=window), encoding="utf-8")
    assert main(["validate", str(policy)]) == 1
    out = capsys.readouterr().out
    assert f"budgets[0].window: {message} [PR013]" in out, out


def test_a_boolean_window_is_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.format(window="true"), encoding="utf-8")
    assert main(["validate", str(policy)]) == 1
    assert "budgets[0].window: expected window" in capsys.readouterr().out
