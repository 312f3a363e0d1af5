"""The scorer contract: a pure function of (model output, sample) -> Score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalkit.common.text import encodable

if TYPE_CHECKING:
    from evalkit.task.sample import Sample


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


class Scorer:
    """Base of every scorer: callable as scorer(output, sample) -> Score, with a declared lifecycle.

    Scorers must never raise on any string output and must keep values in [0, 1]. Two exceptions,
    both so that a failure is recorded as the sample's error rather than as a wrong answer: `verdict`
    raises `VerdictError` for a judge reply that is no verdict, and `judge` scores only inside a run.
    `blocking = True` marks scorers that do real work outside Python (the code sandbox): the runner
    calls those in a worker thread so that scoring overlaps generation. `close()` releases what the
    scorer holds (warm sandbox workers); the runner calls it once, after the last sample.
    A plain function works as a scorer too: it is neither blocking nor has anything to close.
    """

    blocking: bool = False

    def __call__(self, output: str, sample: Sample) -> Score:
        raise NotImplementedError

    def close(self) -> None:
        """Release held resources; the default holds none."""


def is_blocking(scorer: Callable[..., Score]) -> bool:
    """Whether `scorer` must run in a worker thread (a plain function never does)."""
    return bool(getattr(scorer, "blocking", False))


def close_scorer(scorer: Callable[..., Score]) -> None:
    """Release what `scorer` holds; objects that follow the lifecycle without subclassing count too."""
    close = getattr(scorer, "close", None)
    if callable(close):
        close()


def score_output(
    scorer: Callable[..., Score], output: str, sample: Sample
) -> tuple[Score | None, str | None]:
    """Score one output; a scorer that breaks (e.g. the sandbox itself failed), or returns a value
    that is no score in [0, 1] (NaN, 1.5, a string), is an error, not a number averaged in."""
    output = encodable(output)  # a lone surrogate cannot reach a file, a regex engine or the sandbox
    try:
        score = scorer(output, sample)
    except Exception as exc:  # any scorer bug must not end the run or pass for a wrong answer
        return None, f"{type(exc).__name__}: {exc}"[:500]
    value = getattr(score, "value", score)
    if _is_score(value):
        return score, None
    name = getattr(scorer, "__name__", type(scorer).__name__)
    return None, f"scorer {name} returned {value!r} for sample {sample.id!r}: a score is a number in [0, 1]"[
        :500
    ]


def _is_score(value: object) -> bool:
    """A number in [0, 1] (NaN is not): bools and numpy scalars count, text does not."""
    if isinstance(value, str | bytes):
        return False
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return 0 <= number <= 1
