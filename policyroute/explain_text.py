"""The text of ``policyroute explain``: an :class:`~policyroute.explain.Explanation` as a
person reads it in a terminal or a CI log.

:func:`render_text` lays out the route, the candidates as a table with their prices and worst
cases, the budgets charged and the routing trace; what the request brings into the text is made
printable and aligned by terminal columns. A :class:`TextStyle` sets headings and warnings
apart (the CLI passes its ANSI colours). Both are importable from :mod:`policyroute.explain`.

Example:
    >>> decimal_text(Decimal("0.0000001500"))
    '0.00000015'
    >>> print(render_text(ex))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from policyroute._display_width import display_width, pad, printable

if TYPE_CHECKING:
    from policyroute.explain import CandidateLine, Explanation

__all__ = ["TextStyle", "decimal_text", "render_text"]


def decimal_text(value: Decimal | None) -> str | None:
    """An amount as explain writes it in text and JSON alike: no trailing zeros and never in
    scientific notation (``None`` stays ``None``)."""
    if value is None:
        return None
    # normalize() drops trailing zeros; "f" keeps 1E-7 from turning into scientific notation
    return format(value.normalize(), "f")


def _usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${decimal_text(value)}"


def _worst_case(c: CandidateLine) -> str:
    """The worst-case cell: the cost, else what keeps it from being known."""
    if c.worst_case_cost is not None:
        if c.server_tool_cost is not None:
            return f"{_usd(c.worst_case_cost)} (incl. {_usd(c.server_tool_cost)} server tools)"
        return _usd(c.worst_case_cost)
    labels = {
        "price": "unpriced",
        "output_bound": "output unbounded",
        "server_tools": "server tools unbounded",
    }
    return ", ".join(labels.get(m, m) for m in c.missing) or "unpriced"


def _refusal(c: CandidateLine) -> str:
    """Why a call would send ``c`` nothing: the variables its endpoint or key reads."""
    reads = " and ".join(f"{u.field} reads ${{{u.variable}}}" for u in c.unset_env)
    which = "which is" if len(c.unset_env) == 1 else "which are"
    return (
        f"{c.alias} would be refused at call time: {reads}, {which} not set"
        " (every attempt on it fails as authentication, nothing sent)"
    )


def _tokens(c: CandidateLine) -> str:
    output = "?" if "output_bound" in c.missing else str(c.output_tokens)
    return f"{c.input_tokens}+{output}"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows aligned in columns, each cell made printable and measured in terminal columns
    (a CJK character takes two)."""
    cells = [[printable(cell) for cell in row] for row in rows]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        indent + "  ".join(pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class TextStyle(Protocol):
    """How :func:`render_text` sets parts of its text apart; the CLI passes its ANSI colours.

    Example:
        >>> class Shout:
        ...     def bold(self, text: str) -> str: return text.upper()
        ...     cyan = dim = yellow = bold
        >>> render_text(ex, style=Shout())  # doctest: +SKIP
    """

    def bold(self, text: str) -> str:
        """Headings."""
        ...

    def cyan(self, text: str) -> str:
        """The chosen route."""
        ...

    def dim(self, text: str) -> str:
        """Secondary detail."""
        ...

    def yellow(self, text: str) -> str:
        """Skipped deployments."""
        ...


def _unstyled(text: str) -> str:
    return text


class _Plain:
    """Text left as it is."""

    bold = cyan = dim = yellow = staticmethod(_unstyled)


def render_text(explanation: Explanation, *, style: TextStyle | None = None) -> str:
    """A human-readable rendering of ``explanation`` (emphasised as ``style`` says; plain text
    by default).
    """
    s = style or _Plain()
    ex = explanation
    out = [f"{s.bold('policy')}  {ex.policy}"]
    route = f"{s.bold('route')}   {s.cyan(ex.route)}"
    if ex.route_description:
        route += s.dim(f"  ({printable(ex.route_description)})")
    out.append(route)

    out.append(s.bold("candidates") + s.dim("  (tried in this order)"))
    if ex.candidates:
        rows = [["#", "alias", "model", "in $/Mtok", "out $/Mtok", "worst case", "tokens in+out"]]
        for i, c in enumerate(ex.candidates, 1):
            alias = c.alias if c.via is None else f"{c.alias} (via {c.via})"
            rows.append(
                [
                    str(i),
                    alias,
                    c.model,
                    decimal_text(c.input_per_mtok) or "?",
                    decimal_text(c.output_per_mtok) or "?",
                    _worst_case(c),
                    _tokens(c),
                ]
            )
        out.extend(_table(rows))
        out.extend(s.yellow(f"  {printable(_refusal(c))}") for c in ex.candidates if c.unset_env)
        if all(c.unset_env for c in ex.candidates):
            out.append(s.yellow("  no candidate can answer: a call would be refused on every one"))
    else:
        out.append("  (none)")
    out.extend(s.dim(f"  note: {printable(note)}") for note in ex.order_notes)

    if ex.params:
        items = ", ".join(f"{k}={_scalar(v)}" for k, v in ex.params.items())
        out.append(f"{s.bold('params')}  {printable(items)}")
    if ex.requirements:
        items = ", ".join(f"{k}={_scalar(v)}" for k, v in ex.requirements.items())
        out.append(f"{s.bold('requires')}  {items}")

    out.append(s.bold("budgets"))
    if ex.budgets:
        rows = []
        for b in ex.budgets:
            scope = "global" if b.per is None else f"{b.per}={b.scope or '(absent)'}"
            warn = ", ".join(f"{w:.0%}" for w in b.warn_at)
            rows.append(
                [
                    b.name,
                    scope,
                    f"{_usd(b.limit_usd)} per {b.window}",
                    f"warn at {warn}" if warn else "",
                    f"on exceed: {b.on_exceed}",
                ]
            )
        out.extend(_table(rows))
    else:
        out.append("  (none)")

    if ex.skipped:
        out.append(s.bold("skipped"))
        out.extend(f"  {s.yellow(alias)}: {printable(why)}" for alias, why in ex.skipped)

    out.append(s.bold("trace"))
    out.extend(f"  {printable(line)}" for line in ex.trace)
    return "\n".join(out)
