"""Scorers: one module per kind, looked up by name from task definitions.

    scorer: {name: numeric, params: {tolerance: 0.0}}

Modules are imported only when a task uses them, so `import evalkit` stays fast. A name not listed
below is looked up as the module `evalkit.scorers.<name>`, whose `@evalkit.scorer("<name>")` registers
it: adding a scorer is one file. Users register their own the same way, from any module they import.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from evalkit.common.errors import TaskError
from evalkit.common.lazy import load
from evalkit.scorers.base import Score, Scorer

T = TypeVar("T")

__all__ = ["Score", "Scorer", "get_scorer", "scorer", "scorer_names"]

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


_REGISTERED: dict[str, Callable[..., Any]] = {}
# helpers, not scorers: never looked up as a scorer's module
_NOT_SCORERS = {"base", "normalize", "code_extract", "judge_prompt"}  # helpers the scorers share


def scorer(name: str) -> Callable[[T], T]:
    """Register a scorer class (or factory) under `name`; tasks then say `scorer: {name: ...}`.

    @evalkit.scorer("contains")
    class Contains(evalkit.Scorer): ...
    """

    def register(factory: T) -> T:
        known = _REGISTERED.get(name)
        if known is not None and _qualified(known) != _qualified(factory):  # re-imports are fine
            raise TaskError(f"scorer name {name!r} is taken by {_qualified(known)}; pick another name")
        if name in _REGISTRY and _REGISTRY[name] != _qualified(factory):
            raise TaskError(f"scorer name {name!r} is a built-in scorer; pick another name")
        _REGISTERED[name] = factory
        return factory

    return register


def _qualified(factory: Callable[..., Any]) -> str:
    return f"{factory.__module__}:{factory.__qualname__}"


def scorer_names() -> list[str]:
    """Every scorer a task may name: built-ins, modules in this package, and registered ones."""
    here = {m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_SCORERS}
    return sorted(set(_REGISTRY) | here | set(_REGISTERED))


def _factory(name: str) -> Callable[..., Any] | None:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _REGISTRY:
        return load(_REGISTRY[name])
    if name.isidentifier() and name not in _NOT_SCORERS and importlib.util.find_spec(f"{__name__}.{name}"):
        importlib.import_module(f"{__name__}.{name}")  # its decorator registers it
    return _REGISTERED.get(name)


def get_scorer(name: str, params: dict[str, Any] | None = None, *, where: str | None = None) -> Scorer:
    """Build the scorer registered as `name` with `params`; a bad name or parameter is a TaskError."""
    cls = _factory(name)
    if cls is None:
        raise TaskError(f"unknown scorer {name!r}; known scorers: {', '.join(scorer_names())}", where=where)
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise TaskError(f"bad parameters for scorer {name!r}: {exc}", where=where) from None
