"""What ``policyroute budget status`` prints: every budget of a policy, in its current window.

Every budget the policy declares yields at least one row, in policy order, so a budget that
is missing from the output is missing from the policy. Within a budget, rows are sorted by
scope. Each row carries a ``state``:

- ``charged``: the store holds this scope's line in the current window (spend, reservations,
  or both; a line whose reservations were all released shows zeros).
- ``idle``: nothing charged yet in the current window. A budget without ``per`` shows its one
  scope ``*``; a budget with ``per`` shows a single placeholder row whose scope reads
  ``<per metadata.user: none charged>`` (every scope then has the whole limit left). As soon
  as one scope is charged, the placeholder gives way to that scope's row.
- ``per-call``: a ``call`` window. Its limit bounds each call on its own and nothing is
  stored, so ``spent``, ``reserved`` and ``remaining`` do not apply: ``None`` on the row,
  ``null`` in JSON, an empty field in CSV, ``n/a`` in the table. Its scope reads
  ``<each call>`` and its window ``call``.

Lines an earlier version of the policy left in the store are not rows: those of another window
(the budget's was ``day``, now ``month``) and, for a budget without ``per``, those of any scope
but ``*`` (the budget had a ``per``). A ``per`` budget shows a ``*`` line (from when it had
none) as a scope, as a call whose scope value is ``*`` charges that line.

``expired`` is the part of ``reserved`` held by reservations whose lease ran out: the process
that made them died (or hung past ``store.lease``) before settling. Status shows them apart
rather than reclaiming them, because reporting must not change what it reports: reclaiming
charges each one its worst case as spend and may fire ``warn_at`` thresholds that nobody would
then be told about (no receipt, no callback). The next reservation made on the store reclaims
them; until then they are counted, exactly as a reservation would count them, so ``remaining``
is what the next call can have either way (a reclaimed amount moves from ``reserved`` to
``spent``). A non-zero ``expired`` that persists means nothing is reserving on that store.

A SQLite store's file is read as it is
(:class:`~policyroute.budgets.stores.sqlite_readonly.ReadOnlySQLiteLines`), whether or not this
process may write it (a monitoring account's view of a service's store): no tables are created
in it and its write lock is not taken, so a busy writer does not hold the status up. A file
that is no budget store (another application's SQLite database, or no SQLite database at all)
is refused with :class:`~policyroute.errors.BudgetStoreError` naming it, and so is a
``store.path`` naming a directory, a pipe or a device, none of which is opened. Only a store of an
earlier policyroute version that this process may write is opened as a store, which migrates
it as the next call would: that waits at most ``store.lock_timeout`` for another process's
write lock, then fails with :class:`~policyroute.errors.BudgetStoreError` naming the file and
the wait.

Amounts are exact decimal strings in JSON and CSV. JSON and CSV also carry ``per`` (the
budget's ``per`` expression; ``null`` in JSON, empty in CSV for a budget without one); the
table leaves it out, the scope placeholder naming it where it matters. JSON keeps each scope
exactly; CSV writes a scope a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``)
with a leading apostrophe, as ``receipts report`` does.

Example:
    >>> rows = budget_status(policy, MemoryStore(), now=0.0)  # doctest: +SKIP
    >>> print(format_status(rows, "csv"))                      # doctest: +SKIP
    budget,scope,window,limit,spent,reserved,expired,remaining,per,state
    team-daily,*,day:1970-01-01,10,0,0,0,10,,idle
    users,<per metadata.user: none charged>,day:1970-01-01,1,0,0,0,1,metadata.user,idle
    per-call,<each call>,call,0.5,,,,,,per-call
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from policyroute._display_width import display_width, pad
from policyroute._money import EXACT
from policyroute.budgets.stores import BudgetStore, open_store
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.budgets.stores.sqlite_readonly import ReadOnlySQLiteLines, current_lines
from policyroute.budgets.windows import GLOBAL_SCOPE, budget_prefix, parse_line_key, window_for
from policyroute.costs.report_format import spreadsheet_safe
from policyroute.errors import BudgetStoreError

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.model import BudgetSpec

__all__ = [
    "EACH_CALL_SCOPE",
    "BudgetState",
    "BudgetStatusRow",
    "budget_status",
    "format_status",
    "idle_scope",
]

BudgetState = Literal["charged", "idle", "per-call"]

EACH_CALL_SCOPE = "<each call>"

_COLUMNS = (
    "budget",
    "scope",
    "window",
    "limit",
    "spent",
    "reserved",
    "expired",
    "remaining",
    "per",
    "state",
)
# ``per`` is left out of the table to keep it narrow: an idle row's scope already names it.
_TABLE_COLUMNS = tuple(c for c in _COLUMNS if c != "per")
_NUMERIC = frozenset({"limit", "spent", "reserved", "expired", "remaining"})
_NOT_APPLICABLE = "n/a"


def idle_scope(per: str) -> str:
    """The scope shown for a ``per`` budget that no scope has been charged under yet.

    Example:
        >>> idle_scope("metadata.user")
        '<per metadata.user: none charged>'
    """
    return f"<per {per}: none charged>"


def _printable(text: str) -> str:
    r"""``text`` for one table cell: control characters escaped, an empty scope shown as ``""``.

    Scopes come from request metadata: a newline would split a row, and an escape sequence
    would reach the operator's terminal. JSON keeps the exact text (CSV too, but for the
    apostrophe before a formula).

    Example:
        >>> _printable("a\nb"), _printable("")
        ('a\\nb', '""')
    """
    if not text:
        return '""'
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _amount(value: Decimal | None) -> str | None:
    """``value`` in plain notation: ``str`` writes an amount under 10^-6 with an exponent.

    Example:
        >>> _amount(Decimal("1E-7")), _amount(Decimal("20")), _amount(None)
        ('0.0000001', '20', None)
    """
    return None if value is None else f"{value:f}"


@dataclass(frozen=True, slots=True)
class BudgetStatusRow:
    """One budget line in its current window; amounts in USD.

    ``spent``, ``reserved``, ``expired`` and ``remaining`` are ``None`` exactly when
    ``state`` is ``"per-call"``: a ``call`` budget keeps no running spend. ``expired`` is the
    part of ``reserved`` whose lease ran out (see the module docstring).
    """

    budget: str
    scope: str
    window: str
    limit: Decimal
    spent: Decimal | None
    reserved: Decimal | None
    remaining: Decimal | None
    per: str | None = None
    state: BudgetState = "charged"
    expired: Decimal | None = None

    def __post_init__(self) -> None:
        # Left out, ``expired`` reads as none expired, except on a per-call row (not applicable).
        if self.expired is None and self.state != "per-call":
            object.__setattr__(self, "expired", Decimal(0))

    def as_json(self) -> dict[str, str | None]:
        """The row for JSON: amounts as exact decimal strings, ``None`` where not applicable.

        Example:
            >>> row = BudgetStatusRow("c", EACH_CALL_SCOPE, "call", Decimal("0.5"), None, None,
            ...                       None, state="per-call")
            >>> row.as_json()["spent"] is None, row.as_json()["limit"]
            (True, '0.5')
        """
        return {
            "budget": self.budget,
            "scope": self.scope,
            "window": self.window,
            "limit": f"{self.limit:f}",
            "spent": _amount(self.spent),
            "reserved": _amount(self.reserved),
            "expired": _amount(self.expired),
            "remaining": _amount(self.remaining),
            "per": self.per,
            "state": self.state,
        }

    def as_strings(self) -> dict[str, str]:
        """The row for CSV: :meth:`as_json` with every ``None`` as an empty string.

        Example:
            >>> BudgetStatusRow("t", "*", "day:2025-01-01", Decimal(2), Decimal("0.5"),
            ...                 Decimal(0), Decimal("1.5"), state="charged").as_strings()["per"]
            ''
        """
        return {key: "" if value is None else value for key, value in self.as_json().items()}


_Lines = BudgetStore | ReadOnlySQLiteLines


def _open_for_reading(policy: CompiledPolicy) -> _Lines:
    """The policy's store; an empty one where its SQLite file does not exist yet, and a
    read-only view of a SQLite file that is a budget store needing no migration.

    Reporting must not create state: opening a SQLite store creates its file, and its tables
    in whatever file ``store.path`` names (a file that is no budget store is refused, naming
    it). Nor does it need to write: opening a SQLite store takes the write lock (to create or
    migrate its tables), which someone who may only read the file cannot take, and for which
    anyone else waits behind a busy writer. Only a file of an earlier layout, which this
    process may write, is opened as a store, which migrates it as the next call would.
    """
    spec = policy.spec.store
    # "~" as the store reads it (policyroute.budgets.stores.sqlite.SQLiteStore).
    if spec.backend == "sqlite":
        where = Path(os.path.expanduser(spec.path))
        if not where.exists():
            return MemoryStore()
        _refuse_non_file(where)
        lines = current_lines(spec.path, timeout=spec.lock_timeout)
        if lines is not None:
            return lines
    return open_store(spec)


def _refuse_non_file(where: Path) -> None:
    """Raise :class:`~policyroute.errors.BudgetStoreError` when ``where`` (which exists) is
    not a regular file: SQLite reads a folder as a disk I/O error, waits for ever on a pipe
    for a writer, and reads a device such as ``/dev/null`` as a store with no spend."""
    mode = where.stat().st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a pipe"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a device"
    raise BudgetStoreError(
        f"budget store {where.absolute()} is {kind}, not a SQLite file: check the policy's"
        " store.path"
    )


def _budget_rows(budget: BudgetSpec, store: _Lines, moment: float) -> list[BudgetStatusRow]:
    """The rows of one budget: never empty, sorted by scope."""
    if budget.window.kind == "call":
        return [
            BudgetStatusRow(
                budget.name,
                EACH_CALL_SCOPE,
                "call",
                budget.limit_usd,
                None,
                None,
                None,
                per=budget.per,
                state="per-call",
            )
        ]
    window = window_for(budget.window, moment)
    rows: list[BudgetStatusRow] = []
    for state in store.scan(budget_prefix(budget.name), now=moment):
        _, scope, window_key = parse_line_key(state.key)
        # Lines of earlier windows may outlive them in the store (until they expire).
        if window_key != window.key:
            continue
        # A budget without ``per`` charges only ``*``: another scope is a line an earlier
        # version of the policy charged when the budget had a ``per``, which no call counts now.
        if budget.per is None and scope != GLOBAL_SCOPE:
            continue
        with localcontext(EXACT):  # exact, whatever the application's decimal context
            left = max(Decimal(0), budget.limit_usd - state.spent - state.reserved)
        rows.append(
            BudgetStatusRow(
                budget.name,
                scope,
                window_key,
                budget.limit_usd,
                state.spent,
                state.reserved,
                left,
                per=budget.per,
                expired=state.expired,
            )
        )
    if rows:
        # The store sorts by percent-encoded key; people read decoded scopes.
        return sorted(rows, key=lambda row: row.scope)
    zero = Decimal(0)
    scope = GLOBAL_SCOPE if budget.per is None else idle_scope(budget.per)
    return [
        BudgetStatusRow(
            budget.name,
            scope,
            window.key,
            budget.limit_usd,
            zero,
            zero,
            budget.limit_usd,
            per=budget.per,
            state="idle",
        )
    ]


def budget_status(
    policy: CompiledPolicy, store: BudgetStore | None = None, *, now: float | None = None
) -> list[BudgetStatusRow]:
    """Every budget of ``policy`` in its current window: at least one row per budget.

    Rows come in policy order, then by scope; see the module docstring for the states and
    how a ``call`` budget and a ``per`` budget with no charged scope are shown. ``store``
    defaults to the one the policy's ``store:`` section describes (opened and closed here;
    a SQLite file that does not exist yet is not created, and one that exists is read without
    writing to it, or refused when it is no budget store).

    Example:
        >>> [r.state for r in budget_status(policy, MemoryStore(), now=0.0)]  # doctest: +SKIP
        ['idle', 'idle', 'per-call']
    """
    moment = time.time() if now is None else now
    own = store is None
    active: _Lines = _open_for_reading(policy) if store is None else store
    try:
        return [row for b in policy.spec.budgets for row in _budget_rows(b, active, moment)]
    finally:
        if own:
            active.close()


def _csv(cells: list[dict[str, str]]) -> str:
    """The rows as CSV, each scope a cell a spreadsheet shows as text.

    Scopes come from request metadata (a user id), and a CSV report is opened in spreadsheet
    programs: a scope starting with ``=``, ``+``, ``-`` or ``@`` would run as a formula, so it
    is written with a leading apostrophe, as ``receipts report`` writes its names. csv quotes a
    field holding a line feed but not a lone carriage return, which readers take as a line
    break: a row with one quotes every field.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n")
    quoting_all = csv.DictWriter(
        out, fieldnames=_COLUMNS, lineterminator="\n", quoting=csv.QUOTE_ALL
    )
    writer.writeheader()
    for cell in cells:
        safe = {**cell, "scope": spreadsheet_safe(cell["scope"])}
        (quoting_all if "\r" in cell["scope"] else writer).writerow(safe)
    return out.getvalue().rstrip("\n")


def format_status(
    rows: list[BudgetStatusRow], fmt: Literal["table", "json", "csv"] = "table"
) -> str:
    """Render rows as an aligned text table, a JSON array, or CSV (amounts exact).

    Example:
        >>> format_status([], "json")
        '[]'
        >>> row = BudgetStatusRow("c", EACH_CALL_SCOPE, "call", Decimal("0.5"), None, None,
        ...                       None, state="per-call")
        >>> print(format_status([row]))
        budget  scope        window  limit  spent  reserved  expired  remaining  state
        c       <each call>  call      0.5    n/a       n/a      n/a        n/a  per-call
    """
    if fmt == "json":
        return json.dumps([row.as_json() for row in rows], indent=2) if rows else "[]"
    cells = [row.as_strings() for row in rows]
    if fmt == "csv":
        return _csv(cells)
    if not cells:
        return "no budgets"
    shown = [
        {
            c: (cell[c] or _NOT_APPLICABLE) if c in _NUMERIC else _printable(cell[c])
            for c in _TABLE_COLUMNS
        }
        for cell in cells
    ]
    widths = {c: max(len(c), *(display_width(cell[c]) for cell in shown)) for c in _TABLE_COLUMNS}

    def line(values: dict[str, str]) -> str:
        parts = [
            pad(values[c], widths[c], "right" if c in _NUMERIC else "left") for c in _TABLE_COLUMNS
        ]
        return "  ".join(parts).rstrip()

    header = line({c: c for c in _TABLE_COLUMNS})
    return "\n".join([header, *(line(cell) for cell in shown)])
