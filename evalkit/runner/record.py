"""The sample row: one scored (or failed) sample with everything the DataFrame shows.

`SampleRow` is written by the scheduler as the journal's `sample` line (`to_line`) and read back by
`load_results`, `rescore` and `show` (`from_line`), so both sides share one list of columns (DESIGN.md,
"Results"). Reading is forward compatible: a column missing from an older journal takes its default,
and a key this version does not know (written by a later one) is kept in `extra` and shown as a column,
never dropped in silence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.client import CallRecord
    from evalkit.runner.unit import Unit
    from evalkit.scorers.base import Score
    from evalkit.task.render import Rendered

PROMPT_CHARS = 2000


@dataclass
class SampleRow:
    """One sample's journal line, field by field (the order is the DataFrame's column order)."""

    run_id: str
    task: str
    family: str | None
    model: str
    sample_id: str
    epoch: int
    language: str | None = None
    target: list[str] = field(default_factory=list)
    prompt: str | None = None
    output: str | None = None
    reasoning: str | None = None
    truncated: bool = False
    extracted: str | None = None
    score: float | None = None
    explanation: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # shown as score_<name>
    error: str | None = None
    error_message: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    ttft_reasoning_s: float | None = None
    output_tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_rub: float | None = None
    attempts: int | None = None
    finish_reason: str | None = None
    generation_id: str | None = None
    http_status: int | None = None
    images: int = 0
    image_refs: list[Any] = field(default_factory=list)
    cost_rub_estimated: float | None = None
    cost_rub_input: float | None = None
    cost_rub_output: float | None = None
    cost_rub_images: float | None = None
    cost_rub_reasoning: float | None = None
    cost_rub_cache_saved: float | None = None
    from_cache: bool = False
    simulated: bool = False
    cluster: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # shown as meta_<name>
    request: str | None = None
    rescored_from: str | None = None  # the run a rescored row came from; absent otherwise
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by a later version, kept

    @property
    def key(self) -> list[Any]:
        return [self.task, self.model, self.sample_id, self.epoch]

    def to_line(self) -> dict[str, Any]:
        """The journal line: `kind`, `key`, then every column."""
        values = {f.name: getattr(self, f.name) for f in _FIELDS}
        if values["rescored_from"] is None:
            del values["rescored_from"]
        return {"kind": "sample", "key": self.key, **values, **self.extra}

    @classmethod
    def from_line(cls, line: dict[str, Any]) -> SampleRow:
        """A row from a journal line of any version: identity from its key when a column is missing,
        defaults for the columns it lacks, unknown keys kept in `extra`."""
        task, model, sample_id, epoch = line["key"]
        identity = {"run_id": "", "task": task, "family": None, "model": model, "sample_id": sample_id}
        known = {name: line[name] for name in _NAMES if name in line}
        extra = {k: v for k, v in line.items() if k not in _KNOWN}
        return cls(**{**identity, "epoch": int(epoch), **known, "extra": extra})

    def columns(self) -> dict[str, Any]:
        """The DataFrame's columns of this row: metrics as `score_<name>`, metadata as `meta_<name>`."""
        return SampleRow.columns_of(self.to_line())

    @staticmethod
    def columns_of(line: dict[str, Any]) -> dict[str, Any]:
        """`from_line(line).columns()` without building the row: `load_results` reads many."""
        task, model, sample_id, epoch = line["key"]
        row = _COLUMN_DEFAULTS | {"task": task, "model": model, "sample_id": sample_id, "epoch": int(epoch)}
        row["target"], row["image_refs"] = [], []
        row.update((name, value) for name, value in line.items() if name not in _NOT_COLUMNS)
        for name, value in (line.get("metrics") or {}).items():
            row[f"score_{name}"] = value
        for name, value in (line.get("metadata") or {}).items():
            row[f"meta_{name}"] = value
        return row


_FIELDS = [f for f in dataclasses.fields(SampleRow) if f.name != "extra"]
_NAMES = tuple(f.name for f in _FIELDS)  # in column order
_KNOWN = frozenset({*_NAMES, "kind", "key"})
_NOT_COLUMNS = frozenset({"kind", "key", "metrics", "metadata"})


def _default(f: dataclasses.Field[Any]) -> Any:
    return f.default if f.default is not dataclasses.MISSING else None


# a row's columns before its line fills them in (identity is taken from the key)
_COLUMN_DEFAULTS = {
    f.name: _default(f) for f in _FIELDS if f.name not in _NOT_COLUMNS and f.name != "rescored_from"
} | {"run_id": ""}


def sample_row(
    *,
    run_id: str,
    unit: Unit,
    rendered: Rendered,
    record: CallRecord,
    score: Score | None,
    estimate: Any,
    request: str,
    from_cache: bool,
    simulated: bool,
    extra: dict[str, Any] | None = None,
) -> SampleRow:
    """The row of one finished unit: its sample, its response, its score and the price-card estimate;
    `extra`: a judged sample's columns (`evalkit.runner.judging.Judged.columns`)."""
    sample = unit.sample
    call = record.to_dict()
    return SampleRow(
        run_id=run_id,
        task=unit.task.name,
        family=unit.task.family,
        model=unit.model,
        sample_id=sample.id,
        epoch=unit.epoch,
        language=sample.language,
        target=sample.target,
        prompt=rendered.text[:PROMPT_CHARS],
        output=record.output,
        reasoning=record.reasoning,
        truncated=record.truncated,
        extracted=score.extracted if score else None,
        score=score.value if score else None,
        explanation=score.explanation if score else None,
        metrics=dict(score.metrics) if score else {},
        error=record.error,
        error_message=record.error_message,
        **{name: call.get(name) for name in _CALL_COLUMNS},
        images=len(rendered.images),
        image_refs=[image.record() for image in rendered.images],
        **_estimate_columns(estimate),
        from_cache=from_cache,
        simulated=simulated,
        cluster=str(sample.metadata.get("cluster", sample.id)),
        metadata=sample.metadata,
        request=request,
        extra=dict(extra or {}),
    )


def _estimate_columns(estimate: Any) -> dict[str, float | None]:
    parts = ("total", "input", "output", "images", "reasoning", "cache_saved")
    names = ("cost_rub_estimated", *(f"cost_rub_{part}" for part in parts[1:]))
    values = (getattr(estimate, part) if estimate else None for part in parts)
    return {
        name: None if value != value else value for name, value in zip(names, values, strict=True)
    }  # NaN: unknown


_CALL_COLUMNS = (
    "latency_s",
    "ttft_s",
    "ttft_reasoning_s",
    "output_tokens_per_s",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_rub",
    "attempts",
    "finish_reason",
    "generation_id",
    "http_status",
)
