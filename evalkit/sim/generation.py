"""Planning one generation: from a request body to the reply text, usage, cost and timings.

Everything here is pure and deterministic: the answer depends on (seed, model, task, sample, request
`seed`), the timings on (seed, model, request body, attempt).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from evalkit.client.dialect.reasoning import EFFORT_RATIO, reasoning_budget
from evalkit.client.messages import image_urls, message_text
from evalkit.client.tokens import estimate_message_tokens, estimate_tokens, truncate_to_tokens
from evalkit.sim.answers import Item, cheating_program, compose, generic_reply, thinking
from evalkit.sim.faults import unit
from evalkit.sim.index import SampleIndex
from evalkit.sim.judge import is_judge_prompt, judge_reply, style_mark
from evalkit.sim.profiles import SimModel
from evalkit.sim.wire import Usage

_NORMAL = NormalDist()
SAMPLE_DIFFICULTY_SHARE = 0.5
"""How much of a correctness draw is the sample's own difficulty, shared by all models and epochs
(so that models agree on hard items, as real ones do); the rest is model- and seed-specific."""


NESTED_THOUGHTS = 0.25
"""The share of `<think>` replies whose thought holds a nested `<think>` block."""


class RequestError(Exception):
    """A request the router rejects before generating (bad body, context too long, images unsupported)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Plan:
    """What the simulator will send for one request (unless a fault strikes)."""

    text: str
    reasoning: str  # the `reasoning` field's text ("" when the model shows none there)
    finish_reason: str
    usage: Usage
    ttft_s: float
    generation_s: float
    item: Item | None
    correct: bool | None


def count_images(messages: list[dict[str, Any]]) -> int:
    return sum(len(image_urls(message)) for message in messages)


def check_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise RequestError(400, "Input required: specify a non-empty `messages` array of objects")
    return messages


def plan(
    body: dict[str, Any],
    model: SimModel,
    index: SampleIndex,
    *,
    seed: int,
    body_sha256: str,
    attempt: int,
    latency_scale: float,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Plan:
    """The reply, usage and timings for a chat request to `model`; RequestError when it is rejected.

    A thinking model first thinks (more with more effort, capped by the request's thinking budget),
    then answers; both count as completion tokens and `max_tokens` bounds them together, so a long
    thought can truncate the answer, or leave none. `cached_tokens` of the prompt are billed at the
    cache-read price, `cache_write_tokens` at the cache-write price."""
    messages = check_messages(body)
    images = count_images(messages)
    if images and not model.accepts_images:
        raise RequestError(404, "No endpoints found that support image input")
    prompt_tokens = estimate_message_tokens(messages)
    if prompt_tokens > model.context_length:
        raise RequestError(
            400,
            f"This endpoint's maximum context length is {model.context_length} tokens. "
            f"However, you requested about {prompt_tokens} tokens. Please reduce the length of the messages.",
        )
    item = index.lookup(messages)
    effort = _effort(model, body)
    text, correct, rng = _reply(item, model, messages, seed, body.get("seed"), effort)
    thought = ""
    if effort is not None:
        thought = thinking(item, bool(correct), rng, _thinking_tokens(model, body, effort, rng))
    if model.thinking == "think" and thought:  # the thought is part of the content
        if rng.random() < NESTED_THOUGHTS:  # some models open a block inside a block
            middle = len(thought) // 2
            thought = f"{thought[:middle]}\n<think>{thought[middle:]}</think>"
        opened = f"<think>\n{thought}\n</think>\n\n"
        text, _, finish_reason = _limit(opened + text, body, model)
        reasoning_tokens = estimate_tokens(text[: len(opened)])
        thought = ""
    else:
        text, thought, finish_reason = _limit(text, body, model, thought)
        reasoning_tokens = estimate_tokens(thought)
    exclude = isinstance(body.get("reasoning"), dict) and body["reasoning"].get("exclude") is True
    completion_tokens = estimate_tokens(text) + estimate_tokens(thought)
    reasoning_tokens = min(reasoning_tokens, completion_tokens)
    cached_tokens = min(cached_tokens, prompt_tokens)
    written = min(cache_write_tokens, prompt_tokens - cached_tokens)
    costs = model.cost(prompt_tokens, completion_tokens, images, cached_tokens, written)
    usage = Usage.priced(
        prompt_tokens, completion_tokens, images, costs, cached_tokens, reasoning_tokens, written
    )
    ttft_s, generation_s = _timings(model, usage, seed, body_sha256, attempt, latency_scale)
    shown = "" if exclude else thought
    return Plan(text, shown, finish_reason, usage, ttft_s, generation_s, item, correct)


def _effort(model: SimModel, body: dict[str, Any]) -> str | None:
    """How hard a thinking model thinks for this request (None: it does not think)."""
    if model.thinking == "none":
        return None
    asked = body.get("reasoning")
    effort = asked.get("effort") if isinstance(asked, dict) else None
    return effort if effort in EFFORT_RATIO else model.default_effort


def _thinking_tokens(model: SimModel, body: dict[str, Any], effort: str, rng: random.Random) -> int:
    """Lognormal around the effort's mean; a budget the request gives (`reasoning.max_tokens`) caps it.
    An effort alone caps nothing here: `max_tokens` bounds thought and answer together (`_limit`)."""
    mean = model.thinking_tokens.get(effort, 200)
    tokens = max(1, round(mean * math.exp(0.5 * _NORMAL.inv_cdf(min(0.999, max(0.001, rng.random()))))))
    asked = body.get("reasoning")
    if isinstance(asked, dict) and isinstance(asked.get("max_tokens"), int):
        requested = body.get("max_completion_tokens") or body.get("max_tokens") or model.max_completion_tokens
        tokens = min(tokens, reasoning_budget(asked, int(requested)) or tokens)
    return tokens


def _reply(
    item: Item | None,
    model: SimModel,
    messages: list[dict[str, Any]],
    seed: int,
    request_seed: Any,
    effort: str | None,
) -> tuple[str, bool | None, random.Random]:
    if model.judge is not None and is_judge_prompt(prompt := message_text(messages[-1])):
        return judge_reply(model.judge, model.id, prompt, seed, request_seed), None, random.Random(seed)
    if item is None:
        rng = random.Random(seed)
        return generic_reply(model.id, message_text(messages[-1])), None, rng
    key = (seed, model.id, item.task.name, item.sample.id, request_seed)
    accuracy = model.accuracy(item.family, item.sample.language, effort)
    correct = correctness_draw(seed, item, key) < accuracy
    # the effort joins the key only for thinking models, so the others answer as they always did
    rng = random.Random(int(unit(*key, "answer", *([effort] if effort else [])) * 2**53))
    if model.code_answers == "cheats" and (item.scorer == "code" or item.family == "code"):
        return cheating_program(item, rng), False, rng
    return compose(item, correct, rng, model.verbosity, style=style_mark(model.id)), correct, rng


def correctness_draw(seed: int, item: Item, key: tuple[Any, ...]) -> float:
    """A uniform draw in (0, 1): below the model's accuracy means a correct answer. Mixes a per-sample
    difficulty with a per-(model, request seed) term (a Gaussian copula keeps the draw uniform)."""
    shared = _NORMAL.inv_cdf(unit(seed, "difficulty", item.task.name, item.sample.id))
    own = _NORMAL.inv_cdf(unit(*key))
    mixed = math.sqrt(SAMPLE_DIFFICULTY_SHARE) * shared + math.sqrt(1 - SAMPLE_DIFFICULTY_SHARE) * own
    return _NORMAL.cdf(mixed)


def _limit(text: str, body: dict[str, Any], model: SimModel, thought: str = "") -> tuple[str, str, str]:
    """(answer, thought, finish_reason): stop sequences cut the answer; `max_tokens` bounds thought
    and answer together, the thought first."""
    stops = body.get("stop")
    for stop in [stops] if isinstance(stops, str) else stops or []:
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    max_tokens = (
        min(int(requested), model.max_completion_tokens) if requested else model.max_completion_tokens
    )
    thought_tokens = estimate_tokens(thought)
    if thought_tokens >= max_tokens:
        return "", truncate_to_tokens(thought, max_tokens), "length"
    if estimate_tokens(text) > max_tokens - thought_tokens:
        return truncate_to_tokens(text, max_tokens - thought_tokens), thought, "length"
    return text, thought, "stop"


def _timings(
    model: SimModel, usage: Usage, seed: int, body_sha256: str, attempt: int, scale: float
) -> tuple[float, float]:
    if scale <= 0:
        return 0.0, 0.0
    latency = model.latency
    sigma = latency.jitter

    def jitter(kind: str) -> float:
        z = _NORMAL.inv_cdf(unit(seed, kind, model.id, body_sha256, attempt))
        return math.exp(sigma * z - sigma * sigma / 2)  # lognormal with mean 1

    ttft = (
        latency.ttft_s + latency.per_prompt_token_s * usage.prompt_tokens + latency.per_image_s * usage.images
    )
    generation = usage.completion_tokens / latency.tokens_per_s
    return ttft * jitter("ttft") * scale, generation * jitter("speed") * scale
