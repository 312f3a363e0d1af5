"""Reasoning in the router's dialect: the request object, and where thinking hides in a reply.

RouterAI mirrors OpenRouter: a request carries `reasoning: {effort | max_tokens, exclude}`; a reply
carries the thinking in `message.reasoning` (or `delta.reasoning` when streamed), in
`reasoning_details` (text or summary parts; encrypted parts carry no text), as DeepSeek's
`reasoning_content`, or inside the content as a `<think>…</think>` block. Its tokens are counted in
`usage.completion_tokens_details.reasoning_tokens` and billed as output. Everything evalkit knows
about this lives here, so the client, the runner and the simulator agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EFFORTS = ("minimal", "low", "medium", "high")
EFFORT_RATIO = {"minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8}
"""OpenRouter's share of `max_tokens` a model with a token budget may spend thinking at each effort."""
MIN_BUDGET, MAX_BUDGET = 1024, 32000
_OPEN = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_TAG = re.compile(r"</?think(?:ing)?>", re.IGNORECASE)
_FENCE = "```"


def reasoning_request(effort: str | None, max_tokens: int | None, exclude: bool) -> dict[str, Any]:
    """The request's `reasoning` object. The router takes effort or a token budget, not both: a
    budget, being the more precise, wins."""
    body: dict[str, Any] = {"max_tokens": max_tokens} if max_tokens is not None else {"effort": effort}
    if exclude:
        body["exclude"] = True
    return body


def reasoning_budget(request: Mapping[str, Any] | None, max_tokens: int) -> int | None:
    """Thinking tokens a model with a budget may spend for this request (OpenRouter's rule: the given
    `max_tokens`, else `max_tokens` of the reply × the effort's ratio, within 1024…32000); None when
    the request asks for no reasoning."""
    if not isinstance(request, Mapping):
        return None
    if isinstance(request.get("max_tokens"), int):
        return int(request["max_tokens"])
    effort = request.get("effort")
    if effort not in EFFORT_RATIO:
        return None
    return max(MIN_BUDGET, min(MAX_BUDGET, int(max_tokens * EFFORT_RATIO[effort])))


def worst_case_output_tokens(max_tokens: int, request: Mapping[str, Any] | None) -> int:
    """The most output tokens a call can be billed. Reasoning counts inside `max_tokens` on the
    router; a thinking budget is added on top anyway, so a provider that bills it apart still fits."""
    if not isinstance(request, Mapping) or not isinstance(request.get("max_tokens"), int):
        return max_tokens
    return max_tokens + int(request["max_tokens"])


def expected_thinking_tokens(max_tokens: int, request: Mapping[str, Any] | None) -> tuple[int, str]:
    """Thinking tokens an estimate counts on per call, and the assumption behind them in words: all of
    a token budget (`reasoning.max_tokens`), or an effort's share of `max_tokens` (OpenRouter's ratio,
    `EFFORT_RATIO`; within `max_tokens`, where the router counts it). An assumption, not a bound: a
    model may think less, and one that thinks unasked is counted as not thinking."""
    if not isinstance(request, Mapping):
        return 0, ""
    if isinstance(request.get("max_tokens"), int):
        budget = max(0, int(request["max_tokens"]))
        return budget, f"the whole thinking budget, {budget} tokens"
    effort = request.get("effort")
    if effort not in EFFORT_RATIO:
        return 0, ""
    share = EFFORT_RATIO[effort]
    return int(max_tokens * share), f"effort {effort}: {share:.0%} of max_tokens {max_tokens}"


def reasoning_tokens(usage: Any) -> int | None:
    """`usage.completion_tokens_details.reasoning_tokens`; None when absent or not a count."""
    return _count(_details(usage, "completion_tokens_details"), "reasoning_tokens")


def cached_tokens(usage: Any) -> int | None:
    """`usage.prompt_tokens_details.cached_tokens` (prompt tokens read from the cache)."""
    return _count(_details(usage, "prompt_tokens_details"), "cached_tokens")


def cache_write_tokens(usage: Any) -> int | None:
    """`usage.prompt_tokens_details.cache_write_tokens`, where the router reports cache writes."""
    return _count(_details(usage, "prompt_tokens_details"), "cache_write_tokens")


def reasoning_in(part: Any) -> str:
    """The thinking text of a message or a stream delta: `reasoning`, `reasoning_content`, or the
    text and summary parts of `reasoning_details` (used only when neither string is there)."""
    if not isinstance(part, Mapping):
        return ""
    for name in ("reasoning", "reasoning_content"):
        if isinstance(part.get(name), str) and part[name]:
            return part[name]
    texts = []
    for detail in part.get("reasoning_details") or []:
        if isinstance(detail, Mapping):
            text = detail.get("text") if detail.get("text") is not None else detail.get("summary")
            if isinstance(text, str):
                texts.append(text)
    return "".join(texts)


@dataclass(frozen=True)
class Split:
    """A reply's content cut into what the model thought and what it answered.

    `answer_start` is where the answer begins in the original content (for the time to the first
    answer token); `unterminated` means a `<think>` block never closed, so there is no answer.
    """

    answer: str
    thinking: str
    answer_start: int
    unterminated: bool = False


def split_thinking(content: str) -> Split:
    """Separate `<think>…</think>` (or `<thinking>`) blocks from the answer, so a scorer never sees them.

    Blocks may nest and repeat; a block that never closes makes the rest thinking (the answer is then
    empty: a truncated thought is no answer). A tag inside a fenced code block of the answer is part
    of the code (a program that parses `<think>` tags), not thinking. A closing tag with no opening one (models whose template
    put `<think>` into the prompt) makes everything before it thinking.
    """
    if not _TAG.search(content):
        return Split(content, "", 0)
    answer: list[str] = []
    thinking: list[str] = []
    depth = position = 0
    answer_start: int | None = None
    first = _TAG.search(content)
    before = content[: first.start()] if first is not None else ""
    if (
        first is not None
        and first.group().startswith("</")
        and not _OPEN.search(before)
        and not before.count(_FENCE) % 2
    ):
        thinking.append(content[: first.start()])
        position = first.end()
    for tag in _TAG.finditer(content, position):
        text = content[position : tag.start()]
        if depth:
            thinking.append(text)
        else:
            answer_start = _answer_start(answer_start, position, text)
            answer.append(text)
            if "".join(answer).count(_FENCE) % 2:  # a tag inside the answer's code block is code
                answer.append(tag.group())
                position = tag.end()
                continue
        depth = depth + 1 if not tag.group().startswith("</") else max(0, depth - 1)
        position = tag.end()
    tail = content[position:]
    if depth:
        thinking.append(tail)
    else:
        answer_start = _answer_start(answer_start, position, tail)
        answer.append(tail)
    start = len(content) if answer_start is None else answer_start
    return Split("".join(answer).strip(), "".join(thinking).strip(), start, unterminated=depth > 0)


def _answer_start(found: int | None, position: int, text: str) -> int | None:
    """Where the answer's first visible character is (whitespace between blocks is no answer yet)."""
    if found is not None or not text.strip():
        return found
    return position + len(text) - len(text.lstrip())


def _details(usage: Any, name: str) -> Any:
    return usage.get(name) if isinstance(usage, Mapping) else None


def _count(details: Any, name: str) -> int | None:
    value = details.get(name) if isinstance(details, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
