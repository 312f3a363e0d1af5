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

from evalkit.messages import image_urls, message_text
from evalkit.sim.answers import Item, cheating_program, compose, generic_reply
from evalkit.sim.faults import unit
from evalkit.sim.index import SampleIndex
from evalkit.sim.profiles import SimModel
from evalkit.sim.wire import Usage
from evalkit.tokens import estimate_message_tokens, estimate_tokens, truncate_to_tokens

_NORMAL = NormalDist()
SAMPLE_DIFFICULTY_SHARE = 0.5
"""How much of a correctness draw is the sample's own difficulty, shared by all models and epochs
(so that models agree on hard items, as real ones do); the rest is model- and seed-specific."""


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
) -> Plan:
    """The reply, usage and timings for a chat request to `model`; RequestError when it is rejected."""
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
    text, correct = _reply(item, model, messages, seed, body.get("seed"))
    text, finish_reason = _limit(text, body, model)
    completion_tokens = estimate_tokens(text)
    usage = Usage.priced(
        prompt_tokens, completion_tokens, images, model.cost(prompt_tokens, completion_tokens, images)
    )
    ttft_s, generation_s = _timings(model, usage, seed, body_sha256, attempt, latency_scale)
    return Plan(text, finish_reason, usage, ttft_s, generation_s, item, correct)


def _reply(
    item: Item | None, model: SimModel, messages: list[dict[str, Any]], seed: int, request_seed: Any
) -> tuple[str, bool | None]:
    if item is None:
        return generic_reply(model.id, message_text(messages[-1])), None
    key = (seed, model.id, item.task.name, item.sample.id, request_seed)
    correct = correctness_draw(seed, item, key) < model.accuracy(item.family, item.sample.language)
    rng = random.Random(int(unit(*key, "answer") * 2**53))
    if model.code_answers == "cheats" and (item.scorer == "code" or item.family == "code"):
        return cheating_program(item, rng), False
    return compose(item, correct, rng, model.verbosity), correct


def correctness_draw(seed: int, item: Item, key: tuple[Any, ...]) -> float:
    """A uniform draw in (0, 1): below the model's accuracy means a correct answer. Mixes a per-sample
    difficulty with a per-(model, request seed) term (a Gaussian copula keeps the draw uniform)."""
    shared = _NORMAL.inv_cdf(unit(seed, "difficulty", item.task.name, item.sample.id))
    own = _NORMAL.inv_cdf(unit(*key))
    mixed = math.sqrt(SAMPLE_DIFFICULTY_SHARE) * shared + math.sqrt(1 - SAMPLE_DIFFICULTY_SHARE) * own
    return _NORMAL.cdf(mixed)


def _limit(text: str, body: dict[str, Any], model: SimModel) -> tuple[str, str]:
    stops = body.get("stop")
    for stop in [stops] if isinstance(stops, str) else stops or []:
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    max_tokens = (
        min(int(requested), model.max_completion_tokens) if requested else model.max_completion_tokens
    )
    if estimate_tokens(text) > max_tokens:
        return truncate_to_tokens(text, max_tokens), "length"
    return text, "stop"


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
