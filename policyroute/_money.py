"""Decimal contexts for amounts of money, whatever context the application sets.

An application may lower ``decimal.getcontext().prec`` for its own arithmetic. policyroute's
amounts must not follow it: a worst case or a charge rounded down, or a limit rounded up, is an
overspend, and writing a dollar to nano-dollars needs more digits than a low precision has. So
arithmetic on prices, costs and budget amounts runs in :data:`EXACT` (``with
localcontext(EXACT)``, or its methods), never in the thread's context.

Example:
    >>> from decimal import Decimal, localcontext
    >>> with localcontext() as app:
    ...     app.prec = 3
    ...     Decimal("1.23456789") + Decimal("0.000000001")
    Decimal('1.23')
    >>> EXACT.add(Decimal("1.23456789"), Decimal("0.000000001"))
    Decimal('1.234567891')
"""

from __future__ import annotations

import decimal
from decimal import Context

__all__ = ["EXACT", "WIDE"]

EXACT = Context(prec=60)
"""Exact for any amount policyroute handles: 60 digits hold any amount a budget store can
(2**63 nano-dollars is 19 digits) and a per-token price's decimals, multiplied by a token
count, to spare."""

WIDE = Context(prec=400, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
"""Wide enough to quantise any float to nano-dollars (4.4e24 USD at 1e-9 needs 34 digits), so
that a corrupt figure from a provider is reported, not raised as ``InvalidOperation``."""
