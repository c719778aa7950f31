"""Rendering a spend :class:`~policyroute.costs.report.Report`: an aligned text table, JSON or
CSV, money as decimal strings.

Names in a report (users, routes, models) come from callers' metadata, so each format keeps
them from doing harm where it is read: the table escapes control characters, CSV keeps a
spreadsheet from running a name as a formula.

Example:
    >>> from policyroute.costs.report import summarize
    >>> print(format_report(summarize([]), "csv").splitlines()[1])
    total,all,0,0,0,0.000000,0.000000,0,0,0,0,0,0,0
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from policyroute._display_width import display_width, pad

if TYPE_CHECKING:
    from policyroute.costs.report import Report, Totals

__all__ = ["ReportFormat", "format_report", "spreadsheet_safe"]

ReportFormat = Literal["table", "json", "csv"]


_COLUMNS = (
    "calls",
    "attempts",
    "errors",
    "cost",
    "input_tokens",
    "output_tokens",
    "refused",
    "cache_hits",
)
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
    "refused",
    # Last, so that a reader keyed on column places before it still reads them.
    "cache_hits",
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
        >>> from policyroute.costs.report import summarize
        >>> print(format_report(summarize([]), "csv").splitlines()[1])
        total,all,0,0,0,0.000000,0.000000,0,0,0,0,0,0,0
    """
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(report)
    if fmt == "table":
        return _table(report)
    raise ValueError(f"unknown report format {fmt!r}; choose table, json or csv")
