"""A test hook: hold chat requests after the first N until the test releases them.

A test that must act while a run is provably in flight (send SIGINT, interrupt a kernel) closes the
gate: the first `after` chat requests pass, every later one waits at the door. Once `held > 0` and
the first ones are recorded, the run cannot finish before the test acts, however busy the machine.
An explicit event, not a latency.
"""

from __future__ import annotations

import asyncio


class Gate:
    """Open by default. `hold_after(n)` lets n more requests through, then holds the rest."""

    def __init__(self) -> None:
        self._remaining: int | None = None  # None: open
        self._opened = asyncio.Event()
        self._opened.set()
        self.held = 0  # requests waiting at the gate now

    def hold_after(self, passes: int) -> None:
        if passes < 0:
            raise ValueError(f"passes must be >= 0, got {passes}")
        self._remaining = passes
        self._opened.clear()

    def release(self) -> None:
        self._remaining = None
        self._opened.set()

    async def enter(self) -> None:
        """Return at once while open or while passes remain; else wait for `release`."""
        if self._remaining is None:
            return
        if self._remaining > 0:
            self._remaining -= 1
            return
        self.held += 1
        try:
            await self._opened.wait()
        finally:
            self.held -= 1

    def state(self) -> dict[str, int | bool | None]:
        return {"open": self._remaining is None, "passes_left": self._remaining, "held": self.held}
