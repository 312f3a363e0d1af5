"""Adaptive concurrency (AIMD): halve on sustained 429s, grow back by one per window of successes."""

from __future__ import annotations

import asyncio
from collections import deque

from evalkit.common.clock import SYSTEM_CLOCK, Clock


class AdaptiveLimiter:
    """A semaphore whose limit moves between 1 and `maximum`.

    One halving per `cooldown_s` at most, so a burst of 429s from requests that were already in
    flight counts as one signal; after that, each `limit` successes add one slot.
    """

    def __init__(self, maximum: int, cooldown_s: float = 1.0, clock: Clock = SYSTEM_CLOCK) -> None:
        if maximum < 1:
            raise ValueError(f"concurrency must be at least 1, got {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._last_decrease = float("-inf")
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()
            elif future in self._waiters:
                self._waiters.remove(future)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)

    def on_rate_limited(self) -> bool:
        """Halve the limit (at most once per cooldown). True when it changed."""
        now = self._clock.monotonic()
        if now - self._last_decrease < self._cooldown_s or self.limit == 1:
            return False
        self._last_decrease = now
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        return True

    def on_success(self) -> None:
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()

    @property
    def backing_off(self) -> bool:
        return self.limit < self.maximum
