"""Simulated model profiles: price card, context, modalities, quality and latency of each model.

The default catalog (ids are stable; tests and docs rely on them):

| id | input | ₽ / 1M in | ₽ / 1M out | ₽ / image | quality | speed |
|---|---|---|---|---|---|---|
| `meta-llama/llama-4-scout` | text, image | 18 | 59 | 0.09114 | good; weaker in th, hi, ar, ru | fast |
| `sim/small-fast` | text | 4 | 12 | — | weak, much weaker off English | fastest |
| `sim/large-accurate` | text, image | 250 | 1000 | 0.4 | strong everywhere | slow, verbose |
| `sim/ru-tuned` | text | 30 | 90 | — | good in Russian, middling elsewhere | medium |
| `sim/reasoner` | text | 50 | 200 | — | thinks (a `reasoning` field); better, slower, dearer with effort | medium |
| `sim/thinker` | text | 40 | 160 | — | thinks in `<think>` blocks inside its content | medium |
| `sim/judge` | text | 20 | 80 | — | a judge: 95% accurate, unbiased (also answers as a model) | fast |
| `sim/judge-biased` | text | 10 | 30 | — | a judge leaning to answer A, long answers and its own | fast |

Llama 4 Scout carries RouterAI's real prices; the `sim/` models are invented. Every model caches a
repeated prompt prefix (all messages before the last) of at least `cache_min_tokens` tokens and bills
it at `cache_read_price`. A model with a `cache_write_price` also reports the first request's prefix as
written to the cache (`cache_write_tokens`) and bills it at that price, as some providers do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evalkit.common.errors import ConfigError
from evalkit.sim.judge import JudgeProfile

PER_MILLION = 1e-6


class Latency(BaseModel):
    """Time to first token = (ttft_s + per_prompt_token_s * prompt tokens + per_image_s * images) * jitter;
    then output at tokens_per_s * jitter. Jitter is lognormal with mean 1 and this sigma."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_s: float = Field(0.4, ge=0)
    per_prompt_token_s: float = Field(0.00004, ge=0)
    per_image_s: float = Field(0.1, ge=0)
    tokens_per_s: float = Field(100.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=2)


class SimModel(BaseModel):
    """One simulated model. Prices are ₽ per token (₽ per image for `image_price`).

    quality: probability of a correct answer per task family (qa, vision, code, other).
    language_factor: multiplies quality for samples in that language (missing languages: `other_languages`).
    verbosity: sentences of reasoning before a final answer.
    thinking: how a reasoning model shows its thought: not at all ("none": it does not think), in the
        message's `reasoning` field ("field"), or in a `<think>` block of its content ("think").
    thinking_tokens: mean hidden tokens per effort (billed as output); effort_gain: accuracy added.
    judge: how it grades when it reads a judge prompt (accuracy and biases); None: it is no judge.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    context_length: int = Field(gt=0)
    input_modalities: tuple[Literal["text", "image"], ...] = ("text",)
    prompt_price: float = Field(ge=0)
    completion_price: float = Field(ge=0)
    image_price: float = Field(0.0, ge=0)
    cache_read_price: float = Field(0.0, ge=0)
    lists_cache_price: bool = True  # False: /models omits input_cache_read, yet reads are billed at it
    cache_write_price: float | None = Field(None, ge=0)  # None: writing the cache costs nothing extra
    max_completion_tokens: int = Field(16384, gt=0)
    quality: dict[str, float] = Field(default_factory=dict)
    language_factor: dict[str, float] = Field(default_factory=dict)
    other_languages: float = Field(1.0, ge=0)
    verbosity: int = Field(2, ge=0, le=6)
    code_answers: Literal["solutions", "cheats"] = (
        "solutions"  # "cheats": wrong programs that try to forge a pass
    )
    latency: Latency = Field(default_factory=Latency)
    thinking: Literal["none", "field", "think"] = "none"
    thinking_tokens: dict[str, int] = Field(default_factory=dict)
    effort_gain: dict[str, float] = Field(default_factory=dict)
    default_effort: str = "medium"
    cache_min_tokens: int = Field(256, ge=1)
    judge: JudgeProfile | None = None  # set: it also answers judge prompts (see `evalkit.sim.judge`)

    @property
    def accepts_images(self) -> bool:
        return "image" in self.input_modalities

    def accuracy(self, family: str, language: str | None, effort: str | None = None) -> float:
        """Probability of a correct answer for a sample of this family and language (in [0, 0.99]),
        raised by thinking harder."""
        base = self.quality.get(family, self.quality.get("other", 0.5))
        factor = (
            1.0 if language in (None, "", "en") else self.language_factor.get(language, self.other_languages)
        )
        return min(0.99, max(0.0, base * factor + self.effort_gain.get(effort or "", 0.0)))

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        images: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> tuple[float, float, float]:
        """(input, output, images) cost in ₽; cached prompt tokens at the cache-read price, those
        written to the cache at the cache-write price."""
        written = cache_write_tokens if self.cache_write_price is not None else 0
        return (
            (prompt_tokens - cached_tokens - written) * self.prompt_price
            + cached_tokens * self.cache_read_price
            + written * (self.cache_write_price or 0.0),
            completion_tokens * self.completion_price,
            images * self.image_price,
        )


LLAMA_4_SCOUT = SimModel(
    id="meta-llama/llama-4-scout",
    name="Meta: Llama 4 Scout",
    context_length=327680,
    input_modalities=("text", "image"),
    prompt_price=18 * PER_MILLION,
    completion_price=59 * PER_MILLION,
    image_price=91.14 / 1000,
    cache_read_price=18 * PER_MILLION,
    quality={"qa": 0.74, "vision": 0.52, "code": 0.66, "other": 0.65},
    language_factor={"th": 0.82, "hi": 0.85, "ar": 0.87, "ru": 0.9, "bn": 0.8, "te": 0.78, "sw": 0.8},
    other_languages=0.95,
    verbosity=2,
    latency=Latency(ttft_s=0.45, per_prompt_token_s=0.00005, per_image_s=0.15, tokens_per_s=110, jitter=0.25),
    # the built-in open-ended task's default judge: fairly accurate, leaning a little as real judges do
    judge=JudgeProfile(accuracy=0.9, position_bias=0.1, verbosity_bias=0.15, self_preference=0.2),
)

SMALL_FAST = SimModel(
    id="sim/small-fast",
    name="Simulated: Small Fast",
    context_length=32768,
    prompt_price=4 * PER_MILLION,
    completion_price=12 * PER_MILLION,
    cache_read_price=1 * PER_MILLION,
    max_completion_tokens=4096,
    quality={"qa": 0.5, "code": 0.35, "other": 0.45},
    language_factor={"th": 0.55, "hi": 0.6, "ar": 0.65, "ru": 0.75, "bn": 0.5, "te": 0.5, "sw": 0.55},
    other_languages=0.85,
    verbosity=1,
    latency=Latency(ttft_s=0.12, per_prompt_token_s=0.00001, tokens_per_s=220, jitter=0.15),
)

LARGE_ACCURATE = SimModel(
    id="sim/large-accurate",
    name="Simulated: Large Accurate",
    context_length=200000,
    input_modalities=("text", "image"),
    prompt_price=250 * PER_MILLION,
    completion_price=1000 * PER_MILLION,
    image_price=0.4,
    cache_read_price=25 * PER_MILLION,
    quality={"qa": 0.88, "vision": 0.76, "code": 0.9, "other": 0.85},
    language_factor={"th": 0.95, "hi": 0.95, "ar": 0.96, "bn": 0.93, "te": 0.92, "sw": 0.93},
    other_languages=0.98,
    verbosity=4,
    latency=Latency(ttft_s=1.2, per_prompt_token_s=0.0001, per_image_s=0.4, tokens_per_s=45, jitter=0.3),
)

RU_TUNED = SimModel(
    id="sim/ru-tuned",
    name="Simulated: Russian-tuned",
    context_length=65536,
    prompt_price=30 * PER_MILLION,
    completion_price=90 * PER_MILLION,
    cache_read_price=7.5 * PER_MILLION,
    quality={"qa": 0.7, "code": 0.55, "other": 0.62},
    language_factor={"ru": 1.25, "uk": 1.1, "th": 0.7, "hi": 0.7, "ar": 0.72, "bn": 0.6, "te": 0.6},
    other_languages=0.85,
    verbosity=2,
    latency=Latency(ttft_s=0.3, per_prompt_token_s=0.00003, tokens_per_s=80, jitter=0.2),
)

CHEATER = SimModel(
    id="sim/cheater",
    name="Simulated: answers code tasks with programs that try to forge their verdict",
    context_length=32768,
    prompt_price=4 * PER_MILLION,
    completion_price=12 * PER_MILLION,
    quality={"qa": 0.5, "code": 0.0, "other": 0.45},
    verbosity=1,
    code_answers="cheats",
)

_THINKING_TOKENS = {"minimal": 40, "low": 150, "medium": 400, "high": 1000}

REASONER = SimModel(
    id="sim/reasoner",
    name="Simulated: Reasoner",
    context_length=131072,
    prompt_price=50 * PER_MILLION,
    completion_price=200 * PER_MILLION,
    cache_read_price=12.5 * PER_MILLION,
    max_completion_tokens=32768,
    quality={"qa": 0.6, "code": 0.55, "other": 0.55},
    language_factor={"th": 0.85, "hi": 0.88, "ar": 0.9, "bn": 0.85, "te": 0.85, "sw": 0.85},
    other_languages=0.95,
    verbosity=1,
    latency=Latency(ttft_s=0.5, per_prompt_token_s=0.00004, tokens_per_s=150, jitter=0.2),
    thinking="field",
    thinking_tokens=_THINKING_TOKENS,
    effort_gain={"minimal": 0.0, "low": 0.08, "medium": 0.16, "high": 0.24},
)

THINKER = SimModel(
    id="sim/thinker",
    name="Simulated: Thinker",
    context_length=65536,
    prompt_price=40 * PER_MILLION,
    completion_price=160 * PER_MILLION,
    cache_read_price=10 * PER_MILLION,
    max_completion_tokens=32768,
    quality={"qa": 0.58, "code": 0.5, "other": 0.55},
    language_factor={"th": 0.8, "hi": 0.85, "ar": 0.85, "bn": 0.8, "te": 0.8, "sw": 0.8},
    other_languages=0.9,
    verbosity=1,
    latency=Latency(ttft_s=0.4, per_prompt_token_s=0.00004, tokens_per_s=120, jitter=0.2),
    thinking="think",
    thinking_tokens=_THINKING_TOKENS,
    effort_gain={"minimal": 0.0, "low": 0.06, "medium": 0.12, "high": 0.18},
)

DEFAULT_MODELS: tuple[SimModel, ...] = (
    LLAMA_4_SCOUT,
    SMALL_FAST,
    LARGE_ACCURATE,
    RU_TUNED,
    REASONER,
    THINKER,
)


JUDGE = SimModel(
    id="sim/judge",
    name="Simulated: Judge (accurate, unbiased)",
    context_length=131072,
    prompt_price=20 * PER_MILLION,
    completion_price=80 * PER_MILLION,
    cache_read_price=5 * PER_MILLION,
    quality={"qa": 0.8, "code": 0.75, "other": 0.8},
    language_factor={"th": 0.9, "hi": 0.9, "ar": 0.92, "bn": 0.88, "te": 0.88, "sw": 0.88},
    verbosity=1,
    latency=Latency(ttft_s=0.3, per_prompt_token_s=0.00003, tokens_per_s=120, jitter=0.2),
    judge=JudgeProfile(accuracy=0.95),
)

BIASED_JUDGE = SimModel(
    id="sim/judge-biased",
    name="Simulated: Judge (prefers the first answer, long answers and its own)",
    context_length=65536,
    prompt_price=10 * PER_MILLION,
    completion_price=30 * PER_MILLION,
    cache_read_price=2.5 * PER_MILLION,
    quality={"qa": 0.65, "code": 0.5, "other": 0.65},
    language_factor={"th": 0.8, "hi": 0.8, "ar": 0.85, "bn": 0.75, "te": 0.75, "sw": 0.8},
    verbosity=3,
    latency=Latency(ttft_s=0.2, per_prompt_token_s=0.00002, tokens_per_s=150, jitter=0.2),
    judge=JudgeProfile(accuracy=0.9, position_bias=0.3, verbosity_bias=0.4, self_preference=0.6),
)

JUDGE_MODELS: tuple[SimModel, ...] = (JUDGE, BIASED_JUDGE)
"""Served by default next to DEFAULT_MODELS; not part of the demo's models under test."""


def resolve_models(models: Iterable[SimModel | str | Mapping[str, object]] | None) -> dict[str, SimModel]:
    """The served catalog: the defaults when None; else each item is a SimModel, a default's id, or a
    mapping of SimModel fields."""
    if models is None:
        return {model.id: model for model in (*DEFAULT_MODELS, *JUDGE_MODELS)}
    known = {model.id: model for model in (*DEFAULT_MODELS, *JUDGE_MODELS)}
    catalog: dict[str, SimModel] = {}
    for item in models:
        if isinstance(item, SimModel):
            model = item
        elif isinstance(item, str):
            if item not in known:
                raise ConfigError(
                    f"no simulated model {item!r}; known: {', '.join(known)}", where="sim models"
                )
            model = known[item]
        else:
            try:
                model = SimModel.model_validate(item)
            except ValueError as exc:
                raise ConfigError(f"bad model profile: {exc}", where="sim models") from None
        catalog[model.id] = model
    if not catalog:
        raise ConfigError("the simulator needs at least one model", where="sim models")
    return catalog
