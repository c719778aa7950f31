"""Spend reports from receipt files: totals and counts by provider, model, route, user, ...

Where each figure comes from:

- **Money** is summed as :class:`~decimal.Decimal` from the receipts' decimal strings, so no
  float rounding drifts in. The totals and the ``route``, ``user``, ``day``, ``policy`` and
  ``status`` breakdowns sum **call** receipts (one per call, the sum of its attempts). The
  ``provider``, ``model``, ``deployment`` and ``budget`` breakdowns sum **attempt** receipts,
  because a call that fell over from one model to another spent money on both and only the
  attempts say how much on each.
- **Calls** count call receipts; **attempts** count attempt receipts.
- A **day** is the UTC day of the receipt's ``ts`` (a timestamp written with another offset
  is moved to UTC first).
- ``attempt_cost`` is the sum over attempt receipts. It equals ``cost`` unless call receipts
  are missing (a process killed between an attempt and the end of its call).
- **Each receipt counts once**: read through :func:`load_receipts`, a receipt found in more
  than one input (overlapping rotated files, a JSON-lines file and the SQLite database of the
  same writer) is added up once; ``duplicates`` counts the copies dropped. A record with the
  identity of one read earlier (kind, ``request_id`` and attempt number) but other content
  is a conflict: the first one read counts, and the other is named among the problems and
  counted in ``conflicts``. :func:`summarize` itself adds up every record it is given.

Reading the files (gzip included) and accounting for every line that cannot be added up is
:mod:`policyroute.costs.receipt_files`; its names are re-exported here.

Example:
    >>> records = load_receipts(["receipts/2026-01-02.jsonl"])  # doctest: +SKIP
    >>> print(format_report(summarize(records, by=["model", "day"])))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from policyroute._display_width import display_width, pad
from policyroute.costs.receipt_files import (
    LineProblem,
    ReceiptStream,
    load_receipts,
    parse_amount,
    receipt_problem,
)
from policyroute.costs.receipt_json import utc_date

__all__ = [
    "DIMENSIONS",
    "LineProblem",
    "ReceiptStream",
    "Report",
    "ReportFormat",
    "Totals",
    "format_report",
    "load_receipts",
    "receipt_problem",
    "summarize",
]

DIMENSIONS = (
    "provider",
    "model",
    "deployment",
    "route",
    "user",
    "budget",
    "day",
    "policy",
    "status",
)
"""The keys a report can be broken down by."""

_FROM_ATTEMPTS = frozenset({"provider", "model", "deployment", "budget"})
_NONE = "(none)"
ReportFormat = Literal["table", "json", "csv"]


@dataclass(slots=True)
class Totals:
    """Counts and sums for one group (or for everything)."""

    calls: int = 0
    attempts: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    attempt_cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def add_tokens(self, record: Mapping[str, Any]) -> None:
        self.input_tokens += _int(record.get("input_tokens"))
        self.output_tokens += _int(record.get("output_tokens"))
        self.cache_read_tokens += _int(record.get("cache_read_tokens"))
        self.cache_write_tokens += _int(record.get("cache_write_tokens"))
        self.reasoning_tokens += _int(record.get("reasoning_tokens"))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: money as decimal strings."""
        return {
            "calls": self.calls,
            "attempts": self.attempts,
            "errors": self.errors,
            "cost": _usd(self.cost),
            "attempt_cost": _usd(self.attempt_cost),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(slots=True)
class Report:
    """Totals over all records and per group, for each dimension asked for.

    Summed from a :class:`ReceiptStream`, ``skipped`` counts the lines left out and
    ``problems`` says where and why (the ``json`` format carries both); past
    :data:`~policyroute.costs.receipt_files.MAX_PROBLEMS` problems, ``problems_left_out``
    counts those not listed. ``duplicates`` counts the receipts read again and counted once;
    ``conflicts`` those left out because a receipt with their identity and other content was
    read first (each is also among the problems).
    """

    by: tuple[str, ...]
    total: Totals = field(default_factory=Totals)
    groups: dict[str, dict[str, Totals]] = field(default_factory=dict)
    skipped: int = 0
    problems: tuple[LineProblem, ...] = ()
    problems_left_out: int = 0
    duplicates: int = 0
    conflicts: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``json`` format)."""
        return {
            "total": self.total.as_dict(),
            "by": {
                dim: {key: t.as_dict() for key, t in sorted(groups.items())}
                for dim, groups in self.groups.items()
            },
            "skipped_lines": self.skipped,
            "problems": [
                {"file": p.file, "line": p.line, "message": p.message, "partial": p.partial}
                for p in self.problems
            ],
            "problems_left_out": self.problems_left_out,
            "duplicate_receipts": self.duplicates,
            "conflicting_receipts": self.conflicts,
        }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _money(value: Any) -> Decimal:
    amount = parse_amount(value)
    return Decimal(0) if amount is None else amount


def _usd(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.000001')):f}"


def _keys(record: Mapping[str, Any], dim: str) -> list[str]:
    if dim == "day":
        ts = record.get("ts")
        return [(utc_date(ts) or ts[:10] or _NONE) if isinstance(ts, str) else _NONE]
    if dim == "budget":
        budgets = record.get("budgets")
        if not isinstance(budgets, list):
            budgets = []
        return [str(b.get("budget")) for b in budgets if isinstance(b, Mapping)] or [_NONE]
    value = record.get(dim)
    return [_NONE if value is None or value == "" else str(value)]


def summarize(records: Iterable[Mapping[str, Any]], by: Sequence[str] = ()) -> Report:
    """Add up receipt records, overall and per value of each dimension in ``by``.

    Example:
        >>> report = summarize([{"kind": "call", "cost": "0.5", "model": "m"}], by=["model"])
        >>> report.total.cost, report.groups["model"]["m"].calls
        (Decimal('0.5'), 1)
    """
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown report dimension(s) {unknown}; choose from {DIMENSIONS}")
    report = Report(by=tuple(by), groups={dim: {} for dim in by})
    for record in records:
        kind = record.get("kind")
        if kind not in ("call", "attempt"):
            continue
        is_call = kind == "call"
        cost = _money(record.get("cost"))
        failed = record.get("status") != "ok"
        for dim, groups in report.groups.items():
            if is_call and dim == "budget":
                continue  # only attempts carry the budgets they charged
            money = (dim in _FROM_ATTEMPTS) != is_call
            for key in _keys(record, dim):
                _add(groups.setdefault(key, Totals()), record, cost, is_call, failed, money=money)
        _add(report.total, record, cost, is_call, failed, money=is_call)
    if isinstance(records, ReceiptStream):
        report.skipped = records.skipped
        report.problems = tuple(records.problems)
        report.problems_left_out = records.problem_count - len(records.problems)
        report.duplicates = records.duplicates
        report.conflicts = records.conflicts
    return report


def _add(
    totals: Totals,
    record: Mapping[str, Any],
    cost: Decimal,
    is_call: bool,
    failed: bool,
    *,
    money: bool,
) -> None:
    if is_call:
        totals.calls += 1
        totals.errors += failed
    else:
        totals.attempts += 1
        totals.attempt_cost += cost
    if money:
        totals.cost += cost
        totals.add_tokens(record)


_COLUMNS = ("calls", "attempts", "errors", "cost", "input_tokens", "output_tokens")
_CSV_COLUMNS = (
    "dimension",
    "key",
    "calls",
    "attempts",
    "errors",
    "cost",
    "attempt_cost",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


# A name holding a newline or tab (metadata comes from callers) would break the table's rows
# and columns, a C1 control (0x9b is CSI) can start a terminal escape sequence, and a
# bidirectional control (U+202E) reorders what follows it on the line, so that a name could
# make another row's figures read differently; the table shows such characters escaped (json
# and csv keep them as they are).
_BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_CONTROL_ESCAPES = {
    **{
        code: (
            "\\n"
            if code == 10
            else "\\t"
            if code == 9
            else "\\r"
            if code == 13
            else f"\\x{code:02x}"
        )
        for code in (*range(32), *range(127, 160))
    },
    **{code: f"\\u{code:04x}" for code in _BIDI_CONTROLS},
}


def _table(report: Report) -> str:
    sections: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
        ("total", [("all", report.total.as_dict())])
    ]
    for dim, groups in report.groups.items():
        sections.append((dim, [(k, t.as_dict()) for k, t in sorted(groups.items())]))
    lines: list[str] = []
    for dim, rows in sections:
        header = (dim, *_COLUMNS)
        body = [
            (key.translate(_CONTROL_ESCAPES), *(str(row[c]) for c in _COLUMNS)) for key, row in rows
        ]
        # Display width, not len(): a CJK name takes two columns a character, a combining
        # accent none.
        widths = [max(display_width(r[i]) for r in (header, *body)) for i in range(len(header))]
        if lines:
            lines.append("")
        lines.append(_row(header, widths))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(_row(row, widths) for row in body)
    footer = []
    if report.skipped:
        footer.append(f"{report.skipped} malformed or partial line(s) skipped")
    if report.duplicates:
        footer.append(f"{report.duplicates} duplicate receipt(s) read more than once, counted once")
    if report.conflicts:
        footer.append(
            f"{report.conflicts} conflicting receipt(s) left out: same identity as one read"
            " before, other content (the first one read counts)"
        )
    if footer:
        lines.append("")
        lines.extend(footer)
    return "\n".join(lines) + "\n"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """The name left-aligned, the figures right-aligned, each padded to its column."""
    return "  ".join(
        pad(cell, width, "left" if i == 0 else "right")
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


# A name a spreadsheet would run as a formula (=, +, -, @, or a tab or carriage return before
# one): metadata such as a user id comes from callers, and a CSV report is opened by people in
# spreadsheet programs. Such a name is written with a leading apostrophe, which they show as
# text (OWASP's advice on CSV injection); every other name is written as it is.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(name: str) -> str:
    """``name`` as a CSV cell a spreadsheet shows as text, never runs as a formula.

    Example:
        >>> spreadsheet_safe("=1+2")
        "'=1+2"
        >>> spreadsheet_safe("team-a")
        'team-a'
    """
    return "'" + name if name.startswith(_FORMULA_STARTS) else name


def _csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # csv quotes a field holding a line feed (the line terminator) but not a lone carriage
    # return, which readers take as a line break: rows with one quote every field.
    quoting_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(_CSV_COLUMNS)
    rows: list[tuple[str, str, Totals]] = [("total", "all", report.total)]
    for dim, groups in report.groups.items():
        rows.extend((dim, key, t) for key, t in sorted(groups.items()))
    for dim, key, totals in rows:
        data = totals.as_dict()
        row = [dim, spreadsheet_safe(key), *(data[c] for c in _CSV_COLUMNS[2:])]
        (quoting_all if "\r" in key else writer).writerow(row)
    return out.getvalue()


def format_report(report: Report, fmt: ReportFormat = "table") -> str:
    """Render a report as an aligned text table, JSON, or CSV (money as decimal strings).

    Example:
        >>> print(format_report(summarize([]), "csv").splitlines()[1])
        total,all,0,0,0,0.000000,0.000000,0,0,0,0,0
    """
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(report)
    if fmt == "table":
        return _table(report)
    raise ValueError(f"unknown report format {fmt!r}; choose table, json or csv")
