"""Merging shards: the runs of `--shard 1/N` … `--shard N/N` joined into one run, exactly.

    evalkit merge exp-1 exp-2 exp-3 --into exp            evalkit.merge(["exp-1", "exp-2", "exp-3"], into="exp")

Refused, with nothing written, unless the shards are one run cut in N:
  - the same task definitions (fingerprints), the same selection (models, limits, languages, seed,
    epochs, simulator seed), the same N and the same evalkit version (which renders and scores);
  - no shard is being written (each shard's writer lock is held for the merge) or was stopped before it
    recorded how it ended, and no shard's journal is damaged (a bad line with lines after it);
  - every unit in the shard its identity hashes to, and in one shard only: a unit
    recorded twice (a shard given twice, or run with another N) is an overlap;
  - no gaps: every unit of the task's samples × models × epochs is recorded (scored, failed, or, for a
    `--phase generate` shard, answered); a missing one names the shard to resume;
  - each shard's manifest totals agree with its journal.
The merged run holds every line of every shard (so a resume or `evalkit score` of it works as on any
run, and what was paid is what the shards paid); its totals are the sums of the shards' totals, its
₽ budget the sum of theirs (each shard had its own ceiling), and its manifest lists the shards under
`merged_from`. It is written in a hidden folder and renamed into place once complete, so a merge that
is stopped half-way leaves no half-merged run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import ConfigError, EvalkitError
from evalkit.runner.journal import SAMPLES, Journal, Key, held, iter_records, key_of, read_manifest
from evalkit.runner.partition import Shard, parse_shard, shard_of

if TYPE_CHECKING:
    from evalkit.runner.api import RunResult
    from evalkit.task.spec import Task


# what decides which units a run holds and what they are: equal in every shard of one run
SELECTION = ("models", "limit", "limit_per_language", "languages", "seed", "epochs", "sim", "sim_seed")
_SUMMED = ("done", "errors", "scored", "score_sum", "total", "spent_rub", "unconfirmed_rub", "sent",
           "from_cache", "generated")  # fmt: skip


class _ShardRun:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = read_manifest(directory)
        self.name = directory.name
        shard = (self.manifest.get("config") or {}).get("shard")
        if not shard:
            raise ConfigError(f"run {self.name} is not a shard (it was not run with --shard I/N)")
        self.shard: Shard = parse_shard(shard)
        self.keys: set[Key] = set()
        self.outcomes: dict[str, int] = {}
        self.unscored = 0  # answered responses without a sample line (a `--phase generate` shard)

    def read(self) -> None:
        """Its manifest and units, read again once this merge holds its lock (no writer can change them)."""
        self.manifest = read_manifest(self.directory)
        self.keys, self.unscored, self.outcomes = _recorded(self.directory)


def merge(
    runs: Sequence[str | Path],
    *,
    into: str,
    out: str | Path | None = None,
    tasks: Sequence[str | Path | Task] = (),
) -> RunResult:
    """Join the shard runs `runs` into a new run `into` (in `out`, default the first shard's folder).

    tasks: the run's tasks when one was defined in Python (a `Task` object; files and names are found
    from the manifest), to check the shards' samples for gaps.
    """
    from evalkit.runner.config import check_run_id

    try:
        check_run_id(into)
    except ValueError as exc:
        raise ConfigError(str(exc), option="into") from None
    from evalkit.results import find_run

    shards = [_ShardRun(find_run(run, out)) for run in runs]
    if not shards:
        raise ConfigError("give the shard runs to merge")
    _check_given_once(shards)
    folder = Path(out) if out is not None else shards[0].directory.parent
    if (folder / into).exists():
        raise ConfigError(
            f"run directory {folder / into} already exists; merge into another run id", option="into"
        )
    with contextlib.ExitStack() as locks:
        for shard in shards:
            locks.enter_context(held(shard.directory))
            shard.read()
        _check_one_run(shards)
        expected = _expected_units(shards[0], tasks)
        _check_partition(shards, expected)
        return _write(shards, folder, into)


def _check_given_once(shards: list[_ShardRun]) -> None:
    seen: dict[Path, str] = {}
    for shard in shards:
        where = shard.directory.resolve()
        if where in seen:
            raise ConfigError(
                f"overlap: shard {shard.shard} is given twice (runs {seen[where]} and {shard.name})"
            )
        seen[where] = shard.name


def _check_one_run(shards: list[_ShardRun]) -> None:
    first = shards[0]
    for other in shards[1:]:
        if other.shard.count != first.shard.count:
            raise ConfigError(
                f"run {other.name} is shard {other.shard} but run {first.name} is shard {first.shard}: "
                "shards of one run share N"
            )
        for field in SELECTION:
            mine, theirs = first.manifest["config"].get(field), other.manifest["config"].get(field)
            if mine != theirs:
                raise ConfigError(
                    f"runs {first.name} and {other.name} are not shards of one run: {field} is {mine!r} "
                    f"in one and {theirs!r} in the other"
                )
        if _version(first) != _version(other):
            raise ConfigError(
                f"runs {first.name} and {other.name} were made by evalkit {_version(first)} and "
                f"{_version(other)}, which may render or score differently; run every shard with one version"
            )
        if _fingerprints(first) != _fingerprints(other):
            raise ConfigError(
                f"runs {first.name} and {other.name} are not shards of one run: their task definitions "
                f"differ ({_difference(_fingerprints(first), _fingerprints(other))})"
            )
        if _prices(first) != _prices(other) and (first.unscored or other.unscored):
            changed = sorted(m for m in _prices(first) if _prices(first)[m] != _prices(other).get(m))
            raise ConfigError(
                f"runs {first.name} and {other.name} were priced with different price cards (of "
                f"{', '.join(changed)}) and hold responses not scored yet, whose ₽ estimate the merged run "
                f"would take from one card: score each shard first (evalkit score {first.name}; evalkit "
                f"score {other.name}), then merge"
            )
    seen: dict[int, str] = {}
    for shard in shards:
        if shard.shard.index in seen:
            raise ConfigError(
                f"overlap: shard {shard.shard} is given twice (runs {seen[shard.shard.index]} and {shard.name})"
            )
        seen[shard.shard.index] = shard.name


def _version(shard: _ShardRun) -> str | None:
    return (shard.manifest.get("versions") or {}).get("evalkit")


def _prices(shard: _ShardRun) -> dict[str, Any]:
    return {model: entry.get("pricing_rub") for model, entry in (shard.manifest.get("models") or {}).items()}


def _fingerprints(shard: _ShardRun) -> dict[str, str]:
    return {t["name"]: t.get("fingerprint") for t in shard.manifest.get("tasks") or []}


def _difference(a: dict[str, str], b: dict[str, str]) -> str:
    if names := sorted(set(a) ^ set(b)):
        return "task(s) " + ", ".join(names) + " in one run only"
    return "task(s) " + ", ".join(sorted(n for n in a if a[n] != b.get(n))) + " defined differently"


def _expected_units(shard: _ShardRun, given: Sequence[str | Path | Task]) -> set[Key]:
    """Every unit of the whole run: the task's selected samples × models × epochs, from the task files as
    they are now, which must be the definitions the shards ran (fingerprints)."""
    from evalkit.runner.resume import recorded_tasks

    config = shard.manifest["config"]
    tasks = recorded_tasks(shard.manifest, given)
    units: set[Key] = set()
    for entry in shard.manifest["tasks"]:
        task = tasks[entry["name"]]
        if task.fingerprint() != entry.get("fingerprint"):
            raise ConfigError(
                f"task {entry['name']} changed since its shards ran, so their samples cannot be checked "
                "for gaps; restore its definition and data",
                where=str(shard.directory),
            )
        samples = task.load_samples(
            config.get("limit"),
            limit_per_language=config.get("limit_per_language"),
            seed=config.get("seed"),
            languages=config.get("languages"),
        )
        units |= {
            (task.name, model, sample.id, epoch)
            for sample in samples
            for model in config["models"]
            for epoch in range(int(config.get("epochs") or 1))
        }
    return units


def _check_partition(shards: list[_ShardRun], expected: set[Key]) -> None:
    owner: dict[Key, str] = {}
    for shard in shards:
        for key in shard.keys:
            if key in owner:
                raise ConfigError(f"overlap: {_name(key)} is recorded in runs {owner[key]} and {shard.name}")
            if shard_of(key, shard.shard.count) != shard.shard.index:
                raise ConfigError(
                    f"{_name(key)} is recorded in run {shard.name} (shard {shard.shard}) but belongs to "
                    f"shard {shard_of(key, shard.shard.count)}/{shard.shard.count}: not one partition"
                )
            owner[key] = shard.name
        _check_totals(shard)
    if extra := sorted(set(owner) - expected):
        raise ConfigError(
            f"{len(extra)} recorded unit(s) are not in the run's samples × models × epochs, e.g. "
            f"{_name(extra[0])} (in run {owner[extra[0]]})"
        )
    if missing := sorted(expected - set(owner)):
        count = shards[0].shard.count
        by_shard: dict[int, int] = {}
        for key in missing:
            by_shard[shard_of(key, count)] = by_shard.get(shard_of(key, count), 0) + 1
        given = {s.shard.index: s.name for s in shards}
        parts = [
            f"shard {i}/{count}: {n} ({'resume run ' + given[i] if i in given else 'not given'})"
            for i, n in sorted(by_shard.items())
        ]
        raise ConfigError(
            f"gaps: {len(missing)} of {len(expected)} units are not recorded, e.g. {_name(missing[0])}; "
            + "; ".join(parts)
        )


def _check_totals(shard: _ShardRun) -> None:
    totals = shard.manifest.get("totals") or {}
    if shard.manifest.get("status") == "running" or "done" not in totals:
        raise ConfigError(
            f"run {shard.name} stopped before it recorded how it ended (killed?); resume it "
            f"(evalkit run --resume {shard.name}) before merging",
            where=str(shard.directory),
        )
    if totals.get("done") != len(shard.keys):
        raise ConfigError(
            f"run {shard.name}: its manifest counts {totals.get('done')} finished units but its journal "
            f"holds {len(shard.keys)}; resume it (evalkit run --resume {shard.name}) before merging",
            where=str(shard.directory),
        )
    for name, recorded in shard.outcomes.items():
        if (totals.get(name) or 0) != recorded:  # e.g. a score phase killed half-way
            raise ConfigError(
                f"run {shard.name}: its manifest counts {totals.get(name) or 0} {name} samples but its "
                f"journal holds {recorded}; finish it (evalkit score {shard.name}, or evalkit run --resume "
                f"{shard.name}) before merging",
                where=str(shard.directory),
            )


def _recorded(directory: Path) -> tuple[set[Key], int, dict[str, int]]:
    """In one pass: the units a run finished (a sample line, or an answered response: a `--phase
    generate` run), how many of them have no sample line yet, and how its samples ended by each one's
    latest line (as its manifest totals count them). A damaged journal is refused: a lost sample line
    would leave its response looking unscored, and the merged run one sample short."""
    ended: dict[Key, str] = {}  # key -> "errors" | "scored" | "" (no score)
    answered: set[Key] = set()
    for record in iter_records(directory, None, strict=True):
        if record.get("kind") == "sample":
            error, score = record.get("error"), record.get("score")
            ended[key_of(record)] = "errors" if error else ("scored" if score is not None else "")
        elif record.get("kind") == "response" and not (record.get("call") or {}).get("error"):
            answered.add(key_of(record))
    outcomes = {name: sum(1 for how in ended.values() if how == name) for name in ("errors", "scored")}
    return set(ended) | answered, len(answered - set(ended)), outcomes


def _name(key: Key) -> str:
    task, model, sample_id, epoch = key
    return f"{task}/{sample_id} × {model} (epoch {epoch})"


def _write(shards: list[_ShardRun], folder: Path, run_id: str) -> RunResult:
    """Write the merged run in a hidden folder, then rename it into place: all of it, or nothing."""
    from evalkit.runner.api import RunResult

    _remove_stale(folder, run_id)
    staging = folder / f".{run_id}.merging-{os.getpid()}"
    journal = Journal.create(staging)
    try:
        journal.open()
        for shard in sorted(shards, key=lambda s: s.shard.index):
            for record in _lines(shard.directory):
                journal.write(record | {"run_id": run_id} if record.get("kind") == "sample" else record)
        journal.close()
        manifest = _manifest(shards, run_id)
        journal.write_manifest(manifest)
    except BaseException:
        journal.release()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    journal.release()
    try:
        os.rename(staging, folder / run_id)  # fails if another merge got there first
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(
            f"run directory {folder / run_id} appeared during the merge; merge into another run id",
            option="into",
        ) from None
    return RunResult(run_id, folder / run_id, manifest["status"], manifest["message"], manifest["totals"])


def _remove_stale(folder: Path, run_id: str) -> None:
    """Remove what a merge into `run_id` that was killed left (its lock died with it); never the folder
    of a merge still writing."""
    for stale in folder.glob(f".{run_id}.merging-*"):
        journal = Journal(stale)
        try:
            journal.lock()
        except EvalkitError:  # a live merge's (RunLocked), or one that cannot be locked: left alone
            continue
        try:
            shutil.rmtree(stale, ignore_errors=True)
        finally:
            journal.release()


def _lines(directory: Path) -> Iterator[dict[str, Any]]:
    """Every complete line of a shard's journal, in order: responses, samples and the unconfirmed ₽ of
    calls that left no response, so the merged run's budget reads what the shards paid."""
    import json

    with open(directory / SAMPLES, "rb") as file:
        for raw in file:
            if raw.endswith(b"\n"):
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("kind"):  # unconfirmed ₽ lines too
                    yield record


def _budget(shards: list[_ShardRun]) -> float | None:
    """Each shard had its own ceiling, so the run as a whole had their sum (none if any had none)."""
    budgets = [shard.manifest["config"].get("budget_rub") for shard in shards]
    return None if any(b is None for b in budgets) else float(sum(budgets))


def _manifest(shards: list[_ShardRun], run_id: str) -> dict[str, Any]:
    ordered = sorted(shards, key=lambda s: s.shard.index)
    first = ordered[0].manifest
    totals: dict[str, Any] = {}
    for shard in ordered:
        for name in _SUMMED:
            value = (shard.manifest.get("totals") or {}).get(name)
            if value is not None:
                totals[name] = totals.get(name, 0) + value
    statuses = {shard.manifest.get("status") for shard in ordered}
    status = (
        "completed_with_errors"
        if totals.get("errors") or "completed_with_errors" in statuses
        else "completed"
    )
    generated = totals.get("generated") or 0
    message = f"merged from {len(ordered)} shards" + (
        f"; {generated} responses not scored yet: evalkit score {run_id}" if generated else ""
    )
    now = datetime.now(UTC).isoformat()
    first = {k: v for k, v in first.items() if k != "executor"}  # each shard's own, in merged_from
    return first | {
        "run_id": run_id,
        "status": status,
        "message": message,
        "created_at": min(str(s.manifest.get("created_at") or now) for s in ordered),
        "started_at": min(str(s.manifest.get("started_at") or now) for s in ordered),
        "ended_at": now,
        "config": first["config"]
        | {"shard": None, "run_id": run_id, "resume": None, "budget_rub": _budget(ordered)},
        "totals": totals,
        "invocations": [
            invocation | {"shard": str(shard.shard), "shard_run": shard.name}
            for shard in ordered
            for invocation in shard.manifest.get("invocations") or []
        ],
        "dead_models": {
            k: v for shard in ordered for k, v in (shard.manifest.get("dead_models") or {}).items()
        },
        "merged_from": [
            {
                "run_id": shard.name,
                "shard": str(shard.shard),
                "status": shard.manifest.get("status"),
                "budget_rub": shard.manifest["config"].get("budget_rub"),
                "endpoint": shard.manifest.get("endpoint"),
                "totals": shard.manifest.get("totals"),
                **({"executor": shard.manifest["executor"]} if shard.manifest.get("executor") else {}),
            }
            for shard in ordered
        ],
    }
