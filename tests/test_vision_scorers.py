"""Relaxed accuracy (ChartQA) and ANLS (DocVQA): definitions, boundaries, extraction, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.scorers import get_scorer
from evalkit.scorers.anls import ANLS, anls_similarity, levenshtein
from evalkit.scorers.relaxed import RelaxedAccuracy, as_number, final_answer
from evalkit.task.spec import Sample


def sample(*targets: str, choices: list[str] | None = None, language: str | None = None) -> Sample:
    return Sample(id="s", input="q", target=list(targets), choices=choices, language=language)


relaxed = RelaxedAccuracy()


@pytest.mark.parametrize(
    ("output", "target", "expected"),
    [
        ("105", "100", 1.0),  # exactly 5%: inside
        ("95", "100", 1.0),
        ("105.01", "100", 0.0),  # just outside
        ("94.9", "100", 0.0),
        ("-10.5", "-10", 1.0),
        ("0", "0", 1.0),  # a zero target needs an exact zero
        ("0.001", "0", 0.0),
        ("1,234", "1234", 1.0),
        ("1234", "1,234", 1.0),
        ("1,300", "1234", 0.0),  # 5.3% off
        ("45%", "45", 1.0),
        ("45%", "0.45", 1.0),
        ("0.45", "45%", 1.0),
        ("45", "45%", 1.0),
        ("4.5%", "45", 0.0),
        ("$12.5", "12.5", 1.0),
        ("2016", "2017", 1.0),  # years are numbers, as in the reference metric
        ("Yes", "yes", 1.0),
        ("Blue.", "blue", 1.0),
        ("blue sky", "blue", 0.0),
        ("twelve", "12", 0.0),
    ],
)
def test_relaxed_accuracy_definition(output: str, target: str, expected: float) -> None:
    assert relaxed(output, sample(target)).value == expected


def test_tolerance_is_a_parameter_and_strict_metric_has_none() -> None:
    score = relaxed("103", sample("100"))
    assert score.value == 1.0 and score.metrics == {"strict": 0.0}
    assert "within 5% of 100" in score.explanation
    exact = get_scorer("relaxed", {"tolerance": 0.0})
    assert exact("103", sample("100")).value == 0.0 and exact("100.0", sample("100")).value == 1.0
    with pytest.raises(Exception, match="tolerance"):
        get_scorer("relaxed", {"tolerance": 5})


def test_max_over_targets() -> None:
    score = relaxed("Answer: 50", sample("10", "49"))
    assert score.value == 1.0 and "of 49" in score.explanation
    assert relaxed("Answer: Canada", sample("USA", "canada")).value == 1.0


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("The bars show...\nAnswer: 42", "42"),
        ("Reasoning.\n**Answer:** 1,234 people\nThanks", "1,234 people"),
        ("So the final answer is 17.", "17"),
        ("We get \\boxed{3/4}.", "3/4"),
        ("Looking at it\n\n  Orange.  ", "Orange"),
        ("Ответ: 12", "12"),
        ("", ""),
    ],
)
def test_final_answer_extraction(output: str, answer: str) -> None:
    assert final_answer(output, "ru") == answer


def test_answer_label_in_the_sample_language() -> None:
    assert relaxed("คำตอบ: 7", sample("7", language="th")).value == 1.0
    assert relaxed("Antwort: Haus", sample("haus", language="de")).value == 1.0


def test_number_reading_uses_the_answer_span() -> None:
    assert relaxed("In 2019 the value was high.\nAnswer: 45", sample("45")).value == 1.0
    assert relaxed("Answer: about 45 million", sample("45")).value == 1.0
    assert relaxed("Answer: none", sample("45")).explanation.startswith("no number")
    assert as_number("12 apples") is None and as_number("−3") == (-3.0, False)


def test_multiple_choice_letter_or_option_text() -> None:
    item = sample("C", choices=["3 cm", "4 cm", "5 cm", "6 cm", "7 cm"])
    for output in ("C", "(C)", "Answer: C. 5 cm", "Answer: 5 cm", "c"):
        assert relaxed(output, item).value == 1.0, output
    for output in ("B", "Answer: 4 cm", "Answer: cm"):
        assert relaxed(output, item).value == 0.0, output


def test_text_normalisation_across_scripts() -> None:
    assert relaxed("Answer: «École»", sample("école")).value == 1.0
    assert relaxed("الإجابة: كِتَاب", sample("كتاب", language="ar")).value == 1.0  # harakat ignored
    assert relaxed("Answer: पेड़", sample("पेड़")).value == 1.0  # precomposed vs nukta sequence
    assert relaxed("Answer: Mặt Trời", sample("mặt trời")).value == 1.0


def test_relaxed_without_extraction_compares_the_whole_output() -> None:
    scorer = RelaxedAccuracy(extract=False)
    assert scorer("Answer: 5", sample("5")).value == 1.0  # the one number in the text
    assert scorer("It is blue\nblue", sample("blue")).value == 0.0


@pytest.mark.parametrize(
    ("prediction", "target", "expected"),
    [
        ("Dr. Smith", "Dr. Smith", 1.0),
        ("dr. smith", "Dr. Smith", 1.0),  # case-insensitive
        ("  dr.   smith ", "Dr. Smith", 1.0),  # whitespace collapsed
        ("Dr Smith", "Dr. Smith", 1 - 1 / 9),
        ("kitten", "sitting", 1 - 3 / 7),  # NL = 3/7 < 0.5
        ("abcd", "abxy", 0.0),  # NL = 0.5: at the threshold it scores 0
        ("abcde", "abxye", 1 - 2 / 5),
        ("", "x", 0.0),
    ],
)
def test_anls_known_values(prediction: str, target: str, expected: float) -> None:
    assert anls_similarity(prediction, target) == pytest.approx(expected)


def test_levenshtein() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("flaw", "lawn") == 2
    assert levenshtein("ab", "ab") == 0


def test_anls_scorer_max_over_targets_and_extraction() -> None:
    scorer = get_scorer("anls")
    score = scorer("The document says\nAnswer: Dr Smith", sample("John Smith", "Dr. Smith"))
    assert score.value == pytest.approx(1 - 1 / 9) and score.extracted == "Dr Smith"
    assert score.metrics == {"exact": 0.0} and "Dr. Smith" in score.explanation
    assert scorer("Answer: dr. smith", sample("Dr. Smith")).metrics == {"exact": 1.0}
    assert ANLS(threshold=0.2)("kitten", sample("sitting")).value == 0.0


@settings(max_examples=200, deadline=None)
@given(
    output=st.text(max_size=300),
    targets=st.lists(st.text(max_size=20), max_size=3),
    choices=st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=5)),
)
def test_scorers_never_raise_and_stay_in_range(
    output: str, targets: list[str], choices: list[str] | None
) -> None:
    item = Sample(id="h", input="q", target=targets, choices=choices)
    for scorer in (RelaxedAccuracy(), RelaxedAccuracy(tolerance=0.0), ANLS()):
        score = scorer(output, item)
        assert 0.0 <= score.value <= 1.0
        assert all(0.0 <= v <= 1.0 for v in score.metrics.values())
