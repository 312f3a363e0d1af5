"""The scheduler: one run's tasks × models × epochs through the client, with concurrency, budget, cache
and journal. `run`/`arun` (`run_api.py`) build it; this module only schedules.

Each unit of work (a sample, a model, an epoch) goes through four steps, each its own method so that
other phases and scorers can reuse them: `prepare` (render the request and its cache key), `respond`
(the recorded response, the cache, or a paid `call`, journaled at once), `score`, and `record` (the
sample line; it counts once that line is on disk). `--phase generate` stops after `respond`; with a
Ray executor (`remote`, runner/ray_executor.py) `call` and blocking scoring run on cluster nodes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.client.endpoints import model_endpoint
from evalkit.client.variants import parse_variant
from evalkit.common.errors import ConfigError, EvalkitError, StorageError
from evalkit.common.text import encodable
from evalkit.runner.budget import Budget, BudgetExhausted
from evalkit.runner.config import RunConfig, new_run_id
from evalkit.runner.journal import Journal, JournalState, Key
from evalkit.runner.judging import JudgeCalls, Judged, is_judged, judge_prices
from evalkit.runner.progress import NullProgress, ProgressSink, ProgressSnapshot, TqdmProgress
from evalkit.runner.stop import StopRun, run_fatal
from evalkit.runner.unit import Unit
from evalkit.scorers.base import close_scorer, is_blocking
from evalkit.task.spec import Sample, Task
from evalkit.task.validate import check_samples

if TYPE_CHECKING:
    from evalkit.client import CallRecord, Endpoint
    from evalkit.client.catalog import Catalog, ModelInfo
    from evalkit.scorers.base import Score
    from evalkit.task.render import Rendered

PROGRESS_INTERVAL_S = 0.25


@dataclass
class Outcome:
    """How a run ended: its status, why, and the whole run's counts."""

    status: str
    message: str = ""
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """A unit's request, ready to send: the rendered messages, the generation parameters and the
    request's content key (the response cache's key)."""

    rendered: Rendered
    params: dict[str, Any]
    request: str


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
        self.scorers: dict[str, Any] = {}  # task name → its scorer, built once in `execute`
        self.dead_models: dict[str, str] = {}
        # the whole run's samples (earlier invocations included), and what this invocation did
        self.counts = {"done": 0, "errors": 0, "scored": 0, "score_sum": 0.0}
        self.invocation = {"done": 0, "errors": 0, "sent": 0, "from_cache": 0}
        self.tally = {model: {"ok": 0, "errors": 0} for model in config.models}
        self.last_error: dict[str, str] = {}
        self.backing_off: str | None = None  # why the last call backed off
        self.waiting_retry: set[Key] = set()  # calls sleeping before their next attempt
        self.unconfirmed: dict[Any, float] = {}  # ₽ of cut attempts per call, until its response line
        self.judge_endpoints: dict[str, Endpoint] = {}  # judged tasks: where each judge is reached
        self.judge_prices: dict[str, Any] = {}
        self.remote: Any = None  # the Ray executor, when calls and code scoring run on a cluster
        self._started = config.clock.monotonic()

    async def execute(self) -> Outcome:
        journal = (
            Journal.open_existing(self.directory) if self.config.resume else Journal.create(self.directory)
        )
        try:  # the run's lock is held until its final manifest is written
            self.scorers = await self._build_scorers()
            try:
                return await self._execute(journal)
            finally:
                await self._close_scorers()
        finally:
            journal.release()

    async def _build_scorers(self) -> dict[str, Any]:
        """Each task's scorer, built once for the run: checked against the samples, used, closed."""
        scorers: dict[str, Any] = {}
        try:
            for task in self.tasks:
                scorers[task.name] = task.build_scorer()
        except BaseException:
            self.scorers = scorers
            await self._close_scorers()
            raise
        return scorers

    async def _close_scorers(self) -> None:
        for scorer in self.scorers.values():  # e.g. the code sandbox's warm workers
            await asyncio.to_thread(close_scorer, scorer)

    async def _execute(self, journal: Journal) -> Outcome:
        state = journal.read_state() if self.config.resume else JournalState()
        samples = {task.name: self._load(task) for task in self.tasks}
        for task in self.tasks:  # a sample that would be scored wrong stops the run before any request
            check_samples(task, samples[task.name], self.scorers[task.name])
        catalogs = await self._catalogs()
        self._check_models(catalogs, samples)
        self._price_models(catalogs)
        self.judge_prices = await judge_prices(self, list(self.scorers.values()))
        total = sum(1 for _ in self._units(samples))  # this shard's part, when the run is one
        manifest = self._start_manifest(journal, samples, catalogs)
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
            status, message = "interrupted", self._interrupted_hint()
            raise
        except Exception as exc:  # e.g. an unreadable image met mid-run: the manifest must not say completed
            status, message = "failed", str(exc) if isinstance(exc, EvalkitError) else repr(exc)
            raise
        finally:
            self._close_out(journal, manifest, status, message, total, failing=not finished)
        return Outcome(status, message, dict(self.counts, total=total))

    def _price_models(self, catalogs: dict[str, Catalog]) -> None:
        self.prices = {model: _price(catalogs[model], self._router_id(model)) for model in self.config.models}
        self.simulated = any(
            self.endpoints[m].simulated or getattr(catalogs[m].get(self._router_id(m)), "simulated", False)
            for m in self.config.models
        )

    def _start_manifest(
        self, journal: Journal, samples: dict[str, list[Sample]], catalogs: dict[str, Catalog]
    ) -> dict[str, Any]:
        """The manifest, on disk before the first request, saying this invocation is running."""
        from evalkit.runner.manifest import build_manifest

        previous = journal.read_manifest() if self.config.resume else None
        manifest = build_manifest(self, samples, catalogs, previous=previous)
        self.started_at = manifest["started_at"]
        self.history = [_settled(entry) for entry in manifest.get("invocations") or []]
        # on disk from the start, so an invocation that is killed still shows in the history
        manifest["invocations"] = [*self.history, {"started_at": self.started_at, "status": "running"}]
        journal.write_manifest(manifest)
        return manifest

    def _interrupted_hint(self) -> str:
        message = (
            f"interrupted; resume with: evalkit run --resume {self.run_id} --out {self.config.out} "
            f"(in Python: evalkit.run(tasks, models, resume={self.run_id!r}, out={self.config.out!r}))"
        )
        # Ctrl-C surfaces as a bare KeyboardInterrupt (asyncio.run, Jupyter): this line is the hint
        print(f"evalkit: run {self.run_id} {message}", file=sys.stderr, flush=True)
        return message

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
        from evalkit.client.catalog import check_modalities

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
                check_modalities(info, model, task.name, samples[task.name])

    async def _drive(self, samples: dict[str, list[Sample]], total: int) -> tuple[str, str]:
        from evalkit.client import Client, RetryPolicy
        from evalkit.runner.cache import ResponseCache
        from evalkit.runner.limiter import AdaptiveLimiter
        from evalkit.runner.prefetch import Prefetcher
        from evalkit.task.images import ImageCache

        if self.config.executor != "local":
            from evalkit.runner.ray_executor import RayExecutor

            self.remote = RayExecutor.start(self)
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
            for endpoint in set(self.endpoints.values()) | set(self.judge_endpoints.values())
        }  # fmt: skip
        self.judging = JudgeCalls(self)
        sink = self._sink(total)
        units = Prefetcher(self._units(samples), self.image_cache, wanted=self._wanted)
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
            units.close()  # no prefetch thread outlives the run
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
        from evalkit.runner.partition import parse_shard

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
        """One unit: prepare → respond (call, record the response) → score → record the sample."""
        if self._recorded(unit.key):
            self._count_existing(unit.key)
            return
        generate_only = self.config.phase == "generate"
        if generate_only and _answered(self.state.responses.get(unit.key)):
            self._count_generated(unit.model)
            return
        prepared = await self.prepare(unit)
        record, from_cache = await self.respond(unit, prepared)
        if record is None:
            return
        if generate_only and record.error is None:
            self._count_generated(unit.model)  # its response line is on disk; `evalkit score` scores it
            return
        if is_judged(self.scorers[unit.task.name]):
            record, score, judged = await self.judge(unit, prepared, record)
        else:
            (record, score), judged = await self.score(unit, record), None
        await self.record_sample(unit, prepared, record, score, from_cache=from_cache, judged=judged)

    def _wanted(self, unit: Unit) -> bool:
        return not self._recorded(unit.key) and unit.model not in self.dead_models

    def _recorded(self, key: Key) -> bool:
        """Done by an earlier invocation (a failed sample too, unless its errors are retried)."""
        return key in self.state.done or (key in self.state.failed and not self.config.retry_errors)

    async def prepare(self, unit: Unit) -> Prepared:
        """The unit's request: rendered messages (images prepared off the event loop), generation
        parameters and the request's content key."""
        from evalkit.task.render import render

        if unit.sample.images:  # reading, decoding and encoding images blocks: never on the event loop
            rendered = await asyncio.to_thread(render, unit.task, unit.sample, images=self.image_cache)
        else:
            rendered = render(unit.task, unit.sample)
        reasoning = self.variants[unit.model].reasoning(unit.task.generation.reasoning)
        params = _params(unit.task, unit.epoch, reasoning)
        request = rendered.cache_key(self.endpoints[unit.model].cache_id, unit.model, params, unit.epoch)
        return Prepared(rendered, params, request)

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

    async def respond(self, unit: Unit, prepared: Prepared) -> tuple[CallRecord | None, bool]:
        """The unit's response and whether it came from the cache: this run's journal, the cache, or a
        new call (journaled at once). None when the call recorded nothing (a model-fatal error)."""
        from evalkit.client import CallRecord

        previous = self.state.responses.pop(unit.key, None)
        if previous is not None and not (previous["call"].get("error") and self.config.retry_errors):
            return CallRecord.from_dict(previous["call"]), bool(previous.get("from_cache"))
        if self.cache is not None and (hit := self.cache.get(prepared.request)) is not None:
            self.invocation["from_cache"] += 1
            if self.config.phase == "generate":  # no sample line will say so: a response line keeps it
                line = {"kind": "response", "key": list(unit.key), "request": prepared.request, "call": hit}
                await self.journal.append(line | {"from_cache": True})
            return CallRecord.from_dict(hit), True
        try:
            record = await self.call(unit, prepared)
        except BaseException:  # a call that ends without a response keeps what it may have cost
            self._record_unconfirmed(unit.key)
            raise
        if record is None:
            self._record_unconfirmed(unit.key)
            return None, False
        await self.record_response(unit, prepared, record)
        return record, False

    async def record_response(self, unit: Unit, prepared: Prepared, record: CallRecord) -> None:
        """Journal (and cache) a paid response before it is scored, so it is never paid twice."""
        # its sample line follows at once unless scoring is slow (code) or left to a later phase, and
        # that line's fsync covers this one too: otherwise a separate fsync is worth waiting for
        slow_scorer = self.config.phase == "generate" or is_blocking(self.scorers[unit.task.name])
        line = {
            "kind": "response",
            "key": list(unit.key),
            "request": prepared.request,
            "call": record.to_dict(),
        }
        if unconfirmed := self.unconfirmed.pop(unit.key, 0.0):
            line["unconfirmed_rub"] = unconfirmed  # cut attempts' worst case: the router may bill them
        await self.journal.append(line, sync=slow_scorer)
        if self.cache is not None and record.error is None:
            self.cache.put(prepared.request, record.to_dict())

    def _record_unconfirmed(self, key: Key) -> None:
        """Journal the worst case of cut attempts of a call that left no response line (a model- or
        run-fatal error, a stop, a cancellation), so a resume still counts it against the budget."""
        if unconfirmed := self.unconfirmed.pop(key, 0.0):
            # the invocation keeps the same cut in two invocations two lines: the journal reads an
            # exact duplicate line once
            line = {"kind": "unconfirmed", "key": list(key), "unconfirmed_rub": unconfirmed}
            self.journal.write(line | {"invocation": self.started_at})

    async def call(self, unit: Unit, prepared: Prepared) -> CallRecord | None:
        """One paid call through the client: each attempt reserves its worst case in the budget and a
        concurrency slot, and settles the real cost. Raises StopRun on a run-fatal error; None (and the
        model is dropped) on a model-fatal one."""
        from evalkit.client import CallHooks, is_model_fatal
        from evalkit.runner.attempt import Attempts

        rendered, params = prepared.rendered, prepared.params
        worst = self._worst_case(unit, rendered, params)

        def estimate(record: CallRecord) -> float | None:
            priced = self._estimate(unit, rendered, record)
            return priced.total if priced else None

        attempts = Attempts(self.budget, self.limiter, worst, estimate)

        async def before_attempt(attempt: int) -> None:
            self.waiting_retry.discard(unit.key)
            if self.stop is not None:
                raise StopRun(self.stop.status, self.stop.message)
            await attempts.begin()
            self.invocation["sent"] += 1

        async def after_attempt(record: CallRecord, attempt: int) -> None:
            if unconfirmed := await attempts.end(record):
                self.unconfirmed[unit.key] = self.unconfirmed.get(unit.key, 0.0) + unconfirmed

        async def on_backoff(delay_s: float, record: CallRecord) -> None:
            self.waiting_retry.add(unit.key)
            self.backing_off = f"{record.error} from the router"

        hooks = CallHooks(before_attempt=before_attempt, after_attempt=after_attempt, on_backoff=on_backoff)
        try:
            if self.remote is not None:
                record = await self._call_remote(unit, rendered, params, worst)
            else:
                client = self.clients[self.endpoints[unit.model]]
                record = await client.call(
                    self._router_id(unit.model), rendered.messages, params, hooks=hooks
                )
        finally:
            self.waiting_retry.discard(unit.key)
        if (stop := run_fatal(record, self.run_id)) is not None:
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
        return price.worst_case(rendered.prompt_token_bound, output_bound, images=len(rendered.images))

    def _estimate(self, unit: Unit, rendered: Rendered, record: CallRecord) -> Any:
        return record.estimate(self.prices.get(unit.model), len(rendered.images))

    async def score(self, unit: Unit, record: CallRecord) -> tuple[CallRecord, Score | None]:
        """Score a successful response; a failed call is never scored, and a scorer that breaks (e.g.
        the sandbox itself failed) turns the record into a `scoring_failed` error, not a 0."""
        from evalkit.scorers.base import score_output

        if record.error is not None:
            return record, None
        scorer, output = self.scorers[unit.task.name], record.output or ""
        if not is_blocking(scorer):
            score, failure = score_output(scorer, output, unit.sample)
        elif self.remote is None:
            score, failure = await asyncio.to_thread(score_output, scorer, output, unit.sample)
        else:  # on a node's warm sandbox; a cluster that fails is an error, never a 0
            try:
                score, failure = await self.remote.score(unit.task, output, unit.sample)
            except Exception as exc:
                score, failure = None, f"{type(exc).__name__}: {exc}"[:500]
        if failure is not None:
            return dataclasses.replace(record, error="scoring_failed", error_message=failure), None
        return record, score

    async def judge(
        self, unit: Unit, prepared: Prepared, record: CallRecord
    ) -> tuple[CallRecord, Score | None, Judged | None]:
        """Score a successful response with the judge's calls (`evalkit.runner.judging`); a judge that
        fails turns the record into an error (`judge_error`, `judge_unparsed`), never a wrong answer."""
        if record.error is not None:
            return record, None, None
        output = encodable(record.output or "")
        judged = await self.judging.judge(unit, prepared.rendered, output, self.scorers[unit.task.name])
        if judged.failure is not None:
            record = dataclasses.replace(record, error=judged.failure_class, error_message=judged.failure)
        return record, judged.score, judged

    async def record_sample(
        self,
        unit: Unit,
        prepared: Prepared,
        record: CallRecord,
        score: Score | None,
        *,
        from_cache: bool,
        judged: Judged | None = None,
    ) -> None:
        """Write the sample line; the sample counts once it is in the file, and this returns once it is
        fsynced."""
        from evalkit.runner.record import sample_row

        row = sample_row(
            run_id=self.run_id,
            unit=unit,
            rendered=prepared.rendered,
            record=record,
            score=score,
            estimate=self._estimate(unit, prepared.rendered, record),
            request=prepared.request,
            from_cache=from_cache,
            simulated=self.simulated,
            extra=judged.columns() if judged is not None else None,
        )
        self.journal.write(row.to_line())
        # counted as soon as the line is in the file, so a cancellation during the fsync below (Ctrl-C)
        # cannot leave the manifest's totals one short of the journal
        self.invocation["done"] += 1
        error = f"{record.error}: {record.error_message or ''}".rstrip(": ") if record.error else None
        self.invocation["errors"] += error is not None
        self._count(unit.model, score.value if score is not None else None, error)
        await self.journal.sync()

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


__all__ = ["Outcome", "Prepared", "Runner", "StopRun"]
