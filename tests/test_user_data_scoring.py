"""Numbers and answer lines as users' data and models write them: space-grouped thousands, ambiguous
separators, and answer phrases in the languages our users evaluate (and in any other)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.common.errors import TaskError
from evalkit.scorers import get_scorer
from evalkit.task.languages import answer_word
from evalkit.task.spec import Sample
from tests.userdata import task_at, write_csv

SPACES = {"space": " ", "nbsp": "\u00a0", "narrow nbsp": "\u202f", "thin space": "\u2009"}
NUMERIC = get_scorer("numeric")


def _numeric(output: str, target: str, language: str) -> float:
    return NUMERIC(output, Sample(id="x", target=target, language=language)).value


# --- 3. space-grouped thousands -------------------------------------------------------------------


@pytest.mark.parametrize("space", SPACES.values(), ids=SPACES.keys())
@pytest.mark.parametrize("language", ["ru", "kk", "uk", "fr", "be", "pl", "uz"])
def test_space_grouped_thousands_in_targets_and_outputs(language: str, space: str) -> None:
    for number, value in (("12{s}500", "12500"), ("1{s}000{s}000", "1000000")):
        written = number.format(s=space)
        line = f"{answer_word(language)}: {written}"
        assert _numeric(line, written, language) == 1.0, (line, written)
        assert _numeric(line, value, language) == 1.0
        assert _numeric(f"{answer_word(language)}: {value}", written, language) == 1.0
        assert _numeric(f"{answer_word(language)}: 12501", written, language) == 0.0


def test_space_grouped_targets_in_a_csv_file(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "qa.csv",
        [
            {"id": "ru", "q": "Сколько?", "answer": "12 500", "language": "ru"},
            {"id": "fr", "q": "Combien ?", "answer": "1\u202f000\u202f000", "language": "fr"},
            {"id": "kk", "q": "Қанша?", "answer": "276\u00a0000", "language": "kk"},
        ],
        sep=";",
    )
    task = task_at(
        tmp_path,
        {
            "name": "n",
            "source": {"path": "qa.csv", "options": {"delimiter": ";"}},
            "fields": {"id": "id", "target": "answer"},
            "prompt": {"user": "{q}"},
            "scorer": "numeric",
        },
    )
    outputs = {"ru": "Ответ: 12 500 рублей", "fr": "Réponse : 1 000 000", "kk": "Жауабы: 276 000"}
    scorer = task.build_scorer()
    assert {s.id: scorer(outputs[s.id], s).value for s in task.load_samples()} == dict.fromkeys(outputs, 1.0)


# --- 4. a lone separator before three digits ------------------------------------------------------


@pytest.mark.parametrize("language", ["de", "es", "fr", "ru", "en", "it", "kk"])
@pytest.mark.parametrize("written", ["2,125", "276,000", "1.234"])
def test_an_output_repeating_the_datasets_own_target_string_is_right(language: str, written: str) -> None:
    sample = Sample(id="x", target=written, language=language)
    score = NUMERIC(f"{answer_word(language)}: {written}", sample)
    assert score.value == 1.0, score


@pytest.mark.parametrize(
    ("output", "target", "language", "value", "ambiguous"),
    [
        ("Antwort: 2,125", "2125", "de", 1.0, True),  # German decimals, or English grouping: either
        ("Antwort: 2.125", "2125", "de", 1.0, False),  # German grouping: not ambiguous in German
        ("Answer: 1.234", "1234", "en", 1.0, True),
        ("Answer: 1.234", "1.234", "en", 1.0, False),
        ("Respuesta: 276,000", "276000", "es", 1.0, True),
        ("Ответ: 2,126", "2,125", "ru", 0.0, False),  # neither reading matches
        ("Ответ: 2,5", "2125", "ru", 0.0, False),  # two decimals are not a thousands group
        ("Answer: 1,234.5", "1234.5", "en", 1.0, False),
    ],
)
def test_either_reading_is_accepted_and_recorded(output, target, language, value, ambiguous) -> None:
    score = NUMERIC(output, Sample(id="x", target=target, language=language))
    assert score.value == value, score
    assert ("ambiguous separator" in score.explanation) == ambiguous, score.explanation


# --- 5. answer phrases in more languages, and a generic rule --------------------------------------

ISSUE_LANGUAGES = [
    "kk",
    "uk",
    "be",
    "uz",
    "ky",
    "tg",
    "hy",
    "ka",
    "az",
    "tr",
    "pl",
    "zh",
    "ja",
    "ko",
    "he",
    "fa",
    "bn",
    "sw",
    "te",
]


@pytest.mark.parametrize("language", ISSUE_LANGUAGES)
def test_the_answer_line_wins_over_the_last_number_in_every_listed_language(language: str) -> None:
    word = answer_word(language)
    assert word != "Answer", f"{language} has no answer word"
    output = f"17 × 3 = 51\n{word}: 51 (17 × 3)"
    assert _numeric(output, "51", language) == 1.0
    choice = get_scorer("choice")(
        f"...\n{word}: B", Sample(id="c", target="B", choices=["x", "y", "z"], language=language)
    )
    assert choice.value == 1.0
    exact = get_scorer("exact")(
        f"Алматы емес.\n{word}: Астана", Sample(id="e", target="Астана", language=language)
    )
    assert exact.value == 1.0


@pytest.mark.parametrize(
    ("language", "output"),
    [
        ("uz", "Ҳисоб: 17 × 3\nЖавоб: 51 (17 × 3)"),  # Uzbek in Cyrillic script
        ("uz", "Hisob: 17 × 3\nJavob: 51 (17 × 3)"),
        ("kk", "**Жауабы:** 51 (17 × 3)"),
        ("am", "ስሌት 17 × 3\nመልስ: 51 (17 × 3)"),  # Amharic: not in the table, a final "Label: answer" line
        ("xx-private", "working: 17 x 3\nРезультат: 51 (17 × 3)"),
    ],
)
def test_script_variants_bold_labels_and_unknown_languages(language: str, output: str) -> None:
    assert _numeric(output, "51", language) == 1.0


def test_the_generic_rule_only_takes_a_final_label_line() -> None:
    assert _numeric("Step 1: 17 × 3\nso we get 51", "51", "am") == 1.0  # last number
    assert _numeric("Step 1: 51\nthen 17 × 3 more", "51", "am") == 0.0  # "Step 1" is no final answer line


def test_a_task_adds_its_own_answer_phrases_in_yaml(tmp_path: Path) -> None:
    write_csv(tmp_path / "kk.csv", [{"id": "1", "q": "17 × 3?", "answer": "51", "language": "kk"}])
    spec = {
        "name": "kk",
        "source": {"path": "kk.csv"},
        "fields": {"id": "id", "target": "answer"},
        "prompt": {"user": "{q}"},
        "scorer": "numeric",
    }
    output = "Нәтиже: 51 (17 × 3)"
    (sample,) = task_at(tmp_path, spec).load_samples()
    assert task_at(tmp_path, spec).build_scorer()(output, sample).value == 0.0  # last number: 3
    spec["scorer"] = {"name": "numeric", "params": {"answer_phrases": {"kk": ["нәтиже"]}}}
    assert task_at(tmp_path, spec).build_scorer()(output, sample).value == 1.0
    spec["scorer"] = {"name": "numeric", "params": {"answer_phrases": {"kk": "нәтиже"}}}
    with pytest.raises(TaskError, match="answer_phrases must map a language code to a list"):
        task_at(tmp_path, spec)


def test_extractive_takes_answer_phrases_too() -> None:
    sample = Sample(id="x", target="Абай Құнанбаев", language="kk")
    output = "Мәтінде айтылғандай.\nНәтиже: Абай Құнанбаев"
    assert get_scorer("extractive", {"metric": "em"})(output, sample).value == 0.0
    scorer = get_scorer("extractive", {"metric": "em", "answer_phrases": {"kk": ["нәтиже"]}})
    assert scorer(output, sample).value == 1.0
