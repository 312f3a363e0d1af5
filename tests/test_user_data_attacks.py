"""Task files and model outputs an adversarial new user produced: each case once scored silently
wrong or was refused with an unhelpful error; every one is now right or refused by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import TaskError
from evalkit.scorers import get_scorer
from evalkit.task import Sample
from tests.userdata import cli, task_at, write_task

NUMERIC = get_scorer("numeric")
CHOICE = get_scorer("choice")
CITIES = ["Берлин", "Париж", "Рим", "Мадрид"]


# --- numbers: an answer line grouped by plain spaces, in any language ---------------------------


@pytest.mark.parametrize("language", ["en", None, "sw", "yo", "mn", "hy", "ja", "xx-private"])
@pytest.mark.parametrize(("written", "value"), [("12 500", "12500"), ("1 000 000", "1000000"), ("1 200 ₽", "1200")])
def test_an_answer_line_grouped_by_plain_spaces_is_one_number_in_every_language(
    language: str | None, written: str, value: str
) -> None:
    for target in (written, value):
        score = NUMERIC(f"Working...\nAnswer: {written}", Sample(id="x", target=target, language=language))
        assert (score.value, score.extracted) == (1.0, value), (language, written, target)
    wrong = NUMERIC(f"Answer: {written}", Sample(id="x", target=written.split()[0], language=language))
    assert wrong.value == 0.0  # "12 500" is never read as 12


def test_plain_spaces_outside_the_answer_line_do_not_merge_numbers_in_english() -> None:
    # "5 100-dollar bills": only an answer line is read with space grouping in English.
    assert NUMERIC("He has 5 100", Sample(id="x", target="100", language="en")).value == 1.0
