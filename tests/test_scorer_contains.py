"""`contains`: added as one file (evalkit/scorers/contains.py) and found by name, like any scorer."""

from __future__ import annotations

import pytest

from evalkit.scorers import get_scorer, scorer_names
from evalkit.task.spec import Sample


def _score(output: str, *targets: str) -> float:
    return get_scorer("contains")(output, Sample(id="s", target=list(targets))).value


def test_it_is_registered_by_its_file_alone() -> None:
    assert "contains" in scorer_names()
    assert type(get_scorer("contains")).__name__ == "Contains"


@pytest.mark.parametrize(
    ("output", "targets", "value"),
    [
        ("The capital is Paris.", ["Paris"], 1.0),
        ("Столица — МОСКВА", ["Москва"], 1.0),
        ("It is São Paulo", ["Sao Paulo"], 1.0),
        ("I think 14", ["4"], 0.0),  # whole words only
        ("a category", ["cat"], 0.0),
        ("Paris, France", ["Lyon", "paris"], 1.0),  # several accepted answers
        ("", ["Paris"], 0.0),
        ("anything", [""], 0.0),  # an empty target never matches everything
    ],
)
def test_contains_whole_words_case_and_accents_aside(output, targets, value) -> None:
    assert _score(output, *targets) == value
