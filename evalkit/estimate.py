"""What a run will cost, before anything is sent: a low, expected and worst-case range in ₽."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalkit.models import Catalog
    from evalkit.task import Task

EXPECTED_OUTPUT_SHARE = 0.35


@dataclass(frozen=True)
class CostRange:
    task: str
    model: str
    calls: int
    prompt_tokens: int
    images: int
    low_rub: float | None
    expected_rub: float | None
    high_rub: float | None


def estimate_run(
    tasks: Sequence[Task], models: Sequence[str], catalog: Catalog, *, epochs: int = 1, **selection: object
) -> list[CostRange]:
    """low: prompts only; expected: prompts + 35% of max_tokens; high: every answer hits max_tokens.

    A model that cannot take a task's input (images for a text-only model) is refused exactly as `run`
    refuses it, before anything is priced.
    """
    from evalkit.models import check_modalities
    from evalkit.prompt import render
    from evalkit.tokens import estimate_message_tokens

    for task in tasks:
        for model in models:
            info = catalog.get(model)
            if info is not None:
                check_modalities(info, task.name, task.family)
    from evalkit.images import ImageCache

    rows = []
    images_seen = ImageCache()  # samples that share an image prepare it once
    for task in tasks:
        samples = task.load_samples(**selection)  # type: ignore[arg-type]
        prompt_tokens = images = 0
        for sample in samples:
            rendered = render(task, sample, images=images_seen)
            prompt_tokens += estimate_message_tokens(rendered.messages)
            images += len(rendered.images)
        calls = len(samples) * epochs
        max_out = task.generation.max_tokens * calls
        for model in models:
            info = catalog.get(model)
            price = info.pricing if info else None
            prompt, pictures = prompt_tokens * epochs, images * epochs
            rows.append(
                CostRange(
                    task.name,
                    model,
                    calls,
                    prompt,
                    pictures,
                    _cost(price, prompt, calls, pictures),
                    _cost(price, prompt, max_out * EXPECTED_OUTPUT_SHARE, pictures),
                    _cost(price, prompt, max_out, pictures),
                )
            )
    return rows


def _cost(price: object, prompt_tokens: int, output_tokens: float, images: int) -> float | None:
    if price is None:
        return None
    return price.estimate(prompt_tokens, int(output_tokens), images=images).total  # type: ignore[attr-defined]


def format_estimate(rows: Sequence[CostRange]) -> str:
    def rub(value: float | None) -> str:
        return "no price" if value is None else f"{value:.4f} ₽"

    lines = [
        f"{'task':<16} {'model':<32} {'calls':>6} {'prompt tok':>10} {'images':>6}  low / expected / worst case"
    ]
    for r in rows:
        lines.append(
            f"{r.task:<16} {r.model:<32} {r.calls:>6} {r.prompt_tokens:>10} {r.images:>6}  "
            f"{rub(r.low_rub)} / {rub(r.expected_rub)} / {rub(r.high_rub)}"
        )
    known = [r for r in rows if r.high_rub is not None]
    if known:
        lines.append(
            f"total: {sum(r.low_rub or 0 for r in known):.4f} / {sum(r.expected_rub or 0 for r in known):.4f}"
            f" / {sum(r.high_rub or 0 for r in known):.4f} ₽"
        )
    return "\n".join(lines)
