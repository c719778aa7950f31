"""A refusal counts under its budget's key as the attempts that charged that budget spell it:
a name holding a lone surrogate (a JSON escape in a receipt file) is written ``\\udXXX`` in
both, so the refusal joins that budget's group and the report prints."""

from __future__ import annotations

from policyroute.costs.report import summarize
from policyroute.costs.report_format import format_report

NAME = "caf\udce9"


def test_a_refusal_groups_with_the_attempts_of_its_budget() -> None:
    attempt = {
        "kind": "attempt",
        "request_id": "r1",
        "attempt": 1,
        "status": "ok",
        "cost": "0.5",
        "budgets": [{"budget": NAME}],
    }
    call = {"kind": "call", "request_id": "r1", "status": "ok", "cost": "0.5"}
    refused = {
        "kind": "call",
        "request_id": "r2",
        "status": "refused",
        "cost": "0",
        "refused_by": {"budget": NAME},
    }
    report = summarize([attempt, call, refused], by=["budget"])

    [(key, totals)] = report.groups["budget"].items()
    assert key == "caf\\udce9"
    assert (totals.calls, totals.refused) == (1, 1)
    for fmt in ("table", "csv", "json"):
        format_report(report, fmt).encode("utf-8")
