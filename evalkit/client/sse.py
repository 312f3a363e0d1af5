"""Reading one attempt's response: server-sent events or a whole JSON body, into `AttemptState`.

The router's stream is read in its dialect (`: PROCESSING` comments, errors inside chunks, usage
with `cost` on the last chunk); thinking is split from the answer here (`dialect/reasoning.py`
draws the line), with the time of the first token of each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from evalkit.client.dialect.reasoning import (
    cache_write_tokens,
    cached_tokens,
    reasoning_in,
    reasoning_tokens,
    split_thinking,
)
from evalkit.client.dialect.recognise import (
    error_in_body,
    error_in_choice,
    error_in_chunk,
    sse_event,
    usage_cost,
)
from evalkit.client.errors import ErrorClass
from evalkit.client.failures import CallFailed
from evalkit.common.clock import SYSTEM_CLOCK, Clock
from evalkit.common.text import join_pairs


@dataclass
class AttemptState:
    """Mutable state of one attempt while its response streams in."""

    started: float
    clock: Clock = SYSTEM_CLOCK
    parts: list[str] = field(default_factory=list)
    part_times: list[float] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    ttft_reasoning_s: float | None = None
    finish_reason: str | None = None
    generation_id: str | None = None
    usage: Any = None
    provider: str | None = None
    streaming_started: bool = False
    done: bool = False
    http_status: int | None = None

    def content(self, text: str | None) -> None:
        if text:
            self.part_times.append(self.clock.monotonic() - self.started)
            self.parts.append(text)

    def reasoning(self, text: str) -> None:
        if text:
            if self.ttft_reasoning_s is None:
                self.ttft_reasoning_s = self.clock.monotonic() - self.started
            self.thoughts.append(text)

    def answer(self) -> tuple[str | None, str | None, float | None, float | None]:
        """(answer, thinking, time to first answer token, time to first thinking token)."""
        content = "".join(self.parts)
        split = split_thinking(content)
        thinking = join_pairs(
            "".join(self.thoughts) + ("\n" if self.thoughts and split.thinking else "") + split.thinking
        )
        first_thought = self.ttft_reasoning_s
        if split.thinking and self.part_times:
            first_thought = min(first_thought or self.part_times[0], self.part_times[0])
        first_answer = None
        offset = 0
        for text, at in zip(self.parts, self.part_times, strict=True):
            offset += len(text)
            if offset > split.answer_start:
                first_answer = at
                break
        output = join_pairs(split.answer) if self.parts or self.finish_reason else None
        return output, thinking or None, first_answer, first_thought


async def sse_data(response: Any) -> AsyncIterator[str]:
    """The `data` of each server-sent event, read in the router's dialect."""
    pending: list[str] = []
    async for line in response.aiter_lines():
        if (data := sse_event(line, pending)) is not None:
            yield data
    if pending:
        yield "\n".join(pending)


def json_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise CallFailed(ErrorClass.STREAM_ERROR, f"stream event is not JSON: {data[:300]!r}") from None
    if not isinstance(chunk, dict):
        raise CallFailed(ErrorClass.STREAM_ERROR, f"stream event is not a JSON object: {data[:300]!r}")
    return chunk


def read_chunk(chunk: dict[str, Any], state: AttemptState) -> None:
    state.usage = chunk.get("usage") or state.usage
    if (error := error_in_chunk(chunk)) is not None:
        raise CallFailed(error.error_class, f"error in stream: {error.message}", status=error.code)
    state.generation_id = chunk.get("id") or state.generation_id
    state.provider = chunk.get("provider") or state.provider
    for choice in chunk.get("choices") or []:
        delta = (choice or {}).get("delta") or {}
        state.reasoning(reasoning_in(delta))
        state.content(delta.get("content"))
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
        if (error := error_in_choice(choice)) is not None:
            raise CallFailed(error.error_class, f"error in stream choice: {error.message}", status=error.code)


def read_body(body: bytes, state: AttemptState) -> None:
    """A whole JSON response (non-streaming, or a JSON answer to a streaming request)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise CallFailed(ErrorClass.UPSTREAM_ERROR, f"response is not JSON: {body[:300]!r}") from None
    if not isinstance(data, dict):
        raise CallFailed(ErrorClass.UPSTREAM_ERROR, f"response is not a JSON object: {str(data)[:300]}")
    state.usage = data.get("usage") or state.usage
    if (error := error_in_body(data)) is not None:
        raise CallFailed(error.error_class, f"error in HTTP 200 body: {error.message}", status=error.code)
    state.generation_id = data.get("id") or state.generation_id
    state.provider = data.get("provider") or state.provider
    choices = data.get("choices") or []
    if choices:
        choice = choices[0] or {}
        message = choice.get("message") or {}
        state.reasoning(reasoning_in(message))
        state.content(message.get("content"))
        if not state.parts and "content" in message:
            state.parts.append("")
            state.part_times.append(0.0)
        state.finish_reason = choice.get("finish_reason")
        if (error := error_in_choice(choice)) is not None:
            raise CallFailed(error.error_class, f"error in choice: {error.message}", status=error.code)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        value = (getattr(obj, "model_extra", None) or {}).get(name)
    return value


def usage_fields(usage: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": _get(usage, "prompt_tokens"),
        "completion_tokens": _get(usage, "completion_tokens"),
        "cached_tokens": cached_tokens(usage),
        "cache_write_tokens": cache_write_tokens(usage),
        "reasoning_tokens": reasoning_tokens(usage),
        "cost_rub": usage_cost(usage),
    }
