"""One paid call's attempts against the run's ₽ budget and concurrency limit.

Every attempt goes the same way, whoever sends it (a model's call in the scheduler, a judge's call, a
node's call through the Ray treasury): before it is sent its worst case is reserved and a concurrency
slot taken; when it ends the slot is freed, the limiter hears how it went (a 429 halves the limit, a
success grows it back), and the reservation is settled against the router's `usage.cost`, or our
estimate when the router said nothing. One place, so the paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalkit.client import CallRecord
    from evalkit.runner.budget import Budget, Reservation
    from evalkit.runner.limiter import AdaptiveLimiter


async def settle_attempt(
    budget: Budget,
    limiter: AdaptiveLimiter,
    reservation: Reservation,
    *,
    error: str | None,
    actual_rub: float | None,
    estimated_rub: float | None,
    possibly_billed: bool,
    holds_slot: bool = True,
) -> float:
    """Free the attempt's slot (when it got one), tell the limiter how it went, and settle its
    reservation; returns the ₽ left unconfirmed (an attempt that may be billed, cost unknown)."""
    if holds_slot:
        limiter.release()
    if error == "rate_limit":
        limiter.on_rate_limited()
    elif error is None:
        limiter.on_success()
    return await budget.settle(reservation, actual_rub, estimated_rub, possibly_billed=possibly_billed)


class Attempts:
    """The attempts of one call in this process: `begin` before each, `end` after each (the client's
    `before_attempt` / `after_attempt` hooks call them)."""

    def __init__(
        self,
        budget: Budget,
        limiter: AdaptiveLimiter,
        worst_rub: float,
        estimate: Callable[[CallRecord], float | None],
    ) -> None:
        self.budget = budget
        self.limiter = limiter
        self.worst_rub = worst_rub
        self.estimate = estimate
        self._open: list[Reservation] = []

    async def begin(self) -> None:
        """Reserve the worst case (waiting for room; BudgetExhausted when there never is), then a slot."""
        self._open.append(await self.budget.reserve(self.worst_rub))
        await self.limiter.acquire()

    async def end(self, record: CallRecord) -> float:
        """Settle the attempt `record` describes; returns the ₽ it left unconfirmed."""
        from evalkit.runner.budget import possibly_billed

        estimated = self.estimate(record)
        return await settle_attempt(
            self.budget,
            self.limiter,
            self._open.pop(),
            error=record.error,
            actual_rub=record.cost_rub,
            estimated_rub=estimated,
            possibly_billed=possibly_billed(record.error, record.cost_rub, estimated),
        )
