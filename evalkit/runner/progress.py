"""Progress reporting: the runner emits snapshots; sinks display them (tqdm, a Jupyter widget, nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProgressSnapshot:
    """The state of a run at one moment. Money in ₽, times in seconds."""

    total: int
    done: int = 0
    errors: int = 0
    score_sum: float = 0.0
    scored: int = 0
    spent_rub: float = 0.0
    elapsed_s: float = 0.0
    in_flight: int = 0
    concurrency: int = 0
    backing_off: str | None = None
    status: str = "running"

    @property
    def accuracy(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


class ProgressSink(Protocol):
    """Receives snapshots from the runner; must be cheap (called up to a few times a second)."""

    def update(self, snapshot: ProgressSnapshot) -> None: ...

    def close(self, snapshot: ProgressSnapshot) -> None: ...


class NullProgress:
    def update(self, snapshot: ProgressSnapshot) -> None:
        pass

    def close(self, snapshot: ProgressSnapshot) -> None:
        pass


class TqdmProgress:
    """tqdm.auto: a text bar in a terminal, a widget in Jupyter."""

    def __init__(self, total: int, description: str = "evalkit") -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=description, unit="sample", dynamic_ncols=True)

    def update(self, snapshot: ProgressSnapshot) -> None:
        self._bar.n = snapshot.done
        self._bar.set_postfix_str(describe(snapshot), refresh=False)
        self._bar.refresh()

    def close(self, snapshot: ProgressSnapshot) -> None:
        self.update(snapshot)
        self._bar.close()


def describe(snapshot: ProgressSnapshot) -> str:
    parts = [f"₽{snapshot.spent_rub:.4f}", f"err {snapshot.errors}"]
    if snapshot.accuracy is not None:
        parts.append(f"acc {100 * snapshot.accuracy:.1f}%")
    parts.append(f"c={snapshot.concurrency}")
    if snapshot.backing_off:
        parts.append(f"backing off: {snapshot.backing_off}")
    return " ".join(parts)
