"""What a run will cost, before anything is sent: a low, expected and worst-case range in ₽."""

from __future__ import annotations

import json
import os
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
    thinking_tokens: int = 0  # of one call, in the expected figure
    thinking_basis: str = ""  # the assumption behind them, shown with the estimate


def estimate_run(
    tasks: Sequence[Task], models: Sequence[str], catalog: Catalog, *, epochs: int = 1, **selection: object
) -> list[CostRange]:
    """low: prompts only; expected: prompts + 35% of max_tokens for the answer + the thinking a
    `reasoning` request asks for (`expected_thinking_tokens`: all of a token budget, or the effort's
    share of max_tokens), at most the worst case; high: every answer hits max_tokens, thinking budget
    included, with no help from caching. A judged task adds a row per judge model.

    Caching is counted (in low and expected) only when the task says `prompt.shared_prefix: true`: then
    every call after the first that repeats a prefix (the messages before the last) reads it from the
    cache. A model that cannot take a task's input (images for a text-only model) is refused exactly
    as `run` refuses it, before anything is priced. Models may be variants (`id@effort=high`).
    """
    from evalkit.client.catalog import check_modalities
    from evalkit.client.dialect.reasoning import expected_thinking_tokens, worst_case_output_tokens
    from evalkit.client.variants import parse_variant

    variants = {model: parse_variant(model) for model in expand_models(models)}
    loaded = {task.name: task.load_samples(**selection) for task in tasks}  # type: ignore[arg-type]
    for task in tasks:
        for model, variant in variants.items():
            if (info := catalog.get(variant.router_id)) is not None:
                check_modalities(info, model, task.name, loaded[task.name])
    rows = []
    for task in tasks:
        samples = loaded[task.name]
        prompt_tokens, images, cached = _prompts(task, samples, epochs)
        calls = len(samples) * epochs
        for model, variant in variants.items():
            info = catalog.get(variant.router_id)
            price = info.pricing if info else None
            reasoning = variant.reasoning(task.generation.reasoning)
            max_tokens = task.generation.max_tokens
            worst = worst_case_output_tokens(max_tokens, reasoning)
            thinking, basis = expected_thinking_tokens(max_tokens, reasoning)
            thinking = min(thinking, worst)
            expected = min(worst, max_tokens * EXPECTED_OUTPUT_SHARE + thinking)
            # a card without a cache-read price counts no saving: its row claims no cached tokens
            read = cached if price is not None and price.input_cache_read is not None else 0
            rows.append(
                CostRange(
                    task.name,
                    model,
                    calls,
                    prompt_tokens,
                    images,
                    _cost(price, prompt_tokens, calls, images, read),
                    _cost(price, prompt_tokens, expected * calls, images, read),
                    None if price is None else price.worst_case(prompt_tokens, int(worst * calls), images),
                    read,
                    thinking,
                    basis,
                )
            )
        rows += _judge_rows(task, samples, len(variants) * epochs, catalog)
    return rows


def _judge_rows(task: Task, samples: Sequence[object], answers: int, catalog: Catalog) -> list[CostRange]:
    """A judged task's judge calls, one row per judge (`judge: <id>`): its prompt with no answer, plus
    the answer at 0 / 35% / all of the task's max_tokens, and its reply at 1 token / 35% / all of the
    judge's max_tokens. `answers` = models × epochs: every answer is judged."""
    from evalkit.client.tokens import estimate_message_tokens
    from evalkit.task.render import render

    scorer = task.build_scorer()
    if not getattr(scorer, "calls_models", False):
        return []
    if scorer.baseline is not None:  # pairwise: the baseline's answers decide which samples are judged
        from evalkit.runner.judging import baseline_answers

        scorer.use_baseline(
            baseline_answers(scorer.baseline, os.environ.get("EVALKIT_RESULTS_DIR", "results"))
        )
    per_judge: dict[str, list[int]] = {}
    for sample in samples:
        question = render(task, sample).text  # type: ignore[arg-type]
        try:
            calls = scorer.calls("", sample, question)
        except Exception:  # e.g. a pairwise sample the baseline did not answer: it will not be judged
            continue
        for call in calls:
            per_judge.setdefault(call.judge, []).append(estimate_message_tokens(call.messages))
    rows = []
    for judge, prompts in per_judge.items():
        info = catalog.get(judge)
        price = info.pricing if info else None
        calls, prompt_tokens = len(prompts) * answers, sum(prompts) * answers
        shown = 2 if scorer.mode == "pairwise" else 1  # answers inside each judge prompt
        answer_tokens = task.generation.max_tokens * shown * calls
        reply = scorer.max_tokens * calls
        rows.append(
            CostRange(
                task.name,
                f"judge: {judge}",
                calls,
                prompt_tokens,
                0,
                _cost(price, prompt_tokens, calls, 0, 0),
                _cost(
                    price,
                    prompt_tokens + int(answer_tokens * EXPECTED_OUTPUT_SHARE),
                    reply * EXPECTED_OUTPUT_SHARE,
                    0,
                    0,
                ),
                _cost(price, prompt_tokens + answer_tokens, reply, 0, 0),
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
    for r in rows:
        if r.thinking_tokens:
            lines.append(
                f"expected counts {r.thinking_tokens} thinking tokens a call for {r.model} ({r.thinking_basis}; "
                "assumed, at most the worst case)"
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
