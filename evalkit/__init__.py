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

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "run": "evalkit.runner.api:run",
    "arun": "evalkit.runner.api:arun",
    "RunResult": "evalkit.runner.api:RunResult",
    "rescore": "evalkit.runner.rescore:rescore",
    "score": "evalkit.runner.rescore:score",
    "merge": "evalkit.runner.merge:merge",
    "load_results": "evalkit.results:load_results",
    "summarize": "evalkit.results:summarize",
    "Task": "evalkit.task.spec:Task",
    "Sample": "evalkit.task.sample:Sample",
    "load_task": "evalkit.task.spec:load_task",
    "Score": "evalkit.scorers.base:Score",
    "Scorer": "evalkit.scorers.base:Scorer",
    "scorer": "evalkit.scorers:scorer",
    "reader": "evalkit.sources:reader",
    "EvalkitError": "evalkit.common.errors:EvalkitError",
    "plots": "evalkit.plots",
    "stats": "evalkit.stats",
    "sim": "evalkit.sim",
    "report": "evalkit.report",
    "widgets": "evalkit.widgets",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # names for type checkers and IDEs; runtime goes through __getattr__
    from evalkit import plots, report, sim, stats, widgets  # noqa: F401
    from evalkit.common.errors import EvalkitError  # noqa: F401
    from evalkit.results import load_results, summarize  # noqa: F401
    from evalkit.runner.api import RunResult, arun, run  # noqa: F401
    from evalkit.runner.merge import merge  # noqa: F401
    from evalkit.runner.rescore import rescore, score  # noqa: F401
    from evalkit.scorers import scorer  # noqa: F401
    from evalkit.scorers.base import Score, Scorer  # noqa: F401
    from evalkit.sources import reader  # noqa: F401
    from evalkit.task.sample import Sample  # noqa: F401
    from evalkit.task.spec import Task, load_task  # noqa: F401


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    from evalkit.common.lazy import load

    value = load(target)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
