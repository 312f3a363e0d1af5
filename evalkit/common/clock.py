"""Time, injectable: retries, backoff, the concurrency limiter and attempt deadlines read it here.

`Clock()` is real time. `ManualClock` is virtual time for tests: nothing waits for real, so a test of a
60 s backoff or a 0.5 s deadline takes no wall time and gives the same result on a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable


class Clock:
    """Real time: `time.monotonic`, `asyncio.sleep`, `asyncio.timeout`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for HTTP dates such as `Retry-After`)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
        """Cancel the body after `seconds`, raising TimeoutError."""
        return asyncio.timeout(seconds)


SYSTEM_CLOCK = Clock()


class ManualClock(Clock):
    """Virtual time that moves only when told.

    `advance(seconds)` moves it and wakes every sleeper and deadline now due. With `autojump` (the
    default) a `sleep` moves the time itself, to its own end, and returns at once: a call that backs
    off for 30 s returns immediately, with 30 s of virtual time spent. Deadlines of other tasks that
    the jump passes fire.
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = True, epoch: float = 1_700_000_000.0) -> None:
        self.now = start
        self.autojump = autojump
        self.slept: list[float] = []  # every sleep asked for, in order
        self._epoch = epoch
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self._epoch + self.now

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        if self.autojump:
            self.advance(seconds)
            await asyncio.sleep(0)  # still a suspension point, as a real sleep is
            return
        woken = asyncio.get_running_loop().create_future()
        self._at(self.now + seconds, lambda: woken.done() or woken.set_result(None))
        await woken

    @contextlib.asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[object]:
        loop = asyncio.get_running_loop()
        active = True

        def expire() -> None:
            if active and not scope.expired():
                scope.reschedule(loop.time())  # due now: asyncio cancels the body, raising TimeoutError

        async with asyncio.timeout(None) as scope:
            self._at(self.now + seconds, expire)
            try:
                yield scope
            finally:
                active = False

    def advance(self, seconds: float) -> None:
        """Move time forward and fire what is due, earliest first."""
        self.now += max(0.0, seconds)
        while self._timers and self._timers[0][0] <= self.now:
            _, _, fire = heapq.heappop(self._timers)
            fire()

    def _at(self, when: float, fire: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._order), fire))
        if when <= self.now:
            self.advance(0.0)
