"""Scoring recorded answers, with zero requests: the score phase of a run, and re-scoring.

    evalkit score RUN                        evalkit.score("20261201-101500-ab12cd")
    evalkit rescore RUN [--scorer NAME]      evalkit.rescore("20261201-101500-ab12cd")

`score` finishes a run made with `--phase generate` in place: every recorded response without a sample
line is scored with the task's scorer and written as that sample's line, under the run's writer lock,
and the task definitions must be those the run recorded (fingerprints), as on resume. `rescore` writes
a new run instead (below). Both score through `score_output` (evalkit/scorers/base.py), as the scheduler does: a scorer that
breaks is an error, never a 0, and a failed call is never scored.

Every recorded answer of the source run is scored again against the task's current samples (so a
fixed scorer or a corrected target applies for free). A failed call stays a failed call: it is copied,
never scored. The new run's manifest says `rescored_from` (the source run id and its task
fingerprints), its totals say that nothing was sent and nothing was spent; each row keeps the cost its
response had in the source run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.common.errors import ConfigError, TaskError
from evalkit.results import find_run
from evalkit.runner.api import RunResult
from evalkit.runner.config import new_run_id
from evalkit.runner.journal import (
    MANIFEST,
    SAMPLES,
    held,
    iter_records,
    key_of,
    read_manifest,
    write_json_atomic,
)
from evalkit.runner.record import SampleRow
from evalkit.scorers.base import score_output
from evalkit.task.spec import Sample, ScorerSpec, Task, resolve_task


def rescore(
    run: str | Path,
    *,
    out: str | Path | None = None,
    scorer: str | dict[str, Any] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Score the recorded outputs of `run` again and write them as a new run in the same folder.

    scorer: a scorer name or {name, params} used for every task instead of the task's own.
    run_id: the new run's id (default `<source>-rescored-<time>`).
    """
    source = find_run(run, out)
    with held(source):  # a run being written would be rescored in part
        manifest = read_manifest(source)
        records = _latest(source)
    tasks = {entry["name"]: resolve_task(entry.get("file") or entry["name"]) for entry in manifest["tasks"]}
    scorers = {name: _scorer(task, scorer) for name, task in tasks.items()}
    samples = {name: {s.id: s for s in task.all_samples()} for name, task in tasks.items()}
    _check_known(records, samples, source)
    new_id = run_id or f"{manifest['run_id']}-rescored-{new_run_id()}"
    directory = source.parent / new_id
    if directory.exists():
        raise ConfigError(f"run directory {directory} already exists; choose another run id")
    directory.mkdir(parents=True)
    new_manifest = _manifest(manifest, new_id, tasks, scorer)
    write_json_atomic(directory / MANIFEST, new_manifest)
    counts = {"done": 0, "errors": 0, "scored": 0, "score_sum": 0.0, "sent": 0, "from_cache": 0}
    with open(directory / SAMPLES, "w", encoding="utf-8") as journal:
        for record in records:
            task_name, _, sample_id, _ = key_of(record)
            row = _rescored(record, samples[task_name][sample_id], scorers[task_name], new_id, source.name)
            journal.write(json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
            counts["done"] += 1
            if row.get("error"):
                counts["errors"] += 1
            else:
                counts["scored"] += 1
                counts["score_sum"] += row["score"]
        journal.flush()
        os.fsync(journal.fileno())
    message = f"rescored from {source.name}"
    if manifest.get("status") not in ("completed", "completed_with_errors"):
        message += f", which ended {manifest.get('status')}: its {len(records)} recorded samples only"
    new_manifest.update(
        status="completed",
        message=message,
        ended_at=datetime.now(UTC).isoformat(),
        totals={**counts, "total": len(records), "spent_rub": 0.0},
    )
    write_json_atomic(directory / MANIFEST, new_manifest)
    return RunResult(new_id, directory, "completed", message, counts)


def _latest(directory: Path) -> list[dict[str, Any]]:
    latest: dict[Any, dict[str, Any]] = {}
    for record in iter_records(directory, "sample", strict=True):
        latest[key_of(record)] = record
    if not latest:
        raise ConfigError(f"run {directory.name} has no recorded samples to rescore", where=str(directory))
    return list(latest.values())


def _scorer(task: Task, override: str | dict[str, Any] | None) -> Any:
    if override is None:
        built = task.build_scorer()
    else:
        spec = ScorerSpec(name=override) if isinstance(override, str) else ScorerSpec.model_validate(override)
        built = task.model_copy(update={"scorer": spec}).build_scorer()
    if getattr(built, "calls_models", False):  # rescoring sends nothing; a judge must be paid
        raise ConfigError(
            f"task {task.name!r} is scored by a judge model, and rescore sends no requests; run it again "
            "(its model answers come from the response cache, only the judge is paid)"
        )
    return built


def _check_known(records: list[dict[str, Any]], samples: dict[str, dict[str, Sample]], source: Path) -> None:
    missing = [
        f"{task}/{sample_id}"
        for task, _, sample_id, _ in map(key_of, records)
        if task not in samples or sample_id not in samples[task]
    ]
    if missing:
        raise TaskError(
            f"{len(missing)} recorded sample(s) are no longer in their task: {', '.join(missing[:8])}",
            where=f"rescore {source.name}",
        )


def _rescored(
    record: dict[str, Any], sample: Sample, scorer: Any, run_id: str, source: str
) -> dict[str, Any]:
    row = dataclasses.replace(SampleRow.from_line(record), run_id=run_id, rescored_from=source)
    if row.error:
        return row.to_line()  # an API failure is not a wrong answer: never scored
    score, failure = score_output(scorer, row.output or "", sample)
    if score is None:
        return dataclasses.replace(row, error="scoring_failed", error_message=failure, score=None).to_line()
    return dataclasses.replace(
        row,
        target=sample.target,
        extracted=score.extracted,
        score=score.value,
        explanation=score.explanation,
        metrics=dict(score.metrics),
        language=sample.language,
        metadata=sample.metadata,
        cluster=str(sample.metadata.get("cluster", sample.id)),
    ).to_line()


def _manifest(
    source: dict[str, Any], run_id: str, tasks: dict[str, Task], scorer: str | dict[str, Any] | None
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    entries = []
    for entry in source["tasks"]:
        task = tasks[entry["name"]]
        entries.append(entry | {"fingerprint": task.fingerprint(), "scorer": _scorer_record(task, scorer)})
    return source | {
        "run_id": run_id,
        "status": "running",
        "message": f"rescored from {source['run_id']}; no request was sent",
        "created_at": now,
        "started_at": now,
        "resumed": 0,
        "tasks": entries,
        "rescored_from": {
            "run_id": source["run_id"],
            "fingerprints": {entry["name"]: entry.get("fingerprint") for entry in source["tasks"]},
            "scorer_override": scorer,
        },
    }


def _scorer_record(task: Task, override: str | dict[str, Any] | None) -> Any:
    if override is not None:
        return {"name": override} if isinstance(override, str) else override
    return task.scorer.model_dump() if isinstance(task.scorer, ScorerSpec) else repr(task.scorer)


def score(
    run: str | Path,
    *,
    out: str | Path | None = None,
    force: bool = False,
    executor: str = "local",
    tasks: Sequence[str | Path | Task] = (),
) -> RunResult:
    """Score the recorded, unscored responses of a run made with `phase="generate"`, in place.

    Sends nothing. The run's tasks must be defined as when it ran (else ConfigError; `force=True`
    scores with the current definitions). Samples the run never asked stay missing: finish them with
    `evalkit run --resume RUN` (which asks and scores) or `--phase generate`.
    executor: "local" scores here (code in a thread pool); "ray" or "ray://HOST:PORT" scores code on
    the cluster's nodes, each with a warm sandbox.
    tasks: the run's tasks when one was defined in Python (a `Task` object; files and names are found
    from the manifest).
    """
    from evalkit.runner.journal import Journal

    directory = find_run(run, out)
    journal = Journal.open_existing(directory)
    try:
        return _score_in_place(journal, force=force, executor=executor, given=tasks)
    finally:
        journal.release()


def _score_in_place(
    journal: Any, *, force: bool, executor: str, given: Sequence[str | Path | Task]
) -> RunResult:
    from evalkit.scorers.base import close_scorer

    directory = journal.directory
    manifest = journal.read_manifest()
    tasks = _recorded_tasks(manifest, directory, force=force, given=given)
    state = journal.read_state()
    pending = sorted(state.responses.items())
    samples = {name: {s.id: s for s in task.all_samples()} for name, task in tasks.items()}
    _check_known([response for _, response in pending], samples, directory)
    scorers = {name: task.build_scorer() for name, task in tasks.items()}
    _refuse_judged(scorers, directory)
    started = datetime.now(UTC).isoformat()
    journal.open()
    try:
        scored = 0
        jobs = [_Job(key, response, tasks[key[0]], samples[key[0]][key[2]]) for key, response in pending]
        for job, result in _score_all(jobs, scorers, executor):
            journal.write(_row(manifest, job, result))
            scored += 1
    finally:
        journal.close()
        for scorer in scorers.values():
            close_scorer(scorer)
    forced = {
        entry["name"]: tasks[entry["name"]].fingerprint()
        for entry in manifest["tasks"]
        if tasks[entry["name"]].fingerprint() != entry["fingerprint"]
    }  # scored with definitions other than those that asked: said in the invocation
    return _record_score_phase(journal, manifest, started, scored, forced)


def _refuse_judged(scorers: dict[str, Any], directory: Path) -> None:
    """A judge scores by calling models, through the scheduler's budget and journal: not here."""
    from evalkit.runner.judging import is_judged
    from evalkit.scorers.base import close_scorer

    if judged := [name for name, scorer in scorers.items() if is_judged(scorer)]:
        for scorer in scorers.values():
            close_scorer(scorer)
        raise ConfigError(
            f"task(s) {', '.join(judged)} are scored by a judge, which calls models: finish the run with "
            f"evalkit run --resume {directory.name}, which scores the recorded responses and budgets "
            "the judge's calls",
            where=str(directory),
        )


class _Job:
    """One recorded response to score: its key, its journal line, its task and sample."""

    def __init__(self, key: tuple[str, str, str, int], response: dict[str, Any], task: Task, sample: Sample):
        self.key, self.response, self.task, self.sample = key, response, task, sample

    @property
    def call(self) -> dict[str, Any]:
        return self.response.get("call") or {}


def _score_all(jobs: list[_Job], scorers: dict[str, Any], executor: str) -> Any:
    """(job, (Score | None, failure)) for each job; a failed call is passed on unscored."""
    from concurrent.futures import ThreadPoolExecutor

    from evalkit.scorers.base import is_blocking

    answered = [job for job in jobs if not job.call.get("error")]
    for job in jobs:
        if job.call.get("error"):
            yield job, (None, None)
    fast = [job for job in answered if not is_blocking(scorers[job.task.name])]
    slow = [job for job in answered if is_blocking(scorers[job.task.name])]
    for job in fast:
        yield job, score_output(scorers[job.task.name], job.call.get("output") or "", job.sample)
    if not slow:
        return
    if executor != "local":
        from evalkit.runner.ray_executor import score_on_cluster

        yield from score_on_cluster(slow, executor)
        return
    with ThreadPoolExecutor(max_workers=max(1, min(32, (os.cpu_count() or 1) * 2))) as pool:
        futures = [
            pool.submit(score_output, scorers[job.task.name], job.call.get("output") or "", job.sample)
            for job in slow
        ]
        for job, future in zip(slow, futures, strict=True):
            yield job, future.result()


def _row(manifest: dict[str, Any], job: _Job, result: tuple[Any, str | None]) -> dict[str, Any]:
    """The sample line the runner would have written, from the recorded response and its score."""
    from evalkit.client import CallRecord
    from evalkit.runner.record import sample_row
    from evalkit.runner.unit import Unit
    from evalkit.task.render import render

    score, failure = result
    record = CallRecord.from_dict(job.call)
    if failure is not None:
        record = dataclasses.replace(record, error="scoring_failed", error_message=failure)
    task, model, _, epoch = job.key
    rendered = render(job.task, job.sample)
    row = sample_row(
        run_id=manifest["run_id"],
        unit=Unit(job.task, job.sample, model, epoch),
        rendered=rendered,
        record=record,
        score=score,
        estimate=_estimate(manifest, model, record, len(rendered.images)),
        request=job.response.get("request", ""),
        from_cache=bool(job.response.get("from_cache")),
        simulated=bool(manifest.get("simulated")),
    )
    return row.to_line()


def _estimate(manifest: dict[str, Any], model: str, record: Any, images: int) -> Any:
    from evalkit.client import PriceCard

    pricing = (manifest.get("models") or {}).get(model, {}).get("pricing_rub")
    return record.estimate(None if pricing is None else PriceCard.from_api(pricing), images)


def _recorded_tasks(
    manifest: dict[str, Any], directory: Path, *, force: bool, given: Sequence[str | Path | Task]
) -> dict[str, Task]:
    """The run's tasks as defined now; refused when a definition changed since the run recorded it."""
    from evalkit.runner.resume import recorded_tasks

    tasks = recorded_tasks(manifest, given)
    changed = [
        entry["name"]
        for entry in manifest["tasks"]
        if tasks[entry["name"]].fingerprint() != entry["fingerprint"]
    ]
    if changed and not force:
        raise ConfigError(
            f"the definition of task(s) {', '.join(changed)} changed since run {directory.name} recorded its "
            "responses, so they would be scored against other samples; restore it, or score with force=True "
            "(or `evalkit rescore`, which writes a new run)",
            where=str(directory),
            option="force",
        )
    return tasks


def _record_score_phase(
    journal: Any, manifest: dict[str, Any], started: str, scored: int, forced: dict[str, str]
) -> RunResult:
    """The manifest after scoring: totals read back from the journal, one more invocation."""
    state = journal.read_state()
    done = len(state.done) + len(state.failed)
    scores = [value for value in state.scores.values() if value is not None]
    totals = manifest.get("totals") or {}
    unscored = len(state.responses)
    counts = {
        "done": done + unscored,
        "errors": len(state.failed),
        "scored": len(scores),
        "score_sum": float(sum(scores)),
    }
    status = manifest.get("status") or "completed"
    if status == "running":  # its generate phase was killed before it recorded how it ended
        status = "interrupted"
    if status in ("completed", "completed_with_errors"):
        status = "completed_with_errors" if state.failed else "completed"
    message = f"scored {scored} recorded responses; no request was sent"
    if forced:
        message += f"; task(s) {', '.join(forced)} scored as defined now, not as when asked (forced)"
    if status not in ("completed", "completed_with_errors"):
        message += (
            f" (the run itself ended {status}: finish it with evalkit run --resume {manifest['run_id']})"
        )
    ended = datetime.now(UTC).isoformat()
    invocation = {
        "phase": "score",
        "started_at": started,
        "ended_at": ended,
        "status": status,
        "scored": scored,
        **({"forced_definitions": forced} if forced else {}),
    }
    manifest.update(
        status=status,
        message=message,
        ended_at=ended,
        totals={**totals, **counts, "generated": unscored},
        invocations=[*(manifest.get("invocations") or []), invocation | {"sent": 0, "spent_rub": 0.0}],
    )
    journal.write_manifest(manifest)
    return RunResult(
        manifest["run_id"], journal.directory, status, message, counts | {"total": totals.get("total")}
    )
