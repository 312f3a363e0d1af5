"""A scorer per answer type, for tasks that mix kinds of answers (numbers, names, yes/no, choices).

    scorer:
      name: by_type
      params:
        scorers: {number: numeric, choice: choice, date: exact, yes_no: exact}
        default: exact

Each sample is scored by the scorer of its `metadata.answer_type` (or the `answer_type` field when it
is not in the metadata), compared without case or surrounding spaces (`Number` is `number`); an
unlisted or missing type uses `default`. A scorer is named as a string
or as `{name: ..., params: {...}}`, exactly like the task's own `scorer:`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evalkit.scorers.base import Score, Scorer, close_scorer, is_blocking

if TYPE_CHECKING:
    from evalkit.task.sample import Sample


class ByAnswerType(Scorer):
    """Dispatch to one scorer per answer type.

    scorers: answer type -> scorer name or {name, params}.
    default: the scorer for any other (or missing) answer type.
    field: where the type is read (metadata first, then the sample's fields).
    """

    def __init__(
        self,
        scorers: Mapping[str, str | Mapping[str, Any]] | None = None,
        default: str | Mapping[str, Any] = "exact",
        field: str = "answer_type",
    ) -> None:
        if scorers is not None and not isinstance(scorers, Mapping):
            raise TypeError("`scorers` must map an answer type to a scorer name or {name, params}")
        self.field = field
        self.scorers: dict[str, Scorer] = {
            _kind(kind): _build(spec, kind) for kind, spec in (scorers or {}).items()
        }
        self.default: Scorer = _build(default, "default")
        self.blocking = any(is_blocking(s) for s in self._parts())

    def _parts(self) -> list[Scorer]:
        return [*self.scorers.values(), self.default]

    def close(self) -> None:
        """Close every scorer it dispatches to (e.g. a code scorer's warm sandbox workers)."""
        for part in self._parts():
            close_scorer(part)

    def scorer_for(self, sample: Sample) -> Scorer:
        """The scorer that handles this sample's answer type."""
        kind = sample.metadata.get(self.field, sample.fields.get(self.field))
        return self.scorers.get(_kind(kind), self.default) if kind is not None else self.default

    def __call__(self, output: str, sample: Sample) -> Score:
        return self.scorer_for(sample)(output, sample)


def _kind(kind: Any) -> str:
    """A type as users' data spells it: "Number", " number" and "number" are one type."""
    return str(kind).strip().casefold()


def _build(spec: str | Mapping[str, Any], kind: str) -> Scorer:
    from evalkit.scorers import get_scorer

    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        name, params = spec["name"], dict(spec.get("params") or {})
    else:
        raise TypeError(f"the scorer for {kind!r} must be a name or {{name, params}}, got {spec!r}")
    if name == "by_type":
        raise TypeError(f"the scorer for {kind!r} cannot be by_type itself")
    return get_scorer(name, params, where=f"scorer by_type: {kind}")
