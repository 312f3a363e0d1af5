"""Results as pandas: `load_results(runs)` → one row per (run, task, model, sample, epoch); `summarize`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import ConfigError, EvalkitWarning
from evalkit.common.text import encodable
from evalkit.runner.journal import MANIFEST, iter_records, key_of, read_manifest
from evalkit.runner.record import SampleRow

if TYPE_CHECKING:
    import pandas as pd


def results_dir(out: str | Path | None = None) -> Path:
    return Path(out or os.environ.get("EVALKIT_RESULTS_DIR", "results"))


def find_run(run: str | Path, out: str | Path | None = None) -> Path:
    """A run directory from a path or a run id (looked up under `out`)."""
    path = Path(run)
    if (path / MANIFEST).exists():
        return path
    candidate = results_dir(out) / str(run)
    if (candidate / MANIFEST).exists():
        return candidate
    raise ConfigError(f"no run {str(run)!r} (looked in {path} and {candidate})")


def run_dirs(folder: str | Path) -> list[Path]:
    """Every run directory directly under a results folder, oldest first (by creation time)."""
    directory = Path(folder)
    if not directory.is_dir():
        return []
    found = [child for child in directory.iterdir() if (child / MANIFEST).exists()]
    return sorted(found, key=lambda d: (str(read_manifest(d).get("created_at") or ""), d.name))


def expand_runs(runs: str | Path | Sequence[str | Path], out: str | Path | None = None) -> list[Path]:
    """Run directories from ids, run directories or whole results folders (every run inside)."""
    run_list = [runs] if isinstance(runs, (str, Path)) else list(runs)
    found: list[Path] = []
    for run in run_list:
        try:
            found.append(find_run(run, out))
        except ConfigError:
            inside = run_dirs(run)
            if not inside:
                raise
            found.extend(inside)
    return found


def list_runs(out: str | Path | None = None) -> pd.DataFrame:
    """One row per run under the results folder: run_id, status, tasks, models, spent_rub (billed, as
    the manifest records it), created_at, simulated."""
    import pandas as pd

    rows = []
    for directory in run_dirs(results_dir(out)):
        manifest = read_manifest(directory)
        totals = manifest.get("totals") or {}
        rows.append({
            "run_id": manifest.get("run_id", directory.name), "status": manifest.get("status"),
            "tasks": ", ".join(t.get("name", "?") for t in manifest.get("tasks") or []),
            "models": ", ".join(manifest.get("models") or {}),
            "spent_rub": totals.get("spent_rub"), "created_at": manifest.get("created_at"),
            "simulated": bool(manifest.get("simulated")),
        })  # fmt: skip
    columns = ["run_id", "status", "tasks", "models", "spent_rub", "created_at", "simulated"]
    return pd.DataFrame(rows, columns=columns)


def load_results(runs: str | Path | Sequence[str | Path], out: str | Path | None = None) -> pd.DataFrame:
    """Load runs into one DataFrame; the latest record of each sample wins. `runs` are run ids, run
    directories, or results folders (every run inside is loaded: `load_results("results")`). A shard
    whose merged run is loaded too is left out (with a warning): the merged run holds its samples.

    Columns are listed in DESIGN.md; `score` is NaN for failed calls, which are counted apart.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for directory in _without_merged_shards(expand_runs(runs, out)):
        rows.extend(_latest_rows(directory))
    frame = pd.DataFrame(rows, columns=None if rows else list(_EMPTY_COLUMNS))
    if "target" in frame:
        frame["target"] = frame["target"].map(lambda t: " | ".join(t) if isinstance(t, list) else t)
    if "score" in frame:
        frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    return frame


_EMPTY_COLUMNS = (
    "run_id",
    "task",
    "family",
    "model",
    "sample_id",
    "epoch",
    "language",
    "target",
    "output",
    "extracted",
    "score",
    "error",
    "latency_s",
    "ttft_s",
    "cost_rub",
    "cost_rub_estimated",
    "from_cache",
    "simulated",
)


def _without_merged_shards(directories: list[Path]) -> list[Path]:
    """The runs to load, less the shards of a merged run among them: loading both would count each of
    their samples twice (and narrow every interval as if there were twice as many)."""
    manifests = {directory: _manifest_or_none(directory) for directory in directories}
    merged: dict[tuple[str, str], str] = {}  # (shard run id, its shard) -> the merged run holding it
    for manifest in manifests.values():
        for part in manifest.get("merged_from") or []:
            merged[(str(part.get("run_id")), str(part.get("shard")))] = str(manifest.get("run_id"))
    kept, left_out = [], []
    for directory, manifest in manifests.items():
        shard = (manifest.get("config") or {}).get("shard")
        if shard and (into := merged.get((directory.name, str(shard)))):
            left_out.append(f"{directory.name} (in {into})")
        else:
            kept.append(directory)
    if left_out:
        warnings.warn(
            EvalkitWarning(
                f"left out shard run(s) {', '.join(left_out)}: their merged run is loaded too, and holds "
                "their samples"
            ),
            stacklevel=3,
        )
    return kept


def _manifest_or_none(directory: Path) -> dict[str, Any]:
    """A damaged manifest does not stop its samples from loading (they are in samples.jsonl)."""
    try:
        return read_manifest(directory)
    except ConfigError:
        return {}


def _latest_rows(directory: Path) -> Iterable[dict[str, Any]]:
    latest: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for record in iter_records(directory, "sample"):
        latest[key_of(record)] = record
    for record in latest.values():
        yield _flatten(record)


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    return {name: _utf8(value) for name, value in SampleRow.columns_of(record).items()}


def _utf8(value: Any) -> Any:
    """Strings as pandas' Arrow-backed columns can hold them: a lone surrogate in an output shows as
    U+FFFD here, while samples.jsonl keeps the exact text (`evalkit.runner.journal.iter_records`)."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [_utf8(item) for item in value]
    return value


def load_manifests(runs: Sequence[str | Path], out: str | Path | None = None) -> list[dict[str, Any]]:
    return [read_manifest(directory) for directory in expand_runs(runs, out)]


def summarize(df: pd.DataFrame, by: Sequence[str] = ("task", "model")) -> pd.DataFrame:
    """Per (task, model): n, errors, accuracy with a 95% interval, latency percentiles and rubles.

    `n` counts every recorded sample and `n_scored` those with an answer; failed calls are counted in
    `errors` and never enter accuracy.
    """
    from evalkit.stats import summary_table

    return summary_table(df, by=list(by))
