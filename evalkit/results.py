"""Results as pandas: `load_results(runs)` → one row per (run, task, model, sample, epoch); `summarize`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import ConfigError
from evalkit.journal import MANIFEST, iter_records, key_of, read_manifest
from evalkit.text import encodable

if TYPE_CHECKING:
    import pandas as pd

_DROP = ("kind", "key", "metrics", "metadata")


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


def load_results(runs: str | Path | Sequence[str | Path], out: str | Path | None = None) -> pd.DataFrame:
    """Load runs (ids or directories) into one DataFrame; the latest record of each sample wins.

    Columns are listed in DESIGN.md; `score` is NaN for failed calls, which are counted apart.
    """
    import pandas as pd

    run_list = [runs] if isinstance(runs, (str, Path)) else list(runs)
    rows: list[dict[str, Any]] = []
    for run in run_list:
        rows.extend(_latest_rows(find_run(run, out)))
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


def _latest_rows(directory: Path) -> Iterable[dict[str, Any]]:
    latest: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for record in iter_records(directory, "sample"):
        latest[key_of(record)] = record
    for record in latest.values():
        yield _flatten(record)


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: _utf8(v) for k, v in record.items() if k not in _DROP}
    for name, value in (record.get("metrics") or {}).items():
        row[f"score_{name}"] = value
    for name, value in (record.get("metadata") or {}).items():
        row[f"meta_{name}"] = _utf8(value)
    return row


def _utf8(value: Any) -> Any:
    """Strings as pandas' Arrow-backed columns can hold them: a lone surrogate in an output shows as
    U+FFFD here, while samples.jsonl keeps the exact text (`evalkit.journal.iter_records`)."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [_utf8(item) for item in value]
    return value


def load_manifests(runs: Sequence[str | Path], out: str | Path | None = None) -> list[dict[str, Any]]:
    return [read_manifest(find_run(run, out)) for run in runs]


def summarize(df: pd.DataFrame, by: Sequence[str] = ("task", "model")) -> pd.DataFrame:
    """Per (task, model): n, errors, accuracy with a 95% interval, latency percentiles and rubles.

    `n` counts every recorded sample and `n_scored` those with an answer; failed calls are counted in
    `errors` and never enter accuracy.
    """
    from evalkit.stats import summary_table

    return summary_table(df, by=list(by))
