"""`policyroute explain` says why a worst case is unknown: no price, or no output bound."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.explain import CandidateLine, Explanation, render_text

# A priced model litellm has no output limit for, and nothing else bounding its output.
POLICY = """\
policyroute: 1
name: t
models:
  mini:
    model: acme/mini-unlisted
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
routes:
  - name: default
    to: mini
budgets:
  - {name: daily, limit_usd: 5, window: day}
"""


def _explain(tmp_path: Path, policy: str, *extra: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    request = tmp_path / "request.yaml"
    request.write_text("messages: hello there\n")
    assert main(["explain", str(path), "--request", str(request), *extra]) == 0
    return path.name


def _row(out: str) -> str:
    (row,) = [line for line in out.splitlines() if "acme/mini-unlisted" in line]
    return row


def test_text_labels_the_estimate_output_unbounded_not_unpriced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(tmp_path, POLICY)
    row = _row(capsys.readouterr().out)
    assert "output unbounded" in row
    assert "unpriced" not in row
    # the price is shown, and the output side of the token count is unknown, not 0
    assert re.search(r"0\.15\s+0\.6\s", row)
    assert re.search(r"\b\d+\+\?$", row)


def test_json_says_what_the_estimate_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(tmp_path, POLICY, "--format", "json")
    (mini,) = json.loads(capsys.readouterr().out)["candidates"]
    assert mini["worst_case"]["cost_usd"] is None
    assert mini["worst_case"]["missing"] == ["output_bound"]
    assert (mini["input_per_mtok"], mini["output_per_mtok"]) == ("0.15", "0.6")


def test_the_model_params_max_tokens_bounds_the_estimate_as_it_bounds_the_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bounded = POLICY.replace("    price:", "    params: {max_tokens: 100}\n    price:")
    _explain(tmp_path, bounded, "--format", "json")
    (mini,) = json.loads(capsys.readouterr().out)["candidates"]
    assert mini["worst_case"]["output_tokens"] == 100
    assert mini["worst_case"]["missing"] == []
    input_tokens = mini["worst_case"]["input_tokens"]
    expected = (input_tokens * Decimal("0.15") + 100 * Decimal("0.6")) / 1_000_000
    assert Decimal(mini["worst_case"]["cost_usd"]) == expected


def _line(missing: tuple[str, ...], cost: Decimal | None = None) -> CandidateLine:
    return CandidateLine(
        alias="m",
        model="acme/m",
        via=None,
        input_per_mtok=None,
        output_per_mtok=None,
        price_source="none",
        context_window=None,
        input_tokens=7,
        output_tokens=0 if "output_bound" in missing else 50,
        worst_case_cost=cost,
        missing=missing,
    )


@pytest.mark.parametrize(
    ("missing", "label", "tokens"),
    [
        (("price",), "unpriced", "7+50"),
        (("output_bound",), "output unbounded", "7+?"),
        (("price", "output_bound"), "unpriced, output unbounded", "7+?"),
    ],
)
def test_render_text_names_each_thing_the_estimate_lacks(
    missing: tuple[str, ...], label: str, tokens: str
) -> None:
    ex = Explanation("t", "default", None, (_line(missing),), {}, {}, (), (), ())
    (row,) = [line for line in render_text(ex).splitlines() if "acme/m" in line]
    assert re.search(rf"\s{re.escape(label)}\s+{re.escape(tokens)}$", row)
