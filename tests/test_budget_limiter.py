"""Budget reservations and the adaptive concurrency limiter."""

from __future__ import annotations

import asyncio

import pytest

from evalkit.common.clock import ManualClock
from evalkit.common.errors import BudgetError
from evalkit.runner.budget import Budget, BudgetExhausted
from evalkit.runner.limiter import AdaptiveLimiter


def test_reservations_never_let_spending_pass_the_limit():
    async def scenario() -> Budget:
        budget = Budget(1.0)
        for actual in [0.3, 0.3, 0.3]:
            reservation = await budget.reserve(0.25)  # 0.275 with the margin
            await budget.settle(reservation, actual, 0.25)
        with pytest.raises(BudgetExhausted, match="budget of 1.0"):
            await budget.reserve(0.25)
        return budget

    budget = asyncio.run(scenario())
    assert budget.spent_rub == pytest.approx(0.9)
    assert budget.spent_rub <= budget.limit_rub


def test_router_charging_more_than_the_catalogue_raises_later_reservations():
    async def scenario() -> float:
        budget = Budget(10.0)
        reservation = await budget.reserve(1.0)
        await budget.settle(reservation, 2.0, 1.0)  # the router billed twice the estimate
        second = await budget.reserve(1.0)
        return second.amount

    assert asyncio.run(scenario()) == pytest.approx(2.0 * 1.1)


def test_a_reservation_waits_for_calls_in_flight_to_settle():
    async def scenario() -> list[str]:
        budget = Budget(1.0)
        events = []
        first = await budget.reserve(0.8)

        async def second() -> None:
            await budget.reserve(0.2)  # 0.22 does not fit beside 0.88 reserved
            events.append("second reserved")

        waiter = asyncio.create_task(second())
        for _ in range(3):  # let it run up to its wait: a few loop turns, not a span of wall time
            await asyncio.sleep(0)
        events.append("first settles")
        await budget.settle(first, 0.05, 0.8)
        await waiter
        return events

    assert asyncio.run(scenario()) == ["first settles", "second reserved"]


def test_negative_budget_is_refused():
    with pytest.raises(BudgetError, match="≥ 0"):
        Budget(-1)


def test_limiter_halves_on_rate_limit_once_per_cooldown_and_recovers():
    clock = ManualClock()
    limiter = AdaptiveLimiter(16, cooldown_s=60, clock=clock)
    assert limiter.on_rate_limited()
    assert limiter.limit == 8
    clock.advance(59.9)
    assert not limiter.on_rate_limited()  # the same burst
    clock.advance(0.1)
    assert limiter.on_rate_limited() and limiter.limit == 4  # a new signal after the cooldown
    clock.advance(60)
    assert limiter.on_rate_limited() and limiter.limit == 2
    for _ in range(sum(range(2, 16))):
        limiter.on_success()
    assert limiter.limit == 16
    assert not limiter.backing_off


def test_limiter_bounds_concurrency():
    async def scenario() -> int:
        limiter = AdaptiveLimiter(3)
        peak = 0

        async def job() -> None:
            nonlocal peak
            await limiter.acquire()
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0)  # yield, so that the others pile up behind the limit
            limiter.release()

        await asyncio.gather(*(job() for _ in range(20)))
        return peak

    assert asyncio.run(scenario()) == 3
    with pytest.raises(ValueError):
        AdaptiveLimiter(0)


def test_one_attempt_settles_the_limiter_and_the_budget_together():
    from evalkit.client import CallRecord
    from evalkit.runner.attempt import Attempts

    async def scenario() -> tuple[Budget, AdaptiveLimiter, list[float]]:
        budget, limiter = Budget(10.0), AdaptiveLimiter(4, clock=ManualClock())
        attempts = Attempts(budget, limiter, 1.0, lambda record: 0.5)
        left = []
        await attempts.begin()
        assert (limiter.in_flight, budget.reserved_rub) == (1, pytest.approx(1.1))
        left.append(await attempts.end(CallRecord(error="rate_limit")))  # no cost: nothing billed
        await attempts.begin()
        left.append(await attempts.end(CallRecord(error="timeout")))  # may be billed, cost unknown
        await attempts.begin()
        left.append(await attempts.end(CallRecord(output="4", cost_rub=0.75)))
        return budget, limiter, left

    budget, limiter, left = asyncio.run(scenario())
    assert limiter.in_flight == 0 and limiter.limit == 2  # the 429 halved it; one success is not 2 yet
    assert budget.reserved_rub == 0.0
    # the 429 and the timeout each settle at the estimate; the timeout keeps the rest of its worst case
    assert left == [0.0, pytest.approx(0.5), 0.0]
    assert budget.spent_rub == pytest.approx(0.5 + 0.5 + 0.75)
    assert budget.unconfirmed_rub == pytest.approx(0.5)


def test_every_attempt_is_settled_through_the_one_helper():
    """The scheduler, the judge and the Ray treasury must not grow their own copies of the feedback."""
    from pathlib import Path

    import evalkit.runner as runner

    root = Path(runner.__file__).parent
    for name in ("scheduler.py", "judging.py", "ray_executor.py"):
        text = (root / name).read_text(encoding="utf-8")
        for hook in ("on_rate_limited(", "on_success(", "budget.settle(reservation, actual"):
            assert hook not in text, f"{name} calls {hook} itself instead of runner/attempt.py"
