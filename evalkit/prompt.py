"""Rendering: Sample + Task -> chat messages (text part first, then image parts)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import TaskError
from evalkit.messages import text_parts

if TYPE_CHECKING:
    from evalkit.images import ImageCache, PreparedImage
    from evalkit.task import Sample, Task


@dataclass(frozen=True)
class Rendered:
    """The messages for one sample, plus what was attached (for billing estimates and results)."""

    messages: list[dict[str, Any]]
    images: list[PreparedImage] = field(default_factory=list)


def render(task: Task, sample: Sample, *, images: ImageCache | None = None) -> Rendered:
    """The chat messages for one sample. Images are read and encoded here (blocking: callers on an
    event loop run this in a thread); `images` is the run's cache of prepared images, if any."""
    system, user, variables = task.prompt.for_language(sample.language)
    values = {**variables, **sample.template_vars()}
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": _fill(system, values, task, sample)})
    for shot in task.prompt.few_shot_for(sample.language):
        messages.append({"role": "user", "content": shot.user})
        messages.append({"role": "assistant", "content": shot.assistant})
    text = _fill(user, values, task, sample)
    prepared = _prepare_images(task, sample, images)
    if prepared:
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        parts += [{"type": "image_url", "image_url": {"url": image.data_url}} for image in prepared]
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": text})
    return Rendered(messages=messages, images=prepared)


def _fill(template: str, values: dict[str, Any], task: Task, sample: Sample) -> str:
    try:
        return template.format_map(values)
    except (KeyError, IndexError, AttributeError) as exc:
        raise TaskError(
            f"template variable {exc} is not in sample {sample.id!r}", where=f"{task.where}: prompt"
        ) from None
    except ValueError as exc:
        raise TaskError(f"bad template: {exc}", where=f"{task.where}: prompt") from None


def _prepare_images(task: Task, sample: Sample, cache: ImageCache | None) -> list[PreparedImage]:
    if not sample.images:
        return []
    from evalkit.images import prepare_image

    where = f"{task.where}: sample {sample.id!r}"
    return [prepare_image(ref, task.images, where=where, cache=cache) for ref in sample.images]


def text_key(messages: list[dict[str, Any]]) -> str:
    """A hash of the text of all messages, images left out: how the simulator maps a request back to
    its sample, whatever the image encoding."""
    digest = hashlib.sha256()
    for message in messages:
        digest.update(str(message.get("role", "")).encode())
        for text in text_parts(message) or [""]:
            digest.update(b"\x00" + text.encode())
        digest.update(b"\x01")
    return digest.hexdigest()
