"""The injectable clock: virtual time for retries, backoff, the limiter and deadlines, so that tests
never sleep for real and never judge wall time."""

from __future__ import annotations

import asyncio

import pytest

import evalkit
from evalkit.common.clock import ManualClock
from evalkit.task.spec import Sample, Task


def test_an_autojumping_sleep_moves_time_and_returns_at_once():
    clock = ManualClock()
    asyncio.run(clock.sleep(30))
    assert clock.now == 30 and clock.slept == [30] and clock.time() == 1_700_000_030


def test_a_manual_sleep_waits_for_advance_in_order():
    async def scenario() -> list[str]:
        clock = ManualClock(autojump=False)
        woke: list[str] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(name)

        tasks = [asyncio.create_task(sleeper("late", 2)), asyncio.create_task(sleeper("early", 1))]
        await asyncio.sleep(0)
        clock.advance(0.5)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(2)
        await asyncio.gather(*tasks)
        return woke

    assert asyncio.run(scenario()) == ["early", "late"]


def test_a_deadline_fires_when_the_clock_passes_it_and_not_after_its_body_ended():
    async def scenario() -> None:
        clock = ManualClock(autojump=False)
        never = asyncio.Event()

        async def bounded() -> None:
            async with clock.timeout(5):
                await never.wait()

        task = asyncio.create_task(bounded())
        await asyncio.sleep(0)
        clock.advance(4.9)
        await asyncio.sleep(0)
        assert not task.done()
        clock.advance(0.1)
        with pytest.raises(TimeoutError):
            await task
        async with clock.timeout(1):  # a body that ends in time: its timer is dead afterwards
            pass
        clock.advance(10)
        await asyncio.sleep(0)

    asyncio.run(scenario())


def test_a_run_backs_off_on_the_injected_clock(tmp_path):
    """Under a 429 storm every backoff wait is virtual: the run spends no real time sleeping."""
    samples = [Sample(id=f"q{i}", input=f"What is {i} + 1?", target=[str(i + 1)]) for i in range(8)]
    task = Task(name="arith", family="qa", samples=samples, scorer="numeric", generation={"max_tokens": 32})
    clock = ManualClock()
    result = evalkit.run([task], ["sim/small-fast"], sim=True, sim_latency_scale=0, sim_faults="rate_limit=0.5",
                         out=str(tmp_path), progress=False, clock=clock, retry_base_delay_s=5.0, max_attempts=8)  # fmt: skip
    assert result.status == "completed", result.message
    assert clock.slept and sum(clock.slept) == pytest.approx(clock.now)  # ~tens of virtual seconds
    assert result.df.error.isna().all()
