"""The ruble budget: reserve a call's worst case before sending it, settle with the real cost after.

The router's `usage.cost` can differ from the catalogue, so reservations are scaled by the highest
ratio of real to estimated cost seen so far (never below 1) plus a margin. A call is sent only if its
reservation fits; when nothing in flight could free room, the budget is exhausted.

An attempt that failed after the router may have started generating (a cut stream, a timeout) brings
no `usage.cost` back, yet may be billed. It keeps its worst case as `unconfirmed_rub`, which counts
against the ceiling like money spent: the ceiling holds whatever the router billed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from evalkit.client.errors import may_be_billed
from evalkit.common.errors import BudgetError

MARGIN = 1.1


class BudgetExhausted(BudgetError):
    """The next call's worst case does not fit in what is left of the budget."""


def possibly_billed(error: str | None, cost_rub: float | None, estimated_rub: float | None) -> bool:
    """Whether an attempt without a cost may still have been billed: one that failed after the router
    may have started generating, or a reply that came back with neither `usage.cost` nor token counts
    (it was billed; how much, nothing says, so its worst case stays committed)."""
    return may_be_billed(error) or (error is None and cost_rub is None and estimated_rub is None)


@dataclass
class Reservation:
    amount: float
    estimate: float


class Budget:
    """Tracks spent and reserved ₽ against an optional limit. Runs on one event loop (no locks)."""

    def __init__(self, limit_rub: float | None, spent_rub: float = 0.0, unconfirmed_rub: float = 0.0) -> None:
        if limit_rub is not None and limit_rub < 0:
            raise BudgetError(f"the budget must be ≥ 0 ₽, got {limit_rub}")
        self.limit_rub = limit_rub
        self.spent_rub = spent_rub
        self.unconfirmed_rub = unconfirmed_rub  # worst cases of attempts that may be billed, cost unknown
        self.reserved_rub = 0.0
        self._open = 0  # reservations not yet settled; float sums of reserved ₽ never return to exactly 0
        self._ratio = 1.0
        self._changed = asyncio.Condition()

    @property
    def remaining_rub(self) -> float | None:
        return None if self.limit_rub is None else self.limit_rub - self._committed - self.reserved_rub

    @property
    def _committed(self) -> float:
        return self.spent_rub + self.unconfirmed_rub

    async def reserve(self, worst_case_rub: float) -> Reservation:
        """Wait until the worst case fits; raise BudgetExhausted when it never can."""
        amount = worst_case_rub * self._ratio * MARGIN
        if self.limit_rub is None:
            return Reservation(0.0, worst_case_rub)
        async with self._changed:
            while self._committed + self.reserved_rub + amount > self.limit_rub:
                if self._open == 0:
                    unconfirmed = (
                        f" and up to {self.unconfirmed_rub:.6f} ₽ for cut calls the router reported no cost for"
                        if self.unconfirmed_rub
                        else ""
                    )
                    raise BudgetExhausted(
                        f"budget of {self.limit_rub} ₽ reached: spent {self.spent_rub:.6f} ₽{unconfirmed}, "
                        f"the next call may cost up to {amount:.6f} ₽"
                    )
                await self._changed.wait()
            self.reserved_rub += amount
            self._open += 1
        return Reservation(amount, worst_case_rub)

    async def settle(
        self,
        reservation: Reservation,
        actual_rub: float | None,
        estimated_rub: float | None,
        *,
        possibly_billed: bool = False,
    ) -> float:
        """Replace a reservation by what the call really cost (its estimate when the router said nothing).

        With `possibly_billed` and no cost from the router, the rest of the attempt's worst case stays
        committed as `unconfirmed_rub`; that amount is returned (0 otherwise)."""
        cost = actual_rub if actual_rub is not None else (estimated_rub or 0.0)
        unconfirmed = 0.0
        if actual_rub is None and possibly_billed:
            unconfirmed = max(0.0, reservation.estimate * self._ratio - cost)
            self.unconfirmed_rub += unconfirmed
        if actual_rub and estimated_rub:
            self._ratio = max(self._ratio, actual_rub / estimated_rub)
        if actual_rub and reservation.estimate and actual_rub > reservation.estimate:
            # billed past its worst case (thinking beyond max_tokens): later calls reserve as much
            self._ratio = max(self._ratio, actual_rub / reservation.estimate)
        self.spent_rub += cost
        if self.limit_rub is None:
            return unconfirmed
        async with self._changed:
            self._open -= 1
            self.reserved_rub = max(0.0, self.reserved_rub - reservation.amount) if self._open else 0.0
            self._changed.notify_all()
        return unconfirmed
