"""Model variants: one router model run at several reasoning settings, each a model of its own in results.

`--model deepseek/deepseek-r1@effort=low,high` becomes two models, `deepseek/deepseek-r1@effort=low`
and `deepseek/deepseek-r1@effort=high`; both call `deepseek/deepseek-r1`, and the variant's setting
replaces the task's `generation.reasoning` effort or budget. Results, summaries and plots keep the
variant names, so an effort sweep is one point per (model, effort).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evalkit.client.dialect.reasoning import EFFORTS, reasoning_request
from evalkit.common.errors import ConfigError

SETTINGS = ("effort", "reasoning_tokens")


@dataclass(frozen=True)
class ModelVariant:
    """`name` as results show it; `router_id` as the router knows it; the reasoning it overrides."""

    name: str
    router_id: str
    effort: str | None = None
    reasoning_tokens: int | None = None

    def reasoning(self, task_reasoning: Any) -> dict[str, Any] | None:
        """The request's `reasoning` object: the task's, with this variant's setting in its place."""
        if self.effort is None and self.reasoning_tokens is None:
            return task_reasoning.request() if task_reasoning is not None else None
        exclude = bool(task_reasoning.exclude) if task_reasoning is not None else False
        return reasoning_request(self.effort, self.reasoning_tokens, exclude)


def expand_models(specs: Iterable[str]) -> list[str]:
    """`id@effort=low,high` → `id@effort=low`, `id@effort=high`; plain ids pass through. Order kept,
    duplicates dropped."""
    names: list[str] = []
    for spec in specs:
        base, sep, setting = spec.partition("@")
        key, _, values = setting.partition("=")
        expanded = [f"{base}@{key}={v.strip()}" for v in values.split(",") if v.strip()] if sep else [spec]
        for name in expanded or [spec]:
            parse_variant(name)  # refuse a bad setting before anything is sent
            if name not in names:
                names.append(name)
    return names


def parse_variant(name: str) -> ModelVariant:
    """A model name with an optional `@effort=LEVEL` or `@reasoning_tokens=N`; ConfigError otherwise."""
    base, sep, setting = name.partition("@")
    if not sep:
        return ModelVariant(name, name)
    key, eq, value = setting.partition("=")
    where = f"--model {name}"
    if not base or not eq or not value:
        raise ConfigError(f"expected MODEL@effort=LEVEL[,LEVEL...], got {name!r}", where=where)
    if key == "effort":
        if value not in EFFORTS:
            raise ConfigError(f"effort {value!r} is not one of {', '.join(EFFORTS)}", where=where)
        return ModelVariant(name, base, effort=value)
    if key == "reasoning_tokens":
        if not value.isdigit() or int(value) <= 0:
            raise ConfigError(f"reasoning_tokens must be a positive integer, got {value!r}", where=where)
        return ModelVariant(name, base, reasoning_tokens=int(value))
    raise ConfigError(f"unknown model setting {key!r}; use one of {', '.join(SETTINGS)}", where=where)
