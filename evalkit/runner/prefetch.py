"""Images prepared ahead of the workers: the event loop only sends and receives.

`Prefetcher` wraps the scheduler's iterator of units. As units are handed out it looks a bounded
number of units (and images) ahead and prepares their images in a small thread pool into the run's
`ImageCache`; the worker's own render then finds them ready, or waits for the one preparation in
flight. A prefetch failure is dropped here on purpose: the worker renders the unit itself and raises
the same error, naming its own sample. Text-only units start no thread.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from evalkit.runner.unit import Unit
from evalkit.task.images import ImageCache

THREAD_PREFIX = "evalkit-prefetch"


class Prefetcher(Iterator[Unit]):
    """The units of `units`, in order, with the images of up to `ahead` units (at most `max_images`
    images) being prepared before a worker takes them. `close()` stops it and joins its threads."""

    def __init__(
        self,
        units: Iterator[Unit],
        cache: ImageCache,
        *,
        wanted: Callable[[Unit], bool] = lambda unit: True,
        ahead: int = 32,
        max_images: int = 64,
        threads: int | None = None,
    ) -> None:
        self._units = units
        self._cache = cache
        self._wanted = wanted
        self._ahead = ahead
        self._max_images = max_images
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._queue: deque[Unit] = deque()
        self._images_queued = 0
        self._pool: ThreadPoolExecutor | None = None
        self._exhausted = False
        self._closed = False

    def __next__(self) -> Unit:
        self._fill()
        if not self._queue:
            raise StopIteration
        unit = self._queue.popleft()
        self._images_queued -= len(unit.sample.images)
        self._fill()
        return unit

    def close(self) -> None:
        """Cancel what has not started, wait for what has (one image per thread at most)."""
        self._closed = True
        self._queue.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _fill(self) -> None:
        while (
            not self._closed
            and not self._exhausted
            and len(self._queue) < self._ahead
            and self._images_queued < self._max_images
        ):
            unit = next(self._units, None)
            if unit is None:
                self._exhausted = True
                return
            self._queue.append(unit)
            self._images_queued += len(unit.sample.images)
            if unit.sample.images and self._wanted(unit):
                self._submit(unit)

    def _submit(self, unit: Unit) -> Future[None]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix=THREAD_PREFIX)
        return self._pool.submit(_prepare, unit, self._cache)


def _prepare(unit: Unit, cache: ImageCache) -> None:
    from evalkit.task.render import render

    # a failure is the worker's to raise: it renders this unit again, and its error names the sample
    with contextlib.suppress(Exception):
        render(unit.task, unit.sample, images=cache)
