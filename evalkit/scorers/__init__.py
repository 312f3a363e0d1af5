"""Scorers: one module per kind, looked up by name from task definitions.

    scorer: {name: numeric, params: {tolerance: 0.0}}

Modules are imported only when a task uses them, so `import evalkit` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from evalkit.errors import TaskError
from evalkit.scorers.base import Score, Scorer

__all__ = ["Score", "Scorer", "get_scorer", "scorer_names"]

_REGISTRY: dict[str, str] = {
    "exact": "evalkit.scorers.exact:ExactMatch",
    "regex": "evalkit.scorers.regex:RegexMatch",
    "numeric": "evalkit.scorers.numeric:NumericMatch",
    "extractive": "evalkit.scorers.extractive:ExtractiveQA",
    "choice": "evalkit.scorers.choice:MultipleChoice",
    "relaxed": "evalkit.scorers.relaxed:RelaxedAccuracy",
    "anls": "evalkit.scorers.anls:ANLS",
    "code": "evalkit.scorers.code:CodeExecution",
    "by_type": "evalkit.scorers.by_type:ByAnswerType",
}


def scorer_names() -> list[str]:
    return sorted(_REGISTRY)


def get_scorer(name: str, params: dict[str, Any] | None = None, *, where: str | None = None) -> Scorer:
    """Build the scorer registered as `name` with `params`; a bad name or parameter is a TaskError."""
    target = _REGISTRY.get(name)
    if target is None:
        raise TaskError(f"unknown scorer {name!r}; known scorers: {', '.join(scorer_names())}", where=where)
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise TaskError(f"bad parameters for scorer {name!r}: {exc}", where=where) from None
