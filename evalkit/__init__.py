"""evalkit: evaluate LLMs behind an OpenAI-compatible router that bills in rubles.

Public API (imported lazily so that `import evalkit` stays fast):

    evalkit.run(tasks, models, ...) / await evalkit.arun(...)   -> RunResult
    evalkit.rescore(run_id, scorer=None) -> RunResult   (score recorded answers again; no requests)
    evalkit.score(run_id) -> RunResult   (score a run made with phase="generate", in place)
    evalkit.merge(shard_runs, into=run_id) -> RunResult   (join the shards of one run exactly)
    evalkit.load_results(runs) -> pandas.DataFrame
    evalkit.summarize(df) -> pandas.DataFrame
    evalkit.Task, evalkit.Sample, evalkit.load_task
    evalkit.Scorer, evalkit.Score, @evalkit.scorer("name"), @evalkit.reader("format")   (plugins)
    evalkit.plots, evalkit.stats, evalkit.sim
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "run": "evalkit.runner:run",
    "arun": "evalkit.runner:arun",
    "RunResult": "evalkit.runner:RunResult",
    "rescore": "evalkit.rescore:rescore",
    "score": "evalkit.rescore:score",
    "merge": "evalkit.shards:merge",
    "load_results": "evalkit.results:load_results",
    "summarize": "evalkit.results:summarize",
    "Task": "evalkit.task:Task",
    "Sample": "evalkit.task:Sample",
    "load_task": "evalkit.task:load_task",
    "Score": "evalkit.scorers.base:Score",
    "Scorer": "evalkit.scorers.base:Scorer",
    "scorer": "evalkit.scorers:scorer",
    "reader": "evalkit.sources:reader",
    "EvalkitError": "evalkit.errors:EvalkitError",
    "plots": "evalkit.plots",
    "stats": "evalkit.stats",
    "sim": "evalkit.sim",
    "report": "evalkit.report",
    "widgets": "evalkit.widgets",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # names for type checkers and IDEs; runtime goes through __getattr__
    from evalkit import plots, report, sim, stats, widgets  # noqa: F401
    from evalkit.errors import EvalkitError  # noqa: F401
    from evalkit.rescore import rescore, score  # noqa: F401
    from evalkit.results import load_results, summarize  # noqa: F401
    from evalkit.runner import RunResult, arun, run  # noqa: F401
    from evalkit.scorers import scorer  # noqa: F401
    from evalkit.scorers.base import Score, Scorer  # noqa: F401
    from evalkit.shards import merge  # noqa: F401
    from evalkit.sources import reader  # noqa: F401
    from evalkit.task import Sample, Task, load_task  # noqa: F401


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    from evalkit.lazy import load

    value = load(target)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """Importing a submodule binds it on its package, so `import evalkit.rescore` would hide the function
    `evalkit.rescore` (and `evalkit.score`'s module would) once imported first: an export keeps its name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and ":" in _EXPORTS.get(name, ""):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
