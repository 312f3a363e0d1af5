"""What a run will cost, before anything is sent: a low, expected and worst-case range in ₽."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalkit.client.catalog import Catalog
    from evalkit.task.spec import Task

from evalkit.client.tokens import REPLY_PRIMING_TOKENS
from evalkit.client.variants import expand_models

EXPECTED_OUTPUT_SHARE = 0.35


@dataclass(frozen=True)
class CostRange:
    """What one (task, model) may cost. `cached_tokens` are the prompt tokens counted at the cache
    price in the low and expected figures: only when the task declares a shared prefix."""

    task: str
    model: str
    calls: int
    prompt_tokens: int
    images: int
    low_rub: float | None
    expected_rub: float | None
    high_rub: float | None
    cached_tokens: int = 0


def estimate_run(
    tasks: Sequence[Task], models: Sequence[str], catalog: Catalog, *, epochs: int = 1, **selection: object
) -> list[CostRange]:
    """low: prompts only; expected: prompts + 35% of max_tokens; high: every answer hits max_tokens,
    thinking budget included, with no help from caching.

    Caching is counted (in low and expected) only when the task says `prompt.shared_prefix: true`: then
    every call after the first that repeats a prefix (the messages before the last) reads it from the
    cache. A model that cannot take a task's input (images for a text-only model) is refused exactly
    as `run` refuses it, before anything is priced. Models may be variants (`id@effort=high`).
    """
    from evalkit.client.catalog import check_modalities
    from evalkit.client.dialect.reasoning import worst_case_output_tokens
    from evalkit.client.variants import parse_variant

    variants = {model: parse_variant(model) for model in expand_models(models)}
    for task in tasks:
        for variant in variants.values():
            info = catalog.get(variant.router_id)
            if info is not None:
                check_modalities(info, task.name, task.family)
    rows = []
    for task in tasks:
        samples = task.load_samples(**selection)  # type: ignore[arg-type]
        prompt_tokens, images, cached = _prompts(task, samples, epochs)
        calls = len(samples) * epochs
        for model, variant in variants.items():
            info = catalog.get(variant.router_id)
            price = info.pricing if info else None
            reasoning = variant.reasoning(task.generation.reasoning)
            max_out = task.generation.max_tokens * calls
            worst_out = worst_case_output_tokens(task.generation.max_tokens, reasoning) * calls
            rows.append(
                CostRange(
                    task.name,
                    model,
                    calls,
                    prompt_tokens,
                    images,
                    _cost(price, prompt_tokens, calls, images, cached),
                    _cost(price, prompt_tokens, max_out * EXPECTED_OUTPUT_SHARE, images, cached),
                    _cost(price, prompt_tokens, worst_out, images, 0),
                    cached,
                )
            )
    return rows


def _prompts(task: Task, samples: Sequence[object], epochs: int) -> tuple[int, int, int]:
    """(prompt tokens, images, prompt tokens a cache would serve) over every call of the task."""
    from evalkit.client.tokens import estimate_message_tokens
    from evalkit.task.images import ImageCache
    from evalkit.task.render import render

    prompt_tokens = images = cached = 0
    seen: set[str] = set()
    images_seen = ImageCache()  # samples that share an image prepare it once
    for sample in samples:
        rendered = render(task, sample, images=images_seen)  # type: ignore[arg-type]
        prompt_tokens += rendered.estimated_tokens * epochs
        images += len(rendered.images) * epochs
        if task.prompt.shared_prefix and len(rendered.messages) > 1:
            prefix = rendered.messages[:-1]
            shared = estimate_message_tokens(prefix) - REPLY_PRIMING_TOKENS
            key = json.dumps(prefix, sort_keys=True, ensure_ascii=False, default=str)
            cached += shared * (epochs if key in seen else epochs - 1)
            seen.add(key)
    return prompt_tokens, images, cached


def _cost(price: object, prompt_tokens: int, output_tokens: float, images: int, cached: int) -> float | None:
    if price is None:
        return None
    return price.estimate(prompt_tokens, int(output_tokens), images=images, cached_tokens=cached).total  # type: ignore[attr-defined]


def format_estimate(rows: Sequence[CostRange]) -> str:
    def rub(value: float | None) -> str:
        return "no price" if value is None else f"{value:.4f} ₽"

    tw = max([16, *(len(r.task) for r in rows)])
    mw = max([32, *(len(r.model) for r in rows)])
    lines = [
        f"{'task':<{tw}} {'model':<{mw}} {'calls':>6} {'prompt tok':>10} {'images':>6}  low / expected / worst case"
    ]
    for r in rows:
        lines.append(
            f"{r.task:<{tw}} {r.model:<{mw}} {r.calls:>6} {r.prompt_tokens:>10} {r.images:>6}  "
            f"{rub(r.low_rub)} / {rub(r.expected_rub)} / {rub(r.high_rub)}"
        )
    cached = sum(r.cached_tokens for r in rows)
    if cached:
        lines.append(
            f"low and expected count {cached} prompt tokens at the cache price (shared prefix declared)"
        )
    known = [r for r in rows if r.high_rub is not None]
    if known:
        lines.append(
            f"total: {sum(r.low_rub or 0 for r in known):.4f} / {sum(r.expected_rub or 0 for r in known):.4f}"
            f" / {sum(r.high_rub or 0 for r in known):.4f} ₽"
        )
    return "\n".join(lines)
