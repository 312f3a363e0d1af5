"""The run manifest: what was run, against what, with which prices and versions, and how it ended."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.common.identity import identity

if TYPE_CHECKING:
    from evalkit.client.catalog import Catalog
    from evalkit.client.endpoint import Endpoint
    from evalkit.client.variants import ModelVariant
    from evalkit.runner.config import RunConfig
    from evalkit.task.spec import Sample, Task

_PACKAGES = ("evalkit", "openai", "aiohttp", "datasets", "pandas", "pydantic", "numpy", "Pillow")


class RunFacts(Protocol):
    """What the manifest records about a run (the scheduler has these): given, not imported."""

    run_id: str
    simulated: bool
    config: RunConfig
    tasks: list[Task]
    endpoint: Endpoint
    endpoints: dict[str, Endpoint]
    variants: dict[str, ModelVariant]


def build_manifest(
    runner: RunFacts,
    samples: dict[str, list[Sample]],
    catalogs: dict[str, Catalog],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything needed to trust and reproduce a run; `catalogs` maps each model to its catalog."""
    now = datetime.now(UTC).isoformat()
    manifest = {
        "run_id": runner.run_id,
        "status": "running",
        "message": "",
        "simulated": runner.simulated,
        "endpoint": runner.endpoint.safe_url(),
        "created_at": previous["created_at"] if previous else now,
        "started_at": now,
        "resumed": (previous.get("resumed", 0) + 1) if previous else 0,
        "invocations": list(previous.get("invocations") or []) if previous else [],
        "config": runner.config.recorded(),
        "tasks": [_task_entry(task, len(samples[task.name])) for task in runner.tasks],
        "models": {
            model: _model_entry(catalogs[model], runner.variants[model].router_id)
            | {"endpoint": runner.endpoints[model].safe_url()}
            | _variant_entry(runner.variants[model])
            for model in runner.config.models
        },
        "catalog_source": sorted({str(getattr(c, "source", None)) for c in catalogs.values()}),
        "versions": _versions(),
    }
    if any(_runs_code(task) for task in runner.tasks):  # from the scorer, not the family
        from evalkit.sandbox import sandbox_capabilities

        manifest["sandbox"] = sandbox_capabilities()
    return manifest


def _runs_code(task: Task) -> bool:
    """Whether the task's scorer executes model code (`code`, directly or inside `by_type`)."""
    spec = task.scorer
    if not hasattr(spec, "model_dump"):  # a Python scorer: its own business
        return False
    inner = [spec.params.get("default"), *(spec.params.get("scorers") or {}).values()]
    names = [spec.name, *(s if isinstance(s, str) else (s or {}).get("name") for s in inner)]
    return "code" in names


def _task_entry(task: Task, n_samples: int) -> dict[str, Any]:
    return {
        "name": task.name,
        "family": task.family,
        "file": task.file,
        "fingerprint": task.fingerprint(),
        "samples": n_samples,
        "source": task.source.model_dump(mode="json") if task.source else "inline",
        "scorer": task.scorer.model_dump() if hasattr(task.scorer, "model_dump") else identity(task.scorer),
        "generation": task.generation.model_dump(mode="json"),
        "images": task.images.model_dump(mode="json") if task.family == "vision" else None,
        "git_commit": _git_commit(task.file),
    }


def _variant_entry(variant: Any) -> dict[str, Any]:
    """For a variant (`id@effort=high`): the router's id and the reasoning setting it overrides."""
    if variant.router_id == variant.name:
        return {}
    setting = {"effort": variant.effort} if variant.effort else {"reasoning_tokens": variant.reasoning_tokens}
    return {"router_id": variant.router_id, "variant": setting}


def _model_entry(catalog: Catalog, model: str) -> dict[str, Any]:
    info = catalog.get(model)
    if info is None:
        return {"in_catalog": False}
    return {
        "in_catalog": True,
        "context_length": info.context_length,
        "input_modalities": list(info.input_modalities),
        "pricing_rub": info.pricing.to_dict(),
        "simulated": getattr(info, "simulated", False),
    }


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _git_commit(file: str | None) -> str | None:
    if not file:
        return None
    path = Path(file).resolve()
    try:
        result = subprocess.run(
            ["git", "-C", str(path.parent), "log", "-1", "--format=%H", "--", path.name],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
