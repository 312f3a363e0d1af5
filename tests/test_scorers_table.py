"""Table-driven scorer cases: tricky model outputs in many languages (tests/data/scorer_cases.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.scorers import get_scorer
from evalkit.task.spec import Sample

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "scorer_cases.yaml").read_text(encoding="utf-8")
)


def _id(case: dict[str, Any]) -> str:
    return f"{case['scorer']}-{case['language']}-{case['output'][:30]!r}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    scorer = get_scorer(case["scorer"], case.get("params"))
    sample = Sample(
        id="case",
        target=case["target"],
        choices=case.get("choices"),
        language=case["language"],
        metadata=case.get("metadata") or {},
    )
    score = scorer(case["output"], sample)
    assert score.extracted == case["extracted"], score.explanation
    assert score.value == pytest.approx(case["score"]), score.explanation
    assert score.explanation


def test_table_is_broad() -> None:
    assert len(CASES) >= 60
    assert len({c["language"] for c in CASES}) >= 10
    assert {c["scorer"] for c in CASES} == {"numeric", "extractive", "choice", "exact", "regex"}
