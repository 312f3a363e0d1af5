"""Rendering: Sample + Task -> the request's chat messages (text part first, then image parts).

`Rendered` is the one typed request: what is sent, and everything derived from it (its text, its
response-cache key, its prompt-token bound and estimate, its images), so no caller re-reads messages.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.client.messages import message_text, text_parts
from evalkit.common.errors import TaskError

if TYPE_CHECKING:
    from evalkit.task.images import ImageCache, PreparedImage
    from evalkit.task.spec import Sample, Task


@dataclass(frozen=True)
class Rendered:
    """One sample's request: its messages, plus what was attached (for billing estimates and results)."""

    messages: list[dict[str, Any]]
    images: list[PreparedImage] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text of the last message (the sample's own question), images left out."""
        return message_text(self.messages[-1]) if self.messages else ""

    @functools.cached_property
    def text_key(self) -> str:
        """The hash the simulator finds this request's sample by (see `text_key`)."""
        return text_key(self.messages)

    @functools.cached_property
    def prompt_token_bound(self) -> int:
        """An upper bound on prompt tokens: byte-level BPE never makes more tokens than UTF-8 bytes
        (plus a few per message for the chat template). Images are priced apart, per image."""
        return sum(8 + sum(len(t.encode()) for t in text_parts(m)) for m in self.messages)

    @functools.cached_property
    def estimated_tokens(self) -> int:
        """A plausible count of prompt tokens (`evalkit.client.tokens`), for plans, not for budgets."""
        from evalkit.client.tokens import estimate_message_tokens

        return estimate_message_tokens(self.messages)

    def cache_key(self, endpoint_id: str, model: str, params: dict[str, Any], epoch: int) -> str:
        """The response cache's key: the endpoint's identity (never its key), model, messages with
        image bytes replaced by their hash, generation params and epoch."""
        return request_key(endpoint_id, model, self.messages, params, epoch)


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
    from evalkit.task.images import prepare_image

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


def request_key(
    endpoint_id: str, model: str, messages: list[dict[str, Any]], params: dict[str, Any], epoch: int
) -> str:
    """The response-cache key of a request (see `Rendered.cache_key`). Existing caches hold these keys:
    a change here misses every old entry and pays for it again (`tests/test_messages.py` pins it)."""
    payload = {
        "endpoint": endpoint_id,
        "model": model,
        "messages": [_without_image_bytes(m) for m in messages],
        "params": params,
        "epoch": epoch,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _without_image_bytes(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        url = part.get("image_url", {}).get("url", "") if isinstance(part, dict) else ""
        if url.startswith("data:"):
            part = {"type": "image_url", "sha256": hashlib.sha256(url.encode()).hexdigest()}
        parts.append(part)
    return {**message, "content": parts}
