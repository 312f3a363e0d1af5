"""The entry points: `run` (blocking) and `arun` (awaitable) build a run's options, resolve its tasks,
open its endpoint and hand them to the scheduler (`Runner`); `RunResult` is what they return.

    result = evalkit.run(["builtin_qa"], ["meta-llama/llama-4-scout"], limit=50, sim=True)
    result.df          # one row per (task, model, sample, epoch)
    result.summary()   # accuracy with CI, errors, latency percentiles, ₽ per 1000 samples

Works from scripts (`run`) and inside Jupyter, where a loop is already running (`run` then drives
the run on a private thread; `await arun(...)` runs on the notebook's own loop).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.client.endpoints import open_endpoint
from evalkit.common.errors import ConfigError
from evalkit.runner.config import RunConfig
from evalkit.runner.resume import resume_config
from evalkit.runner.scheduler import Runner
from evalkit.task.spec import Task, resolve_task

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.runner.progress import ProgressSink


@dataclass
class RunResult:
    """The outcome of a run. `df` and `summary()` read the journal from disk."""

    run_id: str
    path: Path
    status: str
    message: str = ""
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def df(self) -> pd.DataFrame:
        from evalkit.results import load_results

        return load_results([self.path])

    def summary(self) -> pd.DataFrame:
        from evalkit.results import summarize

        return summarize(self.df)

    def __repr__(self) -> str:
        return f"RunResult(run_id={self.run_id!r}, status={self.status!r}, path='{self.path}', counts={self.counts})"


async def arun(
    tasks: Sequence[str | Path | Task] | str | Task,
    models: Sequence[str] | str,
    *,
    limit: int | None = None,
    limit_per_language: int | None = None,
    languages: Sequence[str] | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    concurrency: int | None = None,
    budget_rub: float | None = None,
    sim: bool = False,
    base_url: str | None = None,
    api_key_env: str | None = None,
    model_routes: dict[str, Any] | Sequence[str] | None = None,
    out: str | Path | None = None,
    run_id: str | None = None,
    resume: str | None = None,
    retry_errors: bool = False,
    force: bool = False,
    cache: bool = True,
    stream: bool = True,
    progress: bool | ProgressSink = True,
    phase: str = "all",
    shard: str | None = None,
    executor: str = "local",
    **advanced: Any,
) -> RunResult:
    """Run tasks × models × epochs and return the outcome; every sample is on disk as it finishes.

    tasks: task names (from `tasks/`), YAML paths or `Task` objects. models: router model ids.
    limit, limit_per_language, languages, seed: which samples (`seed` shuffles before the limits).
    epochs: repeats of every sample (pass@k, variance). concurrency: requests in flight (default 32,
        lowered automatically while the router answers 429). budget_rub: a hard ceiling in ₽.
    sim: use the bundled router simulator (no key, no network). base_url, api_key_env: the router and
        the variable holding its key (default ROUTERAI_API_KEY, else OPENAI_API_KEY). model_routes:
        per-model endpoints, `{"org/model": {"base_url": ..., "api_key_env": ...}}` or "MODEL=URL[,ENV]".
    out: the results folder (default $EVALKIT_RESULTS_DIR or results/). run_id: name the run.
    resume: a run id to finish; retry_errors: also redo its failed samples; force: resume even if a
        task definition changed. cache: reuse recorded responses of identical requests.
    stream: stream responses (needed for time to first token). progress: a tqdm bar (True), nothing
        (False), or a sink such as `evalkit.widgets.RunMonitor()`.
    phase: "all", or "generate" to record responses only (`evalkit.score(run_id)` scores them later).
    shard: "I/N" runs the I-th of N disjoint parts of the units (`evalkit.merge` joins the shards).
    executor: "local", "ray" or "ray://HOST:PORT" (calls and code scoring on a Ray cluster; the
        journal, the ₽ budget and the pace stay with this process).
    advanced: deadline_s, max_attempts, retry_max_total_s, retry_base_delay_s, transport, sim_seed,
        sim_latency_scale, sim_faults, clock (see `RunConfig`).

    Awaitable, for code that already runs an event loop (`await evalkit.arun(...)` in Jupyter).
    """
    from evalkit.results import results_dir

    task_list = [tasks] if isinstance(tasks, (str, Path, Task)) else list(tasks)
    model_list = [models] if isinstance(models, str) else list(models)
    config = RunConfig.build(
        tasks=task_list, models=model_list, limit=limit, limit_per_language=limit_per_language,
        languages=list(languages) if languages else None, seed=seed, epochs=epochs, concurrency=concurrency,
        budget_rub=budget_rub, sim=sim, base_url=base_url, api_key_env=api_key_env, model_routes=model_routes,
        out=str(results_dir(out)), run_id=run_id, resume=resume, retry_errors=retry_errors, force=force,
        cache=cache, stream=stream, progress=progress, phase=phase, shard=shard, executor=executor,
        **advanced,
    )  # fmt: skip
    if config.resume:
        config, task_objects = resume_config(config, task_list)
    else:
        task_objects = [resolve_task(t) for t in task_list]
    if not task_objects or not config.models:
        raise ConfigError("a run needs at least one task and one model")
    with open_endpoint(config, task_objects) as endpoint:
        runner = Runner(config, task_objects, endpoint)
        outcome = await runner.execute()
    return RunResult(runner.run_id, runner.directory, outcome.status, outcome.message, outcome.counts)


@functools.wraps(arun, assigned=("__annotations__",))  # show arun's parameters, keep this doc
def run(*args: Any, **kwargs: Any) -> RunResult:
    """Run tasks × models and return when done (the blocking form of `arun`, same parameters).

    In a script it runs its own event loop; inside Jupyter, where the kernel's loop is busy, it drives
    the run on a private thread, and an interrupted kernel stops the run cleanly.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(*args, **kwargs))
    return _run_on_private_loop(arun(*args, **kwargs))


def _run_on_private_loop(coroutine: Any) -> RunResult:
    """Drive a run on a thread with its own loop. An interrupted kernel (KeyboardInterrupt) cancels the
    run cleanly, so its journal is flushed."""
    loop = asyncio.new_event_loop()
    outcome: dict[str, Any] = {}
    # waited on instead of Thread.join: a KeyboardInterrupt inside join() can mark a running thread
    # as stopped (CPython bpo-45274), and the loop would then be closed under the run's feet
    finished = threading.Event()

    def drive() -> None:
        try:
            outcome["result"] = loop.run_until_complete(main_task)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc
        finally:
            finished.set()

    main_task = loop.create_task(coroutine)
    thread = threading.Thread(target=drive, name="evalkit-run", daemon=True)
    thread.start()
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(main_task.cancel)
        finished.wait()
        raise
    finally:
        if finished.is_set():
            thread.join()
            loop.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


__all__ = ["RunResult", "arun", "run"]
