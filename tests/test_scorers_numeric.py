"""NumericMatch: agreement with simple-evals' MGSM scoring where it is right, and where it is wrong."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from evalkit.common.errors import TaskError
from evalkit.scorers import get_scorer
from evalkit.scorers.normalize import interpret, number_style, parse_target_number
from evalkit.scorers.numeric import NumericMatch
from evalkit.task.spec import Sample

MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
# simple-evals' LANG_TO_ANSWER_PREFIX.
PREFIX = {
    "en": "Answer", "bn": "উত্তর", "de": "Antwort", "es": "Respuesta", "fr": "Réponse", "ja": "答え",
    "ru": "Ответ", "sw": "Jibu", "te": "సమాధానం", "th": "คำตอบ", "zh": "答案",
}  # fmt: skip


# --- the oracle: simple-evals' mgsm_eval.parse_answer and score_mgsm, re-implemented -------------


def simple_evals_parse(answer: str, prefix: str) -> str:
    if prefix not in answer:
        return ""
    text = answer.split(prefix)[-1].strip()
    numbers = re.findall(r"\d+\.?\d*", text.replace(",", ""))
    return numbers[-1].rstrip(".") if numbers else ""


def simple_evals_score(target: str, prediction: str) -> bool:
    if "." in prediction:
        prediction = prediction.rstrip("0").rstrip(".")
    return target.replace(",", "") == prediction.replace(",", "")


def ours(output: str, target: str, language: str) -> float:
    return NumericMatch()(output, Sample(id="x", target=[target], language=language)).value


def _mgsm_targets(data: Path, language: str) -> list[str]:
    lines = (data / "mgsm" / f"mgsm_{language}.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[1] for line in lines]


def _local(target: str, language: str) -> str:
    """An integer written as a model writing in that language would write it."""
    digits = target.replace(",", "")
    groups = f"{int(digits):,}"
    if language in ("de", "es"):
        return groups.replace(",", ".")
    if language in ("fr", "ru"):
        return groups.replace(",", "\u202f")
    return groups


def test_every_mgsm_target_parses_as_an_integer(shared_data: Path) -> None:
    for language in MGSM_LANGUAGES:
        for target in _mgsm_targets(shared_data, language):
            value = parse_target_number(target)
            assert value is not None and value == int(target.replace(",", "")), (language, target)


def test_agrees_with_simple_evals_on_plain_answers(shared_data: Path) -> None:
    """The instructed format with plain digits: both score every MGSM answer right, and a wrong
    answer wrong, in all 11 languages (2,750 targets)."""
    checked = 0
    for language in MGSM_LANGUAGES:
        for target in _mgsm_targets(shared_data, language):
            plain = target.replace(",", "")
            for output, expected in (
                (f"Reasoning 12 + 3 = 15.\n{PREFIX[language]}: {plain}", 1.0),
                (f"Reasoning 12 + 3 = 15.\n{PREFIX[language]}: {int(plain) + 1}", 0.0),
            ):
                assert simple_evals_score(target, simple_evals_parse(output, PREFIX[language])) == bool(
                    expected
                )
                assert ours(output, target, language) == expected, (language, output)
                checked += 1
    assert checked == 2 * 250 * 11


def test_local_number_formats_where_simple_evals_is_wrong(shared_data: Path) -> None:
    """German "2.125", French/Russian "2 125" (narrow no-break space): simple-evals misreads them."""
    disagreements = 0
    for language in ("de", "es", "fr", "ru"):
        for target in _mgsm_targets(shared_data, language):
            output = f"{PREFIX[language]}: {_local(target, language)}"
            assert ours(output, target, language) == 1.0, (language, output)
            if not simple_evals_score(target, simple_evals_parse(output, PREFIX[language])):
                disagreements += 1
    assert disagreements > 10  # every target of 1,000 or more


@pytest.mark.parametrize(
    ("language", "output", "target", "simple_evals", "evalkit"),
    [
        ("de", "Antwort: 2.125", "2,125", False, 1.0),  # dot groups thousands in German
        ("fr", "Réponse : 2 125", "2,125", False, 1.0),  # space groups thousands in French
        ("ru", "Ответ: 2\u00a0125", "2,125", False, 1.0),  # no-break space
        ("de", "Antwort: 3,5", "35", True, 0.0),  # a decimal comma is not a thousands comma
        (
            "en",
            "Answer: 18\n\nShe sold 9 eggs at $2 each.",
            "18",
            False,
            1.0,
        ),  # the answer line, not the text after it
        ("bn", "উত্তর: ১৮", "18", False, 1.0),  # native digits
        ("th", "คำตอบ: ๑๘", "18", False, 1.0),
        ("en", "Answer: 18 (9 eggs × $2)", "18", False, 1.0),
        ("ru", "Ответ: −5", "-5", False, 1.0),  # U+2212 minus
        ("en", "The total is 18.", "18", False, 1.0),  # no prefix: simple-evals finds nothing
        ("en", "Answer: 18", "18", True, 1.0),
        ("en", "Answer: 18.00", "18", True, 1.0),
        ("en", "Answer: 2,125", "2,125", True, 1.0),
    ],
)
def test_simple_evals_replay(
    language: str, output: str, target: str, simple_evals: bool, evalkit: float
) -> None:
    assert simple_evals_score(target, simple_evals_parse(output, PREFIX[language])) is simple_evals
    assert ours(output, target, language) == evalkit


@pytest.mark.parametrize(
    ("body", "language", "value"),
    [
        ("2,125", "en", "2125"),
        ("3.5", "en", "3.5"),
        ("3,5", "en", "3.5"),
        ("1,234.5", "en", "1234.5"),
        ("1.234,5", "en", "1234.5"),
        ("2.125", "de", "2125"),
        ("1,50", "de", "1.5"),
        ("2,125", "de", "2.125"),
        ("3.5", "de", "3.5"),
        ("1.234.567", "de", "1234567"),
        ("2.125", "fr", "2.125"),
        ("2 125", "fr", "2125"),
        ("1,25,000", "hi", "125000"),
        ("1.2.3", "en", None),
        ("٣٫٥", "ar", "3.5"),
        ("١٢٬٣٤٥", "ar", "12345"),
    ],
)
def test_interpret(body: str, language: str, value: str | None) -> None:
    result = interpret(body, number_style(language))
    assert result == (Decimal(value) if value is not None else None)


def test_tolerance_absolute_and_relative() -> None:
    sample = Sample(id="x", target=["100"], language="en")
    assert NumericMatch(tolerance=0.5)("Answer: 100.4", sample).value == 1.0
    assert NumericMatch(tolerance=0.5)("Answer: 100.6", sample).value == 0.0
    assert NumericMatch(tolerance=0.01, relative=True)("Answer: 101", sample).value == 1.0
    assert NumericMatch(tolerance=0.01, relative=True)("Answer: 101.5", sample).value == 0.0
    assert NumericMatch()("Answer: 100.0000", sample).value == 1.0


def test_any_target_counts_and_explanation_says_where() -> None:
    sample = Sample(id="x", target=["7", "seven", "7.0"], language="en")
    score = NumericMatch()("\\boxed{7}", sample)
    assert (score.value, score.extracted) == (1.0, "7")
    assert "boxed" in score.explanation
    assert "'Ответ:'" in NumericMatch()("Ответ: 7", Sample(id="x", target=["7"], language="ru")).explanation
    assert "last number" in NumericMatch()("it is 7", sample).explanation


def test_huge_numbers_are_exact() -> None:
    big = "9" * 5000
    sample = Sample(id="x", target=[big], language="en")
    assert NumericMatch()(f"Answer: {big}", sample).value == 1.0
    assert NumericMatch()(f"Answer: {big[:-1]}8", sample).value == 0.0


def test_non_numeric_target_scores_zero_with_a_reason() -> None:
    score = NumericMatch()("Answer: 5", Sample(id="x", target=["five"], language="en"))
    assert score.value == 0.0 and "no numeric target" in score.explanation


@pytest.mark.parametrize(
    "params", [{"tolerance": -1}, {"tolerance": "abc"}, {"tolerance": float("nan")}, {"nope": 1}]
)
def test_bad_parameters_are_task_errors(params: dict) -> None:
    with pytest.raises(TaskError):
        get_scorer("numeric", params)
