"""The scorer contract: a pure function of (model output, sample) -> Score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from evalkit.task import Sample


@dataclass(frozen=True, slots=True)
class Score:
    """How one output scored.

    value: the primary metric in [0, 1] (accuracy, F1, pass); what `summarize` averages.
    extracted: the answer the scorer found in the output (None when it found none).
    explanation: one short human-readable line saying why.
    metrics: extra named metrics in [0, 1] (e.g. {"em": 1.0, "f1": 1.0}); become `score_<name>` columns.
    """

    value: float
    extracted: str | None = None
    explanation: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """Anything callable as scorer(output, sample) -> Score.

    Scorers must never raise on any string output and must keep values in [0, 1].
    `blocking = True` marks scorers that do real work outside Python (the code sandbox): the runner
    calls those in a worker thread so that scoring overlaps generation.
    """

    blocking: bool

    def __call__(self, output: str, sample: Sample) -> Score: ...
