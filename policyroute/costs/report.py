"""Spend reports from receipt files: totals and counts by provider, model, route, user, ...

Where each figure comes from:

- **Money** is summed as :class:`~decimal.Decimal` from the receipts' decimal strings, so no
  float rounding drifts in. The totals and the ``route``, ``user``, ``day``, ``policy`` and
  ``status`` breakdowns sum **call** receipts (one per call, the sum of its attempts). The
  ``provider``, ``model``, ``deployment`` and ``budget`` breakdowns sum **attempt** receipts,
  because a call that fell over from one model to another spent money on both and only the
  attempts say how much on each.
- **Calls** count call receipts; **attempts** count attempt receipts. Only attempts name the
  budgets they charged, so a ``budget``'s calls are the distinct calls (request ids) with an
  attempt that charged it; an attempt receipt without a request id counts as a call of its own.
  An attempt counts once under each budget it charged, also when it charged several of its
  lines (a ``per: tags`` budget charges one per tag, and the receipt names each).
- **Refused** counts the calls a budget refused (call receipts with status ``refused``; they
  are among the ``errors`` too). Under ``budget``, a refused call counts under the budget its
  receipt's ``refused_by`` names, and only there: it charged nothing.
- **Cache hits** counts the calls litellm answered from its response cache (call receipts
  with ``cache_hit: true``): they reached no provider and cost nothing, and are among the
  ``calls``. Under ``budget``, the attempts that were cache hits count, as only attempts name
  the budgets they charged (such an attempt answers its call: one per call).
- A **day** is the UTC day of the receipt's ``ts`` (a timestamp written with another offset
  is moved to UTC first).
- ``attempt_cost`` is the sum over attempt receipts. It equals ``cost`` unless call receipts
  are missing (a process killed between an attempt and the end of its call).
- **Each receipt counts once**: read through :func:`load_receipts`, a receipt found in more
  than one input (overlapping rotated files, a JSON-lines file and the SQLite database of the
  same writer) is added up once; ``duplicates`` counts the copies dropped. A record with the
  identity of one read earlier (kind, ``request_id`` and attempt number) but other content
  is a conflict: the first one read counts, and the other is named among the problems and
  counted in ``conflicts``. :func:`summarize` holds any other iterable of records to the same
  rule (:mod:`policyroute.costs.receipt_identity` tells the copies apart in both), so a list
  of records sums as ``policyroute receipts report`` would sum the files they came from.

Reading the files (gzip included) and accounting for every line that cannot be added up is
:mod:`policyroute.costs.receipt_files`, rendering a report as a table, JSON or CSV is
:mod:`policyroute.costs.report_format`; their names are re-exported here.

Example:
    >>> records = load_receipts(["receipts/2026-01-02.jsonl"])  # doctest: +SKIP
    >>> print(format_report(summarize(records, by=["model", "day"])))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from policyroute.costs.receipt_checks import parse_amount, receipt_problem
from policyroute.costs.receipt_files import MAX_PROBLEMS, LineProblem, ReceiptStream, load_receipts
from policyroute.costs.receipt_identity import ReceiptDeduplicator, conflict_reason
from policyroute.costs.receipt_json import utc_date, utf8_safe
from policyroute.costs.report_format import ReportFormat, format_report

__all__ = [
    "DIMENSIONS",
    "RECORDS",
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
_SPECIAL = frozenset({"day", "budget"})  # dimensions whose keys are not a field's value
_NONE = "(none)"


@dataclass(slots=True)
class Totals:
    """Counts and sums for one group (or for everything)."""

    calls: int = 0
    attempts: int = 0
    errors: int = 0
    refused: int = 0
    cache_hits: int = 0
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
            "refused": self.refused,
            "cache_hits": self.cache_hits,
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
            # A file name of bytes that are not UTF-8 holds lone surrogates, which JSON would
            # carry as "\udce9" escapes strict readers refuse: spelled as every other name in
            # the output is (see utf8_safe), so one file has one spelling.
            "problems": [
                {
                    "file": utf8_safe(p.file),
                    "line": p.line,
                    "message": utf8_safe(p.message),
                    "partial": p.partial,
                }
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
    # A lone surrogate (a "\ud800" escape from a writer that cut a character in two) cannot
    # be printed as UTF-8: it failed the whole table or CSV report. It is spelled as the
    # receipt writers spell it (see utf8_safe), so both copies of a name group together.
    if dim not in _SPECIAL:
        value = record.get(dim)
        if type(value) is str and value.isascii():  # most names: the key is the value
            return [value or _NONE]
    return [utf8_safe(key) for key in _raw_keys(record, dim)]


def _raw_keys(record: Mapping[str, Any], dim: str) -> list[str]:
    if dim == "day":
        ts = record.get("ts")
        return [(utc_date(ts) or ts[:10] or _NONE) if isinstance(ts, str) else _NONE]
    if dim == "budget":
        budgets = record.get("budgets")
        if not isinstance(budgets, list):
            budgets = []
        names = [str(b.get("budget")) for b in budgets if isinstance(b, Mapping)]
        # A budget charged on several lines (``per: tags``, a line per tag) is named once a
        # line; the attempt spent its cost once, so it counts once under that budget.
        return list(dict.fromkeys(names)) or [_NONE]
    value = record.get(dim)
    return [_NONE if value is None or value == "" else str(value)]


RECORDS = "<records>"
"""The ``file`` of a :class:`LineProblem` about a record :func:`summarize` was handed directly
(its ``line`` is the record's place among them, counting from 1)."""


def summarize(
    records: Iterable[Mapping[str, Any]], by: Sequence[str] = (), *, dedupe: bool = True
) -> Report:
    """Add up receipt records, overall and per value of each dimension in ``by``.

    Each receipt counts once, as in ``policyroute receipts report``: a record with the
    identity of one added before (its kind, ``request_id`` and attempt number; see
    :mod:`policyroute.costs.receipt_identity`) is left out. An exact copy is counted in
    ``duplicates``; one with other content in ``conflicts``, and it is described among the
    ``problems`` (file :data:`RECORDS`, line its place among ``records``): the first one
    counts. A record without an identity is always added. A :class:`ReceiptStream` drops
    copies itself as it reads (unless made with ``dedupe=False``), so its counts are taken
    as they are and nothing more is remembered; ``dedupe=False`` adds up every record given.

    Example:
        >>> report = summarize([{"kind": "call", "cost": "0.5", "model": "m"}], by=["model"])
        >>> report.total.cost, report.groups["model"]["m"].calls
        (Decimal('0.5'), 1)
        >>> call = {"kind": "call", "request_id": "r1", "cost": "0.5"}
        >>> report = summarize([call, dict(call)])
        >>> report.total.cost, report.duplicates
        (Decimal('0.5'), 1)
    """
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown report dimension(s) {unknown}; choose from {DIMENSIONS}")
    report = Report(by=tuple(by), groups={dim: {} for dim in by})
    is_stream = isinstance(records, ReceiptStream)
    seen = ReceiptDeduplicator() if dedupe and not is_stream else None
    problems: list[LineProblem] = []
    # per budget, the request ids of the calls that charged it (attempts carry no call count)
    budget_calls: dict[str, set[str | int]] | None = {} if "budget" in report.groups else None
    # Each dimension once: its groups, and whether attempts (not calls) bring its money.
    dims = [(dim, groups, dim in _FROM_ATTEMPTS) for dim, groups in report.groups.items()]
    total = report.total
    for place, record in enumerate(records, start=1):
        kind = record.get("kind")
        if kind not in ("call", "attempt"):
            continue
        found = "new" if seen is None else seen.check(record)
        if found == "duplicate":
            report.duplicates += 1
            continue
        if found == "conflict":
            report.conflicts += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(LineProblem(RECORDS, place, conflict_reason(record)))
            else:
                report.problems_left_out += 1
            continue
        is_call = kind == "call"
        # The exact figure where the receipt has one: 6-place roundings drift when summed.
        exact = record.get("cost_exact")
        cost = _money(record.get("cost") if exact is None else exact)
        status = record.get("status")
        failed = status != "ok"
        refused = is_call and status == "refused"
        cache_hit = record.get("cache_hit") is True
        # The token counts are read once, for every group that adds up this record's money.
        tokens = _tokens(record)
        for dim, groups, from_attempts in dims:
            if is_call and dim == "budget":
                # only attempts carry the budgets they charged; a refusal names its budget
                if refused:
                    _note_refusal(groups, record)
                continue
            keys = _keys(record, dim)
            money = tokens if from_attempts != is_call else None
            # a call's hit, or under ``budget`` (attempts only) the attempt's
            hit = cache_hit and (is_call or dim == "budget")
            for key in keys:
                totals = groups.get(key)
                if totals is None:
                    totals = groups[key] = Totals()
                _add(totals, cost, is_call, failed, money, refused, hit)
            if budget_calls is not None and dim == "budget":
                _note_budget_calls(budget_calls, record, place, keys)
        _add(
            total,
            cost,
            is_call,
            failed,
            tokens if is_call else None,
            refused,
            cache_hit and is_call,
        )
    if budget_calls is not None:
        for key, calls in budget_calls.items():
            report.groups["budget"][key].calls = len(calls)
    report.problems = tuple(problems)
    if isinstance(records, ReceiptStream):
        report.skipped = records.skipped
        report.problems = tuple(records.problems)
        report.problems_left_out = records.problem_count - len(records.problems)
        report.duplicates = records.duplicates
        report.conflicts = records.conflicts
    return report


def _note_budget_calls(
    calls: dict[str, set[str | int]], attempt: Mapping[str, Any], place: int, keys: list[str]
) -> None:
    """Note the attempt's call under each budget it charged (``keys``, the keys its totals
    went to)."""
    request_id = attempt.get("request_id")
    # an attempt without a request id is a call of its own: its place among the records
    # (a number, so never equal to a request id) stands in
    call: str | int = request_id if isinstance(request_id, str) and request_id else place
    for key in dict.fromkeys(keys):
        calls.setdefault(key, set()).add(call)


def _note_refusal(groups: dict[str, Totals], call: Mapping[str, Any]) -> None:
    """Count a refused call under the budget its ``refused_by`` names (``(none)`` when it
    names none: a receipt from before the field, or a refusal by something else)."""
    refused_by = call.get("refused_by")
    budget = refused_by.get("budget") if isinstance(refused_by, Mapping) else None
    # Spelled as _keys spells the budgets attempts charged, so the two share a group.
    key = utf8_safe(budget) if isinstance(budget, str) else _NONE
    totals = groups.get(key)
    if totals is None:
        totals = groups[key] = Totals()
    totals.refused += 1


_Tokens = tuple[int, int, int, int, int]


def _tokens(record: Mapping[str, Any]) -> _Tokens:
    """The record's token counts in :class:`Totals`' order, read as :meth:`Totals.add_tokens`
    reads them (anything but a whole number counts 0)."""
    get = record.get
    counts = (
        get("input_tokens"),
        get("output_tokens"),
        get("cache_read_tokens"),
        get("cache_write_tokens"),
        get("reasoning_tokens"),
    )
    for count in counts:
        if type(count) is not int:  # unusual: read each as add_tokens does
            a, b, c, d, e = counts
            return (_int(a), _int(b), _int(c), _int(d), _int(e))
    return counts  # type: ignore[return-value]


def _add(
    totals: Totals,
    cost: Decimal,
    is_call: bool,
    failed: bool,
    tokens: _Tokens | None,
    refused: bool = False,
    cache_hit: bool = False,
) -> None:
    """Count the record in ``totals``, and with ``tokens`` its money and tokens too.

    ``cache_hit`` counts a call's cache hit; an attempt's counts only where it is given (under
    ``budget``, whose calls only attempts tell).
    """
    totals.cache_hits += cache_hit
    if is_call:
        totals.calls += 1
        totals.errors += failed
        totals.refused += refused
    else:
        totals.attempts += 1
        totals.attempt_cost += cost
    if tokens is not None:
        totals.cost += cost
        totals.input_tokens += tokens[0]
        totals.output_tokens += tokens[1]
        totals.cache_read_tokens += tokens[2]
        totals.cache_write_tokens += tokens[3]
        totals.reasoning_tokens += tokens[4]
