"""A unit of work: one sample of one task, asked of one model, in one epoch."""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.runner.journal import Key
from evalkit.task.spec import Sample, Task


@dataclass
class Unit:
    task: Task
    sample: Sample
    model: str
    epoch: int

    @property
    def key(self) -> Key:
        return (self.task.name, self.model, self.sample.id, self.epoch)
