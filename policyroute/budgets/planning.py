"""Which budget lines an attempt reserves on, and its worst-case estimate.

For each budget in scope of the route an attempt is charged as, one line per scope value
(``per: tags`` with three tags is three lines) in the budget's current window; and the
attempt's worst-case cost (:func:`~policyroute.costs.estimate.worst_case`), which must be
priced for any budget to be enforced.

Example:
    >>> planner = LinePlanner(policy)  # doctest: +SKIP
    >>> lines, estimate = planner.plan(attempt, route="default")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from policyroute.budgets.charges import ReservedLine
from policyroute.budgets.windows import Window, line_key, scope_values, window_for
from policyroute.costs.estimate import Estimate, worst_case
from policyroute.errors import BudgetError
from policyroute.execution.hooks import AttemptInfo

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.model import BudgetSpec

__all__ = ["LinePlanner"]

# Lines kept for reuse within their window (one per budget and scope value in use).
_LINE_MEMORY = 4096


class LinePlanner:
    """Plans an attempt's reservation: its lines and its worst-case estimate.

    Args:
        policy: the compiled policy (its budgets and ``defaults.max_tokens``).
        clock: seconds since the epoch, for the windows.
        token_counter: replaces ``litellm.token_counter`` when estimating.
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        *,
        clock: Callable[[], float] = time.time,
        token_counter: Callable[..., int] | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._token_counter = token_counter
        self._default_max_tokens = policy.defaults.max_tokens
        # (budget, scope, window key) -> its line; see _line. A plain dict: a race between
        # threads at worst makes a line twice, and the lines are immutable.
        self._lines: dict[tuple[str, str, str], ReservedLine] = {}

    def plan(
        self, attempt: AttemptInfo, route: str
    ) -> tuple[tuple[ReservedLine, ...], Estimate] | None:
        """The lines and the estimate of ``attempt`` charged as ``route``; ``None`` when no
        budget is in scope. Raises :class:`~policyroute.errors.BudgetError` when the attempt
        cannot be priced."""
        decision = attempt.call.decision
        in_scope = decision.budgets if route == decision.route else self.policy.budgets_for(route)
        budgets = [b for b in in_scope if b.routes is None or route in b.routes]
        if not budgets:
            return None
        candidate = attempt.candidate
        estimate = worst_case(
            attempt.call.request,
            candidate,
            attempt.params,
            default_max_tokens=self._default_max_tokens,
            token_counter=self._token_counter,
        )
        if not estimate.priced:
            names = ", ".join(repr(b.name) for b in budgets)
            raise BudgetError(
                f"cannot enforce budget(s) {names}: {estimate.problem}; "
                + _remedy(estimate, candidate.alias)
            )
        now = self._clock()
        lines: list[ReservedLine] = []
        for budget in budgets:
            window = window_for(budget.window, now)
            scopes = scope_values(
                budget.per, attempt.call.request, route=route, model=candidate.alias
            )
            lines.extend(self._line(budget, scope, window) for scope in scopes)
        return tuple(lines), estimate

    def _line(self, budget: BudgetSpec, scope: str, window: Window) -> ReservedLine:
        """The line of ``budget`` and ``scope`` in ``window``, made once per window.

        Calendar windows are one object for as long as they last (``window_for`` keeps the
        current one), so a cached line is reused only while its budget and window are the very
        objects asked for: a new window (the day rolled over) or a rolling one (a new object
        each call) makes a new line.
        """
        cache_key = (budget.name, scope, window.key)
        cached = self._lines.get(cache_key)
        if cached is not None and cached.window is window and cached.budget is budget:
            return cached
        line = ReservedLine(budget, scope, window, line_key(budget.name, scope, window.key))
        if window.bucket_seconds is None:
            if len(self._lines) >= _LINE_MEMORY:
                self._lines.clear()
            self._lines[cache_key] = line
        return line


def _remedy(estimate: Estimate, alias: str) -> str:
    """What would let the guard bound ``estimate``: only what it lacks.

    Example:
        >>> from decimal import Decimal
        >>> unbounded = Estimate(1, 0, Decimal(0), priced=False, missing=("output_bound",))
        >>> "price:" in _remedy(unbounded, "mini"), "max_tokens" in _remedy(unbounded, "mini")
        (False, True)
        >>> searching = Estimate(1, 9, Decimal(0), priced=False, missing=("server_tools",))
        >>> "max_server_tool_cost_usd" in _remedy(searching, "mini")
        True
    """
    remedies = []
    missing = set(estimate.missing)
    bound = "give max_tokens at the call or in the policy's defaults, or add `max_output_tokens:`"
    if missing >= {"price", "output_bound"}:
        remedies.append(
            f"add `price:` to model '{alias}' in the policy, and bound its output: {bound} to it"
        )
    elif "output_bound" in missing:
        remedies.append(f"{bound} to model '{alias}' in the policy")
    elif "price" in missing:
        remedies.append(f"add `price:` to model '{alias}' in the policy")
    if "server_tools" in missing:
        cap = (
            "add `max_server_tool_cost_usd:` (the most the server-side tools of one call can"
            " cost, in USD)"
        )
        remedies.append(
            f"{cap} to it"
            if remedies
            else f"{cap} to model '{alias}' in the policy, or call it without server-side tools"
        )
    return "; and ".join(remedies)
