"""Index of known samples: an incoming request's messages -> the (task, sample) it was rendered from.

Keys are `evalkit.task.render.text_key(messages)`, which ignores images, so samples are rendered with their
images stripped (no image is read or encoded at start-up). A second key, the last user message's text
alone, still finds the sample when a caller adds or changes the system prompt. When several samples
share their text (vision items asking the same question of different images), the images decide:
the candidates' images are prepared as the runner prepares them, once, and compared by hash.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from evalkit.client.messages import image_urls, message_text
from evalkit.common.errors import EvalkitError
from evalkit.sim.answers import Item, scorer_name
from evalkit.task.render import render, text_key
from evalkit.task.spec import Sample, Task, resolve_task

TaskSpec = Task | str | Path | tuple[Task, Sequence[Sample]]


class SampleIndex:
    """Maps request messages to an `Item`; immutable once built."""

    def __init__(self, items: Iterable[tuple[list[dict[str, Any]], Item]] = ()) -> None:
        self._by_key: dict[str, list[Item]] = {}
        self._by_last_user: dict[str, Item] = {}
        self._image_keys: dict[int, str | None] = {}
        self._lock = threading.Lock()
        for messages, item in items:
            self._by_key.setdefault(text_key(messages), []).append(item)
            self._by_last_user.setdefault(last_user_key(messages), item)

    def __len__(self) -> int:
        return sum(len(items) for items in self._by_key.values())

    def lookup(self, messages: list[dict[str, Any]]) -> Item | None:
        """The sample these messages were rendered from, or None when they match none."""
        candidates = self._by_key.get(text_key(messages))
        if not candidates:
            return self._by_last_user.get(last_user_key(messages))
        if len(candidates) == 1:
            return candidates[0]
        wanted = image_key(messages)
        for item in candidates:
            if self._item_image_key(item) == wanted:
                return item
        return candidates[0]

    def _item_image_key(self, item: Item) -> str | None:
        with self._lock:
            if id(item) not in self._image_keys:
                self._image_keys[id(item)] = _prepared_image_key(item)
            return self._image_keys[id(item)]

    @classmethod
    def build(cls, tasks: Iterable[TaskSpec], samples_per_task: int | None = None) -> SampleIndex:
        """Load (unless given) and render every task's samples. Raises TaskError for bad tasks."""
        entries: list[tuple[list[dict[str, Any]], Item]] = []
        for spec in tasks:
            task, samples = _task_and_samples(spec, samples_per_task)
            family, scorer = task.family, scorer_name(task)
            targets = [s.target[0] for s in samples if s.target]
            for sample in samples:
                messages = render(task, sample.model_copy(update={"images": []}) if sample.images else sample)
                entries.append((messages.messages, Item(task, sample, family, scorer, targets)))
        return cls(entries)


def image_key(messages: list[dict[str, Any]]) -> str:
    """A hash of the image URLs the messages carry, in order."""
    digest = hashlib.sha256()
    for message in messages:
        for url in image_urls(message):
            digest.update(url.encode())
    return digest.hexdigest()


def _prepared_image_key(item: Item) -> str | None:
    try:
        return image_key(render(item.task, item.sample).messages)
    except EvalkitError:  # an unreadable image cannot be what a client sent
        return None


def last_user_key(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return hashlib.sha256(message_text(message).encode()).hexdigest()
    return ""


def _task_and_samples(spec: TaskSpec, limit: int | None) -> tuple[Task, Sequence[Sample]]:
    if isinstance(spec, tuple):
        return spec[0], spec[1]
    task = resolve_task(spec)
    # The simulator must know every sample a run could pick, whatever its shuffle: load them in
    # source order and do not apply the task's own limits.
    if limit is None:
        task.all_samples()  # read once, kept on the task (and its copy): the run that loads it next reuses them
        unlimited = task.model_copy(update={"limit": None, "limit_per_language": None, "shuffle_seed": None})
        return task, unlimited.load_samples()
    return task, task.load_samples(limit)
