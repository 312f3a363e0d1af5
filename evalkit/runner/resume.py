"""The resume policy: what a run recorded about itself, read back and merged with the options given now.

A resume continues the recorded run only if its tasks are still the same (by fingerprint), unless
`force`; the options given now win over the recorded ones where they were given (`RunConfig.resumed_from`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.common.errors import ConfigError, EvalkitWarning, TaskError
from evalkit.runner.config import RunConfig
from evalkit.runner.journal import read_manifest
from evalkit.task.spec import Task, resolve_task


def resume_config(config: RunConfig, given: list[Any]) -> tuple[RunConfig, list[Task]]:
    """The merged options and the tasks of the run `config.resume`; refused before anything is sent
    when a task's definition changed (unless `force`)."""
    directory = Path(config.out) / str(config.resume)
    manifest = read_manifest(directory)
    saved, _ = read_back(manifest, directory)
    tasks = [resolve_task(t) for t in given] if given else list(recorded_tasks(manifest).values())
    changed = changed_tasks(manifest, tasks)
    if changed and not config.force:
        raise ConfigError(
            f"the definition of task(s) {', '.join(changed)} changed since run {config.resume} started, "
            "so old and new samples would not be comparable; start a new run, or resume with force=True",
            option="force",
        )
    _warn_ignored_models(config, saved)
    return config.resumed_from(saved), tasks


def _warn_ignored_models(config: RunConfig, saved: RunConfig) -> None:
    """A resume finishes the recorded models only: other models (another effort list) given now are
    not run into it, where their results would mix with a sweep that did not ask for them."""
    ignored = [m for m in config.models if m not in saved.models]
    if ignored:
        warnings.warn(
            EvalkitWarning(
                f"run {config.resume} keeps its models ({', '.join(saved.models)}); {', '.join(ignored)} "
                "given now are not run: start a new run for them"
            ),
            stacklevel=3,
        )


def read_back(manifest: dict[str, Any], directory: Path) -> tuple[RunConfig, list[str]]:
    """The options and tasks a run recorded; a manifest damaged or edited by hand is one clear error."""
    try:
        saved = RunConfig.model_validate(manifest["config"])
        recorded_tasks = [t["file"] or t["name"] for t in manifest["tasks"]]
        invocations = manifest.get("invocations") or []
        if not isinstance(invocations, list) or not all(isinstance(i, dict) for i in invocations):
            raise TypeError("invocations is not a list of objects")
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(
            f"the manifest cannot be read back ({_reason(exc)[:200]}); was it edited? Nothing was sent",
            where=str(directory / "manifest.json"),
        ) from None
    return saved, recorded_tasks


def _reason(exc: Exception) -> str:
    if errors := getattr(exc, "errors", None):  # pydantic: name the field
        first = errors()[0]
        return f"config.{'.'.join(map(str, first['loc']))}: {first['msg']}".rstrip(".: ")
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]


def changed_tasks(manifest: dict[str, Any], tasks: list[Task]) -> list[str]:
    """The tasks whose fingerprint differs from the one the run recorded."""
    saved = {t["name"]: t["fingerprint"] for t in manifest.get("tasks", [])}
    return [t.name for t in tasks if t.name in saved and saved[t.name] != t.fingerprint()]


def recorded_tasks(manifest: dict[str, Any], given: Sequence[Any] = ()) -> dict[str, Task]:
    """A run's tasks by name, as defined now: the ones `given` (Task objects, names or files), else as
    the manifest names them. A task defined in Python left no file to find it by: it must be given."""
    mine = {task.name: task for task in (resolve_task(t) for t in given)}
    tasks: dict[str, Task] = {}
    for entry in manifest["tasks"]:
        name = entry["name"]
        if name in mine:
            tasks[name] = mine[name]
            continue
        try:
            tasks[name] = resolve_task(entry.get("file") or name)
        except TaskError:
            if entry.get("file"):
                raise
            raise ConfigError(
                f"task {name!r} of run {manifest.get('run_id')} was defined in Python, so no file "
                "names it: pass it as tasks=[task]",
                option="tasks",
            ) from None
    return tasks
