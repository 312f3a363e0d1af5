"""MultipleChoice, ExactMatch and RegexMatch: behaviour beyond the case table."""

from __future__ import annotations

import pytest

from evalkit.common.errors import TaskError
from evalkit.scorers import get_scorer
from evalkit.scorers.choice import MultipleChoice, target_letter
from evalkit.scorers.exact import ExactMatch, iso_date, yes_no
from evalkit.scorers.regex import RegexMatch
from evalkit.task.spec import Sample

CHOICES = ["Paris", "London", "Berlin", "Madrid"]


def _mc(output: str, target: str = "B", language: str = "en", choices: list[str] | None = CHOICES) -> float:
    return MultipleChoice()(output, Sample(id="x", target=[target], choices=choices, language=language)).value


@pytest.mark.parametrize(
    ("target", "letter"),
    [("B", "B"), ("b", "B"), ("(C)", "C"), ("D.", "D"), ("Berlin", "C"), ("  madrid ", "D"), ("Rome", None)],
)
def test_target_letter(target: str, letter: str | None) -> None:
    assert target_letter(target, CHOICES) == letter


def test_answer_phrase_beats_letters_elsewhere() -> None:
    assert _mc("Option (A) is tempting and (C) too.\nAnswer: B") == 1.0
    assert _mc("B is wrong because...\nThe answer is D", target="D") == 1.0


def test_first_bare_line_beats_later_mentions() -> None:
    assert _mc("B\n\nExplanation: option (A) is wrong since ...") == 1.0


def test_option_text_answers() -> None:
    assert _mc("Answer: London, because it is the capital.") == 1.0
    assert _mc("london") == 1.0
    assert _mc("Answer: Lyon") == 0.0


def test_words_are_not_letters() -> None:
    """An English "A" article, a Russian "в" preposition or a Thai word is not a choice."""
    assert (
        MultipleChoice()(
            "A cat sat on the mat.", Sample(id="x", target=["A"], choices=list("wxyz"))
        ).extracted
        is None
    )
    assert _mc("Ответ: в Париже", target="A", language="ru", choices=["x", "y", "z", "w"]) == 0.0
    assert _mc("คำตอบ: กรุงเทพ", target="A", language="th", choices=["x", "y", "z", "w"]) == 0.0


def test_letter_beyond_the_options_scores_zero() -> None:
    score = MultipleChoice()("Answer: F", Sample(id="x", target=["B"], choices=CHOICES))
    assert score.value == 0.0 and "not one of the 4 options" in score.explanation


def test_exact_answer_line_and_normalisation() -> None:
    sample = Sample(id="x", target=["New York"], language="en")
    assert ExactMatch()("I think...\nAnswer: new york!", sample).value == 1.0
    assert ExactMatch()("New  York.", sample).value == 1.0
    assert ExactMatch(normalize=False)("New  York.", sample).value == 0.0
    assert ExactMatch(ignore_case=False)("new york", sample).value == 0.0
    assert ExactMatch(extract=False)("Answer: New York", sample).value == 0.0


def test_yes_no_needs_the_answer_type() -> None:
    assert ExactMatch()("Да", Sample(id="x", target=["yes"], language="ru")).value == 0.0
    assert (
        ExactMatch()(
            "Да", Sample(id="x", target=["yes"], language="ru", metadata={"answer_type": "yes_no"})
        ).value
        == 1.0
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("Да, конечно", "yes"), ("Nein.", "no"), ("はい", "yes"), ("不是", "no"), ("Maybe", None), ("", None)],
)
def test_yes_no_words(text: str, canonical: str | None) -> None:
    assert yes_no(text) == canonical


@pytest.mark.parametrize(
    ("text", "language", "iso"),
    [
        ("2017-05-18", "en", "2017-05-18"),
        ("18/05/2017", "en", "2017-05-18"),  # 18 cannot be a month
        ("05/06/2017", "en", "2017-05-06"),  # US order in English
        ("05/06/2017", "fr", "2017-06-05"),  # day first elsewhere
        ("18 мая 2017 г.", "ru", "2017-05-18"),
        ("18. Mai 2017", "de", "2017-05-18"),
        ("le 18 mai 2017", "fr", "2017-05-18"),
        ("2017年5月18日", "ja", "2017-05-18"),
        ("ngày 18 tháng 5 năm 2017", "vi", "2017-05-18"),
        ("May 2017", "en", "2017-05"),
        ("in 2017", "en", "2017"),
        ("2017-13-45", "en", None),
        ("no date here", "en", None),
    ],
)
def test_iso_dates(text: str, language: str, iso: str | None) -> None:
    assert iso_date(text, language) == iso


def test_regex_parameter_pattern_and_modes() -> None:
    sample = Sample(id="x", target=[], language="en")
    assert RegexMatch(pattern=r"\b4[0-9]\b")("It is 42.", sample).value == 1.0
    assert RegexMatch(pattern=r"4[0-9]", full=True)("It is 42.", sample).value == 0.0
    assert RegexMatch(pattern=r"answer", flags="")("ANSWER", sample).value == 0.0
    # NFKC: full-width digits match \d+ as ASCII digits
    assert RegexMatch(pattern=r"42", normalize=True)("４２", sample).value == 1.0
    assert (
        RegexMatch(pattern=r"^paris$", extract=True, full=True)("Reasoning...\nAnswer: Paris", sample).value
        == 1.0
    )


def test_regex_invalid_target_is_a_reason_not_a_crash() -> None:
    score = RegexMatch()("text", Sample(id="x", target=["(", "te.t"]))
    assert score.value == 1.0  # the valid alternative still matches
    score = RegexMatch()("text", Sample(id="x", target=["("]))
    assert score.value == 0.0 and "invalid regex" in score.explanation


@pytest.mark.parametrize(
    ("name", "params"),
    [("regex", {"pattern": "("}), ("regex", {"flags": "q"}), ("exact", {"bogus": 1}), ("choice", {"x": 1})],
)
def test_bad_parameters_are_task_errors(name: str, params: dict) -> None:
    with pytest.raises(TaskError):
        get_scorer(name, params)
