"""The runner: tasks × models × epochs through the client, with concurrency, budget, cache and journal.

    result = evalkit.run(["builtin_qa"], ["meta-llama/llama-4-scout"], limit=50, sim=True)
    result.df          # one row per (task, model, sample, epoch)
    result.summary()   # accuracy with CI, errors, latency percentiles, ₽ per 1000 samples

Works from scripts (`run`) and inside Jupyter, where a loop is already running (`run` then drives
the run on a private thread; `await arun(...)` runs on the notebook's own loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.budget import Budget, BudgetExhausted, Reservation
from evalkit.client.endpoints import model_endpoint, open_endpoint
from evalkit.client.variants import parse_variant
from evalkit.errors import ConfigError, EvalkitError, StorageError
from evalkit.journal import Journal, JournalState, Key
from evalkit.progress import NullProgress, ProgressSink, ProgressSnapshot, TqdmProgress
from evalkit.run_config import RunConfig, new_run_id
from evalkit.scorers.base import close_scorer, is_blocking
from evalkit.task import Sample, Task, resolve_task
from evalkit.validate import check_samples

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.client import CallRecord, Endpoint
    from evalkit.client.catalog import Catalog, ModelInfo
    from evalkit.prompt import Rendered
    from evalkit.scorers.base import Score

PROGRESS_INTERVAL_S = 0.25


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


class StopRun(Exception):
    """Ends dispatching for the whole run (out of credit, bad key, budget)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Unit:
    task: Task
    sample: Sample
    model: str
    epoch: int

    @property
    def key(self) -> Key:
        return (self.task.name, self.model, self.sample.id, self.epoch)


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
        config, task_objects = _resume_config(config, task_list)
    else:
        task_objects = [resolve_task(t) for t in task_list]
    if not task_objects or not config.models:
        raise ConfigError("a run needs at least one task and one model")
    with open_endpoint(config, task_objects) as endpoint:
        runner = Runner(config, task_objects, endpoint)
        return await runner.execute()


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


def _resume_config(config: RunConfig, given: list[Any]) -> tuple[RunConfig, list[Task]]:
    from evalkit.journal import read_manifest

    directory = Path(config.out) / config.resume
    manifest = read_manifest(directory)
    saved, recorded_tasks = _read_back(manifest, directory)
    tasks = [resolve_task(t) for t in given] if given else [resolve_task(t) for t in recorded_tasks]
    changed = _changed_tasks(manifest, tasks)
    if changed and not config.force:
        raise ConfigError(
            f"the definition of task(s) {', '.join(changed)} changed since run {config.resume} started, "
            "so old and new samples would not be comparable; start a new run, or resume with force=True",
            option="force",
        )
    merged = config.resumed_from(saved)
    return merged, tasks


def _read_back(manifest: dict[str, Any], directory: Path) -> tuple[RunConfig, list[str]]:
    """The options and tasks a run recorded; a manifest damaged or edited by hand is one clear error."""
    try:
        saved = RunConfig.model_validate(manifest["config"])
        recorded_tasks = [t["file"] or t["name"] for t in manifest["tasks"]]
        invocations = manifest.get("invocations") or []
        if not isinstance(invocations, list) or not all(isinstance(i, dict) for i in invocations):
            raise TypeError("invocations is not a list of objects")
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        if errors := getattr(exc, "errors", None):  # pydantic: name the field
            first = errors()[0]
            reason = f"config.{'.'.join(map(str, first['loc']))}: {first['msg']}".rstrip(".: ")
        raise ConfigError(
            f"the manifest cannot be read back ({reason[:200]}); was it edited? Nothing was sent",
            where=str(directory / "manifest.json"),
        ) from None
    return saved, recorded_tasks


def _changed_tasks(manifest: dict[str, Any], tasks: list[Task]) -> list[str]:
    saved = {t["name"]: t["fingerprint"] for t in manifest.get("tasks", [])}
    return [t.name for t in tasks if t.name in saved and saved[t.name] != t.fingerprint()]


class Runner:
    """One run: owns the journal, cache, budget, limiter and clients for its duration."""

    def __init__(self, config: RunConfig, tasks: list[Task], endpoint: Endpoint) -> None:
        self.config = config
        self.tasks = tasks
        self.endpoint = endpoint
        self.variants = {model: parse_variant(model) for model in config.models}
        self.endpoints = {
            model: model_endpoint(config, model, endpoint, self.variants[model].router_id)
            for model in config.models
        }
        self.run_id = config.run_id or new_run_id()
        self.directory = Path(config.out) / self.run_id
        self.stop: StopRun | None = None
        self.dead_models: dict[str, str] = {}
        # the whole run's samples (earlier invocations included), and what this invocation did
        self.counts = {"done": 0, "errors": 0, "scored": 0, "score_sum": 0.0}
        self.invocation = {"done": 0, "errors": 0, "sent": 0, "from_cache": 0}
        self.tally = {model: {"ok": 0, "errors": 0} for model in config.models}
        self.last_error: dict[str, str] = {}
        self.backing_off: str | None = None  # why the last call backed off
        self.waiting_retry: set[Key] = set()  # calls sleeping before their next attempt
        self.unconfirmed: dict[Key, float] = {}  # ₽ of cut attempts per call, until its response line
        self.remote: Any = None  # the Ray executor, when calls and code scoring run on a cluster
        self._started = config.clock.monotonic()

    async def execute(self) -> RunResult:
        journal = (
            Journal.open_existing(self.directory) if self.config.resume else Journal.create(self.directory)
        )
        try:  # the run's lock is held until its final manifest is written
            return await self._execute(journal)
        finally:
            journal.release()

    async def _execute(self, journal: Journal) -> RunResult:
        from evalkit.manifest import build_manifest

        state = journal.read_state() if self.config.resume else JournalState()
        samples = {task.name: self._load(task) for task in self.tasks}
        for task in self.tasks:  # a sample that would be scored wrong stops the run before any request
            check_samples(task, samples[task.name])
        catalogs = await self._catalogs()
        self._check_models(catalogs, samples)
        self.prices = {model: _price(catalogs[model], self._router_id(model)) for model in self.config.models}
        self.simulated = any(
            self.endpoints[m].simulated or getattr(catalogs[m].get(self._router_id(m)), "simulated", False)
            for m in self.config.models
        )
        total = sum(1 for _ in self._units(samples))  # this shard's part, when the run is one
        manifest = build_manifest(
            self, samples, catalogs, previous=journal.read_manifest() if self.config.resume else None
        )
        self.started_at = manifest["started_at"]
        self.history = [_settled(entry) for entry in manifest.get("invocations") or []]
        # on disk from the start, so an invocation that is killed still shows in the history
        manifest["invocations"] = [*self.history, {"started_at": self.started_at, "status": "running"}]
        journal.write_manifest(manifest)
        self.budget = Budget(
            self.config.budget_rub, spent_rub=state.spent_rub, unconfirmed_rub=state.unconfirmed_rub
        )
        self.journal, self.state = journal, state
        status, message, finished = "completed", "", False
        try:
            journal.open()
            status, message = await self._drive(samples, total)
            finished = True
        except asyncio.CancelledError:
            status = "interrupted"
            message = (
                f"interrupted; resume with: evalkit run --resume {self.run_id} --out {self.config.out} "
                f"(in Python: evalkit.run(tasks, models, resume={self.run_id!r}, out={self.config.out!r}))"
            )
            # Ctrl-C surfaces as a bare KeyboardInterrupt (asyncio.run, Jupyter): this line is the hint
            print(f"evalkit: run {self.run_id} {message}", file=sys.stderr, flush=True)
            raise
        except Exception as exc:  # e.g. an unreadable image met mid-run: the manifest must not say completed
            status, message = "failed", str(exc) if isinstance(exc, EvalkitError) else repr(exc)
            raise
        finally:
            self._close_out(journal, manifest, status, message, total, failing=not finished)
        return RunResult(self.run_id, self.directory, status, message, dict(self.counts, total=total))

    def _close_out(
        self,
        journal: Journal,
        manifest: dict[str, Any],
        status: str,
        message: str,
        total: int,
        *,
        failing: bool,
    ) -> None:
        """Flush the journal and record how the run ended. When the run is already failing (say the disk
        is full), a second failure here must not hide the first: the manifest then keeps its last
        consistent state, which a resume handles like any stopped run."""
        flush_error: StorageError | None = None
        try:
            journal.close()
        except StorageError as exc:
            if not failing:
                status, message, flush_error = "failed", str(exc), exc
        manifest.update(self._closing(status, message, total))
        try:
            journal.write_manifest(manifest)
        except StorageError:
            if not failing and flush_error is None:
                raise
        if flush_error is not None:
            raise flush_error

    def _load(self, task: Task) -> list[Sample]:
        return task.load_samples(
            self.config.limit,
            limit_per_language=self.config.limit_per_language,
            seed=self.config.seed,
            languages=self.config.languages,
        )

    def _router_id(self, model: str) -> str:
        """The id the router knows a model (or a variant of it) by."""
        return self.variants[model].router_id

    async def _catalogs(self) -> dict[str, Catalog]:
        """Each model's catalog, read once per distinct endpoint."""
        from evalkit.client.catalog import load_catalog

        by_endpoint = {endpoint: await load_catalog(endpoint) for endpoint in set(self.endpoints.values())}
        return {model: by_endpoint[endpoint] for model, endpoint in self.endpoints.items()}

    def _check_models(self, catalogs: dict[str, Catalog], samples: dict[str, list[Sample]]) -> None:
        from evalkit.client.catalog import supports_images

        for model in self.config.models:
            catalog = catalogs[model]
            info = catalog.get(self._router_id(model))
            if info is None:
                if catalog.authoritative:
                    raise ConfigError(
                        f"unknown model id {self._router_id(model)!r}: the router's catalog has no such "
                        "model (see `evalkit models`)"
                    )
                continue
            for task in self.tasks:
                # from the samples, not the family: a "qa" task may send images too
                if any(s.images for s in samples[task.name]) and not supports_images(info):
                    raise ConfigError(
                        f"model {model!r} does not take image input (its catalog entry lists "
                        f"{', '.join(info.input_modalities)}), but task {task.name!r} sends images"
                    )

    async def _drive(self, samples: dict[str, list[Sample]], total: int) -> tuple[str, str]:
        from evalkit.cache import ResponseCache
        from evalkit.client import Client, RetryPolicy
        from evalkit.images import ImageCache
        from evalkit.limiter import AdaptiveLimiter

        if self.config.executor != "local":
            from evalkit.ray_executor import RayExecutor

            self.remote = RayExecutor.start(self)
        self.scorers = {task.name: task.build_scorer() for task in self.tasks}
        self.image_cache = ImageCache()  # this run's: freed with it, never shared between runs
        self.limiter = AdaptiveLimiter(self.config.concurrency, clock=self.config.clock)
        self.cache = ResponseCache(Path(self.config.out) / "cache.sqlite") if self.config.cache else None
        retry = RetryPolicy(
            max_attempts=self.config.max_attempts,
            max_total_s=self.config.retry_max_total_s,
            base_delay_s=self.config.retry_base_delay_s,
        )
        self.clients = {
            endpoint: Client(endpoint, stream=self.config.stream, transport=self.config.transport,
                             deadline_s=self.config.deadline_s, retry=retry, clock=self.config.clock)
            for endpoint in set(self.endpoints.values())
        }  # fmt: skip
        sink = self._sink(total)
        units = self._units(samples)
        ticker = asyncio.create_task(self._tick(sink, total))
        try:
            workers = [asyncio.create_task(self._worker(units)) for _ in range(self.config.concurrency)]
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            # the progress display's last word must be "interrupted", not "completed"
            self.stop = self.stop or StopRun("interrupted", "interrupted")
            raise
        finally:
            ticker.cancel()
            for worker in locals().get("workers", []):
                worker.cancel()
            sink.close(self._snapshot(total, self._final_status()))
            await self._release()
        message = self.stop.message if self.stop else self._dead_model_message()
        if generated := self.counts.get("generated"):
            hint = f"{generated} responses recorded, not scored; score them with: evalkit score {self.run_id}"
            message = f"{message}; {hint}" if message else hint
        return self._final_status(), message

    async def _release(self) -> None:
        if self.remote is not None:
            await self.remote.close()
        for client in self.clients.values():
            await client.close()
        if self.cache is not None:
            self.cache.close()
        for scorer in self.scorers.values():  # e.g. the code sandbox's warm workers
            await asyncio.to_thread(close_scorer, scorer)

    def _final_status(self) -> str:
        """Honest: a model that answered nothing fails the run; any error at all is said."""
        if self.stop is not None:
            return self.stop.status
        if self._models_without_an_answer():
            return "failed"
        return "completed_with_errors" if self.dead_models or self.counts["errors"] else "completed"

    def _models_without_an_answer(self) -> list[str]:
        return [
            model
            for model in self.config.models
            if self.tally[model]["ok"] == 0 and (self.tally[model]["errors"] or model in self.dead_models)
        ]

    def _dead_model_message(self) -> str:
        """Why the run did not simply complete: the models that answered nothing, then any errors."""
        parts = []
        for model in self._models_without_an_answer():
            why = self.dead_models.get(model) or self.last_error.get(model, "")
            parts.append(f"every call to {model} failed ({self.tally[model]['errors']} recorded; {why})")
        parts += [
            f"{m}: {why}" for m, why in self.dead_models.items() if m not in self._models_without_an_answer()
        ]
        if self.counts["errors"] and not parts:
            parts.append(
                f"{self.counts['errors']} of {self.counts['done']} samples are errors, not scored "
                "(`evalkit run --resume ID --retry-errors` retries them)"
            )
        return "; ".join(parts)

    def _units(self, samples: dict[str, list[Sample]]) -> Iterator[Unit]:
        from evalkit.shards import parse_shard

        shard = parse_shard(self.config.shard) if self.config.shard else None
        for task in self.tasks:
            for sample in samples[task.name]:
                for epoch in range(self.config.epochs):
                    for model in self.config.models:
                        unit = Unit(task, sample, model, epoch)
                        if shard is None or shard.holds(unit.key):
                            yield unit

    async def _worker(self, units: Iterator[Unit]) -> None:
        for unit in units:
            if self.stop is not None:
                return
            if unit.model in self.dead_models:
                continue
            try:
                await self._process(unit)
            except StopRun as stop:
                self.stop = self.stop or stop
            except BudgetExhausted as exc:
                self.stop = self.stop or StopRun(
                    "budget_exhausted", f"{exc}; resume with a larger budget_rub"
                )

    async def _process(self, unit: Unit) -> None:
        key = unit.key
        if key in self.state.done or (key in self.state.failed and not self.config.retry_errors):
            self._count_existing(key)
            return
        if self.config.phase == "generate" and _answered(self.state.responses.get(key)):
            self._count_generated(unit.model)
            return
        from evalkit.prompt import render

        if unit.sample.images:  # reading, decoding and encoding images blocks: never on the event loop
            rendered = await asyncio.to_thread(render, unit.task, unit.sample, images=self.image_cache)
        else:
            rendered = render(unit.task, unit.sample)
        params = _params(
            unit.task, unit.epoch, self.variants[unit.model].reasoning(unit.task.generation.reasoning)
        )
        request = rendered.cache_key(self.endpoints[unit.model].cache_id, unit.model, params, unit.epoch)
        record, from_cache = await self._response(unit, rendered, params, request)
        if record is None:
            return
        if self.config.phase == "generate" and record.error is None:
            self._count_generated(unit.model)  # its response line is on disk; `evalkit score` scores it
            return
        await self._finish(unit, rendered, record, request, from_cache)

    def _count_existing(self, key: Key) -> None:
        """Samples recorded by earlier invocations count in the run's totals too."""
        if key in self.state.failed:
            self._count(key[1], None, self.state.errors.get(key, "error"))
        else:
            self._count(key[1], self.state.scores.get(key), None)

    def _count_generated(self, model: str) -> None:
        """A response recorded and not scored (phase generate): done for this phase."""
        self.counts["done"] += 1
        self.counts["generated"] = self.counts.get("generated", 0) + 1
        self.tally[model]["ok"] += 1

    def _count(self, model: str, score: float | None, error: str | None) -> None:
        self.counts["done"] += 1
        if error is not None:
            self.counts["errors"] += 1
            self.tally[model]["errors"] += 1
            self.last_error[model] = error
            return
        self.tally[model]["ok"] += 1
        if score is not None:
            self.counts["scored"] += 1
            self.counts["score_sum"] += score

    async def _response(
        self, unit: Unit, rendered: Rendered, params: dict[str, Any], request: str
    ) -> tuple[CallRecord | None, bool]:
        """The call's record: from this run's journal, the cache, or a new call (journaled at once)."""
        from evalkit.client import CallRecord

        previous = self.state.responses.pop(unit.key, None)
        if previous is not None and not (previous["call"].get("error") and self.config.retry_errors):
            return CallRecord.from_dict(previous["call"]), bool(previous.get("from_cache"))
        generate_only = self.config.phase == "generate"
        if self.cache is not None and (hit := self.cache.get(request)) is not None:
            self.invocation["from_cache"] += 1
            if generate_only:  # no sample line will say so: the response line keeps the answer
                line = {"kind": "response", "key": list(unit.key), "request": request, "call": hit}
                await self.journal.append(line | {"from_cache": True})
            return CallRecord.from_dict(hit), True
        record = await self._call(unit, rendered, params)
        if record is None:
            return None, False
        # its sample line follows at once unless scoring is slow (code) or left to a later phase, and
        # that line's fsync covers this one too: otherwise a separate fsync is worth waiting for
        slow_scorer = generate_only or is_blocking(self.scorers[unit.task.name])
        line = {"kind": "response", "key": list(unit.key), "request": request, "call": record.to_dict()}
        if unconfirmed := self.unconfirmed.pop(unit.key, 0.0):
            line["unconfirmed_rub"] = unconfirmed  # cut attempts' worst case: the router may bill them
        await self.journal.append(line, sync=slow_scorer)
        if self.cache is not None and record.error is None:
            self.cache.put(request, record.to_dict())
        return record, False

    async def _call(self, unit: Unit, rendered: Rendered, params: dict[str, Any]) -> CallRecord | None:
        from evalkit.client import CallHooks, is_model_fatal, is_run_fatal
        from evalkit.client.errors import may_be_billed

        worst = self._worst_case(unit, rendered, params)
        reservations: list[Reservation] = []

        async def before_attempt(attempt: int) -> None:
            self.waiting_retry.discard(unit.key)
            if self.stop is not None:
                raise StopRun(self.stop.status, self.stop.message)
            reservations.append(await self.budget.reserve(worst))
            await self.limiter.acquire()
            self.invocation["sent"] += 1

        async def after_attempt(record: CallRecord, attempt: int) -> None:
            self.limiter.release()
            if record.error == "rate_limit":
                self.limiter.on_rate_limited()
            elif record.error is None:
                self.limiter.on_success()
            estimate = self._estimate(unit, rendered, record)
            unconfirmed = await self.budget.settle(
                reservations.pop(),
                record.cost_rub,
                estimate.total if estimate else None,
                possibly_billed=may_be_billed(record.error),
            )
            if unconfirmed:
                self.unconfirmed[unit.key] = self.unconfirmed.get(unit.key, 0.0) + unconfirmed

        async def on_backoff(delay_s: float, record: CallRecord) -> None:
            self.waiting_retry.add(unit.key)
            self.backing_off = f"{record.error} from the router"

        try:
            if self.remote is not None:
                record = await self._call_remote(unit, rendered, params, worst)
            else:
                record = await self.clients[self.endpoints[unit.model]].call(
                    self._router_id(unit.model),
                    rendered.messages,
                    params,
                    hooks=CallHooks(
                        before_attempt=before_attempt, after_attempt=after_attempt, on_backoff=on_backoff
                    ),
                )
        finally:
            self.waiting_retry.discard(unit.key)
        if record.error and is_run_fatal(record.error):
            hint = _RUN_FATAL_HINT.get(record.error, "").format(run_id=self.run_id)
            stop = StopRun(
                _RUN_FATAL_STATUS.get(record.error, "failed"),
                f"{record.error}: {record.error_message}{hint}",
            )
            if self.remote is not None:  # no node starts another attempt
                await self.remote.stop(stop.status, stop.message)
            raise stop
        if record.error and is_model_fatal(record.error):
            self.dead_models[unit.model] = f"{record.error}: {record.error_message}"
            return None
        return record

    async def _call_remote(
        self, unit: Unit, rendered: Rendered, params: dict[str, Any], worst: float
    ) -> CallRecord:
        """The call on a cluster node; its attempts are reserved and paced by the cluster's treasury."""
        if self.stop is not None:
            raise StopRun(self.stop.status, self.stop.message)
        record, outcome = await self.remote.call(
            unit, self._router_id(unit.model), rendered.messages, params, worst
        )
        if record is None:
            status, why = outcome["refused"]
            if status == "budget_exhausted":
                raise BudgetExhausted(why)
            raise StopRun(status, why)
        return record

    def _worst_case(self, unit: Unit, rendered: Rendered, params: dict[str, Any]) -> float:
        """The most this call can be billed: every prompt byte a token, and all the output the request
        allows, thinking included (billed as output)."""
        from evalkit.client.dialect.reasoning import worst_case_output_tokens

        price = self.prices.get(unit.model)
        if price is None:
            if self.config.budget_rub is not None:
                raise ConfigError(
                    f"no price card for model {unit.model!r}, so the ₽ budget cannot be enforced"
                )
            return 0.0
        output_bound = worst_case_output_tokens(unit.task.generation.max_tokens, params.get("reasoning"))
        return price.estimate(rendered.prompt_token_bound, output_bound, images=len(rendered.images)).total

    def _estimate(self, unit: Unit, rendered: Rendered, record: CallRecord) -> Any:
        price = self.prices.get(unit.model)
        if price is None or record.prompt_tokens is None:
            return None
        return price.estimate(
            record.prompt_tokens,
            record.completion_tokens or 0,
            images=len(rendered.images),
            cached_tokens=record.cached_tokens or 0,
            reasoning_tokens=record.reasoning_tokens or 0,
            cache_write_tokens=record.cache_write_tokens or 0,
        )

    async def _finish(
        self, unit: Unit, rendered: Rendered, record: CallRecord, request: str, from_cache: bool
    ) -> None:
        from evalkit.record import sample_row

        score = None
        if record.error is None:
            score, failure = await self._score(unit, record.output or "")
            if failure is not None:
                record = dataclasses.replace(record, error="scoring_failed", error_message=failure)
        row = sample_row(
            run_id=self.run_id,
            unit=unit,
            rendered=rendered,
            record=record,
            score=score,
            estimate=self._estimate(unit, rendered, record),
            request=request,
            from_cache=from_cache,
            simulated=self.simulated,
        )
        self.journal.write(row)
        # counted as soon as the line is in the file, so a cancellation during the fsync below (Ctrl-C)
        # cannot leave the manifest's totals one short of the journal
        self.invocation["done"] += 1
        error = f"{record.error}: {record.error_message or ''}".rstrip(": ") if record.error else None
        self.invocation["errors"] += error is not None
        self._count(unit.model, score.value if score is not None else None, error)
        await self.journal.sync()

    async def _score(self, unit: Unit, output: str) -> tuple[Score | None, str | None]:
        """Score one output (`score_output`, shared with `evalkit score` and `rescore`): a scorer that
        breaks (e.g. the sandbox itself failed) is an error, not a 0."""
        from evalkit.rescore import score_output

        scorer = self.scorers[unit.task.name]
        if not is_blocking(scorer):
            return score_output(scorer, output, unit.sample)
        if self.remote is None:
            return await asyncio.to_thread(score_output, scorer, output, unit.sample)
        try:  # on a node's warm sandbox
            return await self.remote.score(unit.task, output, unit.sample)
        except Exception as exc:  # the cluster failed, not the answer: an error, never a 0
            return None, f"{type(exc).__name__}: {exc}"[:500]

    def _sink(self, total: int) -> ProgressSink:
        progress = self.config.progress
        if progress is False or progress is None:
            return NullProgress()
        if progress is True:
            return TqdmProgress(total, description=f"evalkit {self.run_id}")
        return progress  # a ProgressSink given by the caller (e.g. evalkit.widgets.RunMonitor)

    async def _tick(self, sink: ProgressSink, total: int) -> None:
        while True:
            sink.update(self._snapshot(total, "running"))
            await asyncio.sleep(PROGRESS_INTERVAL_S)

    def _snapshot(self, total: int, status: str) -> ProgressSnapshot:
        # said while any call waits to retry or concurrency is lowered, and only then (never stale)
        concurrency = f"concurrency {self.limiter.limit}/{self.limiter.maximum}"
        backing_off = None
        if self.waiting_retry:
            backing_off = (
                f"{self.backing_off}: {len(self.waiting_retry)} call(s) waiting to retry, {concurrency}"
            )
        elif self.limiter.backing_off:
            backing_off = f"rate limited, {concurrency}"
        return ProgressSnapshot(
            total=total,
            done=self.counts["done"],
            errors=self.counts["errors"],
            score_sum=self.counts["score_sum"],
            scored=self.counts["scored"],
            spent_rub=self.budget.spent_rub,
            elapsed_s=self.config.clock.monotonic() - self._started,
            in_flight=self.limiter.in_flight,
            concurrency=self.limiter.limit,
            backing_off=backing_off,
            status=status,
        )

    def _closing(self, status: str, message: str, total: int) -> dict[str, Any]:
        from datetime import UTC, datetime

        ended = datetime.now(UTC).isoformat()
        this = {
            "started_at": self.started_at,
            "ended_at": ended,
            "status": status,
            **self.invocation,
            "spent_rub": self.budget.spent_rub - self.state.spent_rub,
        }
        history = [*self.history, this]
        return {
            "status": status,
            "message": message,
            "ended_at": ended,
            # the whole run, all invocations; `invocations` says what each one did
            "totals": {
                **self.counts,
                "total": total,
                "spent_rub": self.budget.spent_rub,
                "unconfirmed_rub": self.budget.unconfirmed_rub,
                "sent": sum(i.get("sent", 0) for i in history),
                "from_cache": sum(i.get("from_cache", 0) for i in history),
            },
            "invocations": history,
            "dead_models": self.dead_models,
            **({"executor": self.remote.summary()} if self.remote is not None else {}),
        }


_RUN_FATAL_STATUS = {"out_of_credit": "out_of_credit", "auth": "auth_failed", "forbidden": "auth_failed"}
_RUN_FATAL_HINT = {
    "auth": " (the router rejected the API key: check ROUTERAI_API_KEY, or the variable named by --api-key-env)",
    "out_of_credit": " (top up the account, then finish with: evalkit run --resume {run_id})",
}


def _settled(invocation: dict[str, Any]) -> dict[str, Any]:
    """An earlier invocation as the history keeps it: one still `running` ended without recording its
    outcome (killed, power lost, a disk too full for the manifest); its samples are in the totals."""
    if invocation.get("status") != "running":
        return invocation
    return invocation | {"status": "unrecorded", "note": "ended without recording its outcome (killed?)"}


def _answered(response: dict[str, Any] | None) -> bool:
    """A recorded response that holds an answer (not a failed call)."""
    return response is not None and not (response.get("call") or {}).get("error")


def _params(task: Task, epoch: int, reasoning: dict[str, Any] | None = None) -> dict[str, Any]:
    generation = task.generation
    params: dict[str, Any] = {"temperature": generation.temperature, "max_tokens": generation.max_tokens}
    if generation.stop:
        params["stop"] = generation.stop
    if generation.seed is not None:
        params["seed"] = generation.seed + epoch
    if generation.top_p is not None:
        params["top_p"] = generation.top_p
    if reasoning is not None:
        params["reasoning"] = reasoning
    params.update(generation.extra)
    return params


def _price(catalog: Catalog, model: str) -> Any:
    info: ModelInfo | None = catalog.get(model)
    return info.pricing if info is not None else None


__all__ = ["RunResult", "arun", "run", "EvalkitError"]
