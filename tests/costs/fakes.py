"""A fake budget guard: records what accounting asks of it and answers from a script."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from policyroute.budgets.guard import BudgetCharge
from policyroute.execution.hooks import Admission, AttemptInfo


@dataclass
class FakeGuard:
    """Reserves ``estimate`` per attempt; ``settle`` spends and reports crossings of 50%."""

    limit: Decimal = Decimal("0.01")
    estimate: Decimal = Decimal("0.005")
    spent: Decimal = Decimal(0)
    admitted: list[AttemptInfo] = field(default_factory=list)
    settled: list[tuple[Admission, Decimal]] = field(default_factory=list)

    def admit(self, attempt: AttemptInfo) -> Admission:
        self.admitted.append(attempt)
        return Admission(params=attempt.params, estimate=self.estimate, handle=len(self.admitted))

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        return self.admit(attempt)

    def settle(self, admission: Admission, actual_cost: Decimal) -> tuple[BudgetCharge, ...]:
        self.settled.append((admission, actual_cost))
        before = self.spent
        self.spent += actual_cost
        crossed = tuple(
            t for t in (0.5, 0.9) if before < self.limit * Decimal(str(t)) <= self.spent
        )
        return (
            BudgetCharge(
                budget="per-user-daily",
                scope="u-1",
                window="day",
                limit=self.limit,
                spent_after=self.spent,
                reserved_after=Decimal(0),
                thresholds_crossed=crossed,
            ),
        )

    async def asettle(self, admission: Admission, actual_cost: Decimal) -> tuple[BudgetCharge, ...]:
        return self.settle(admission, actual_cost)
