"""Re-scoring a recorded run with the current scorers: zero requests, a new run that names its source.

    evalkit rescore RUN [--scorer NAME]      evalkit.rescore("20261201-101500-ab12cd")

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.common.errors import ConfigError, TaskError
from evalkit.results import find_run
from evalkit.runner.api import RunResult
from evalkit.runner.config import new_run_id
from evalkit.runner.journal import MANIFEST, SAMPLES, iter_records, key_of, read_manifest, write_json_atomic
from evalkit.runner.record import SampleRow
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
    new_manifest.update(
        status="completed",
        ended_at=datetime.now(UTC).isoformat(),
        totals={**counts, "total": len(records), "spent_rub": 0.0},
    )
    write_json_atomic(directory / MANIFEST, new_manifest)
    return RunResult(new_id, directory, "completed", f"rescored from {source.name}", counts)


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
    score = scorer(row.output or "", sample)
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
