"""Task files and model outputs an adversarial new user produced: each case once scored silently
wrong or was refused with an unhelpful error; every one is now right or refused by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.common.errors import TaskError
from evalkit.scorers import get_scorer
from evalkit.task.spec import Sample
from tests.userdata import cli, task_at, write_task

NUMERIC = get_scorer("numeric")
CHOICE = get_scorer("choice")
CITIES = ["Берлин", "Париж", "Рим", "Мадрид"]


# --- numbers: an answer line grouped by plain spaces, in any language ---------------------------


@pytest.mark.parametrize("language", ["en", None, "sw", "yo", "mn", "hy", "ja", "xx-private"])
@pytest.mark.parametrize(
    ("written", "value"), [("12 500", "12500"), ("1 000 000", "1000000"), ("1 200 ₽", "1200")]
)
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


# --- numbers: JSON floats as targets --------------------------------------------------------------


def test_json_float_targets_written_in_exponent_form_are_read(tmp_path: Path, capsys) -> None:
    rows = [{"id": i, "question": f"q{i}", "answer": a} for i, a in enumerate([1e-05, 2.5, 3.0, -7, 1.5e-7])]
    (tmp_path / "num.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {
        "name": "floats",
        "source": {"path": "num.jsonl"},
        "fields": {"id": "id", "target": "answer"},
        "prompt": {"user": "{question}"},
        "scorer": "numeric",
    }
    targets = [s.target for s in task_at(tmp_path, spec).load_samples()]
    assert targets == [["0.00001"], ["2.5"], ["3"], ["-7"], ["0.00000015"]]
    code, out, _ = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 0 and "5/5 gold answers score 1" in out, out


# --- multiple choice: Russian lettering А Б В Г ---------------------------------------------------


def _excel_mc(folder: Path, labels: list[str], **fields: str) -> dict:
    lines = ["id;вопрос;A;B;C;D;ответ"]
    lines += [f"{i};Вопрос {i}?;{';'.join(CITIES)};{label}" for i, label in enumerate(labels)]
    (folder / "mc.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))
    return {
        "name": "excel_mc",
        "source": {"path": "mc.csv", "options": {"delimiter": ";", "encoding": "cp1251"}},
        "fields": {"id": "id", "target": "ответ", "choices": ["A", "B", "C", "D"], **fields},
        "prompt": {"user": "{вопрос}\n{choices}"},
        "scorer": "choice",
    }


def test_cyrillic_letter_labels_without_a_latin_look_alike_are_read_in_russian_order(tmp_path: Path) -> None:
    task = task_at(tmp_path, _excel_mc(tmp_path, ["А", "Б", "Г", "б"]))
    assert [s.target for s in task.load_samples()] == [["A"], ["B"], ["D"], ["B"]]


def test_a_cyrillic_v_label_is_refused_until_the_lettering_is_declared(tmp_path: Path, capsys) -> None:
    spec = _excel_mc(tmp_path, ["Б", "В", "Г", "Е"])
    code, _, err = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 2
    assert "row 1: label 'В' is ambiguous" in err and "option C" in err and "option B" in err
    assert "choice_target" in err and "Traceback" not in err
    spec["fields"]["choice_target"] = "cyrillic"
    with pytest.raises(TaskError, match="row 3: label 'Е' is not a Cyrillic option letter"):
        task_at(tmp_path, spec).load_samples()  # Е is the sixth letter: no such option
    spec = _excel_mc(tmp_path, ["Б", "В", "Г"], choice_target="cyrillic")
    assert [s.target for s in task_at(tmp_path, spec).load_samples()] == [["B"], ["C"], ["D"]]
    spec = _excel_mc(tmp_path, ["B", "В", "D"], choice_target="letter")  # Latin, with a layout slip
    assert [s.target for s in task_at(tmp_path, spec).load_samples()] == [["B"], ["B"], ["D"]]


def test_a_label_that_is_the_text_of_two_options_says_so(tmp_path: Path) -> None:
    rows = [
        {
            "id": "a",
            "question": "Capital of France?",
            "choices": ["Paris", "Berlin", "Paris"],
            "label": "Paris",
        }
    ]
    (tmp_path / "mc.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    spec = {
        "name": "same_text",
        "source": {"path": "mc.jsonl"},
        "fields": {"id": "id", "target": "label", "choices": "choices"},
        "prompt": {"user": "{question}\n{choices}"},
        "scorer": "choice",
    }
    with pytest.raises(TaskError, match="row 0: label 'Paris' is the text of 2 options; name the option"):
        task_at(tmp_path, spec).load_samples()


# --- multiple choice: what models write --------------------------------------------------------------


def _choice(output: str, target: str, *, question: str = "Столица?", choices: list[str] = CITIES) -> float:
    sample = Sample(id="x", input=question, target=target, choices=choices, language="ru")
    return CHOICE(output, sample).value


@pytest.mark.parametrize(
    ("output", "target"), [("Ответ: Б", "B"), ("Ответ: Г", "D"), ("Б", "B"), ("**Г**", "D")]
)
def test_cyrillic_letters_without_a_latin_look_alike_are_read(output: str, target: str) -> None:
    assert _choice(output, target) == 1.0
    assert _choice(output, "A") == 0.0


def test_a_question_lettered_in_russian_order_reads_v_as_the_third_option() -> None:
    lettered = "Столица Италии?\nА) Берлин\nБ) Париж\nВ) Рим\nГ) Мадрид"
    for output in ("Ответ: В", "В", "Ответ: В) Рим", "Ответ: Рим"):
        assert _choice(output, "C", question=lettered) == 1.0, output
        assert _choice(output, "B", question=lettered) == 0.0, output
    assert _choice("Ответ: В", "C", question=lettered.replace("Б)", "B)")) == 0.0  # Latin-lettered: В is B


def test_a_letter_in_a_code_block_is_read() -> None:
    assert _choice("```\nB\n```", "B") == 1.0
    assert _choice("```\nA\n```", "B") == 0.0


def test_an_answer_matching_two_same_text_options_names_no_option() -> None:
    options = ["Paris", "Berlin", "Paris", "Rome"]
    for target in ("A", "C"):
        score = CHOICE("Answer: Paris", Sample(id="x", target=target, choices=options, language="en"))
        assert (score.value, score.extracted) == (0.0, None)
    assert _choice("Answer: C", "C", choices=options) == 1.0


# --- everyday files: Notepad's BOM, Excel's trailing separator ------------------------------------


def _numeric_task(path: str, **options: str) -> dict:
    source = {"path": path, **({"options": options} if options else {})}
    return {
        "name": "plain",
        "source": source,
        "fields": {"id": "id", "target": "answer"},
        "prompt": {"user": "{question}"},
        "scorer": "numeric",
    }


def test_a_jsonl_file_saved_with_a_bom_is_read(tmp_path: Path) -> None:
    rows = [{"id": "1", "question": "2+3?", "answer": "5"}, {"id": "2", "question": "2+2?", "answer": "4"}]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    samples = task_at(tmp_path, _numeric_task("bom.jsonl")).load_samples()
    assert [(s.id, s.target) for s in samples] == [("1", ["5"]), ("2", ["4"])]


def test_excels_trailing_separator_is_an_empty_column_not_an_error(tmp_path: Path, capsys) -> None:
    text = "id;question;answer;\r\n1;Сколько?;12 500;\r\n2;А тут?;7;\r\n"
    (tmp_path / "excel.csv").write_bytes(text.encode("cp1251"))
    spec = _numeric_task("excel.csv", delimiter=";", encoding="cp1251")
    samples = task_at(tmp_path, spec).load_samples()
    assert [(s.id, s.target, sorted(s.fields)) for s in samples][0] == (
        "1",
        ["12 500"],
        ["answer", "id", "question"],
    )
    (tmp_path / "excel.csv").write_bytes((text + "3;q;8;lost\r\n").encode("cp1251"))
    code, _, err = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 2 and "line 4: a value 'lost' in column 4, which has no name in the header" in err


@pytest.mark.parametrize(
    ("output", "target"),
    [
        ("答案：１，２００", "1200"),
        ("答案：－５", "-5"),
        ("答案：１，２００", "１，２００"),
        ("Answer: １．５", "1.5"),
    ],
)
def test_full_width_separators_and_signs_are_read(output: str, target: str) -> None:
    score = NUMERIC(output, Sample(id="x", target=target, language="zh"))
    assert score.value == 1.0, score
    assert NUMERIC(output, Sample(id="x", target="1", language="zh")).value == 0.0


# --- languages as users spell them -------------------------------------------------------------------


def test_language_codes_in_any_case_or_with_a_region_get_their_languages_prompt(
    tmp_path: Path, capsys
) -> None:
    rows = [
        {"id": str(i), "question": "2+2?", "answer": "4", "language": lang}
        for i, lang in enumerate(["ru", "RU", " ru ", "ru-RU", "PT-BR", ""])
    ]
    (tmp_path / "langs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = _numeric_task("langs.jsonl") | {
        "prompt": {"user": "{question}", "languages": {"ru": {"user": "Реши: {question}"}}}
    }
    task = task_at(tmp_path, spec)
    samples = task.load_samples()
    assert [s.language for s in samples] == ["ru", "ru", "ru", "ru-RU", "pt-BR", None]
    assert [task.prompt.for_language(s.language)[1] for s in samples[:5]] == ["Реши: {question}"] * 4 + [
        "{question}"
    ]
    assert [s.id for s in task.load_samples(languages=["ru"])] == ["0", "1", "2"]
    code, out, _ = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 0 and "languages: ru (3), ru-RU (1), pt-BR (1), - (1)" in out, out


# --- lists written into a CSV by pandas ---------------------------------------------------------------


def test_list_columns_written_by_pandas_to_csv_are_alternatives_and_options(tmp_path: Path, capsys) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": [1, 2],
            "question": ["Столица России?", "Capital of France?"],
            "answer": [["Москва", "Moscow"], ["Paris", "Париж"]],
            "choices": [["Berlin", "Москва"], ["Paris", "Rome"]],
            "label": [1, 0],
        }
    )
    frame.to_csv(tmp_path / "frame.csv", index=False)  # cells like "['Москва', 'Moscow']"
    spec = _numeric_task("frame.csv") | {"scorer": "exact"}
    samples = task_at(tmp_path, spec).load_samples()
    assert [s.target for s in samples] == [["Москва", "Moscow"], ["Paris", "Париж"]]
    exact = get_scorer("exact")
    assert exact("Answer: Moscow", samples[0]).value == 1.0
    mc = spec | {"fields": {"id": "id", "target": "label", "choices": "choices"}, "scorer": "choice"}
    assert [(s.choices, s.target) for s in task_at(tmp_path, mc).load_samples()] == [
        (["Berlin", "Москва"], ["B"]),
        (["Paris", "Rome"], ["A"]),
    ]


@pytest.mark.parametrize(
    ("cell", "items"),
    [
        ("['Москва' 'Moscow']", ["Москва", "Moscow"]),  # numpy's array repr: no commas, never 'МоскваMoscow'
        ("['Москва'\n 'Moscow']", ["Москва", "Moscow"]),
        ("[\"don't\", 'x']", ["don't", "x"]),
        ("['a', ['b']]", None),  # nested: not a list of answers
        ("[__import__('os')]", None),  # never evaluated
        ("[1 2]", None),
    ],
)
def test_python_and_numpy_list_texts_are_decoded_item_by_item(cell: str, items: list[str] | None) -> None:
    from evalkit.task.targets import decode_list

    assert decode_list(cell) == items


def test_date_columns_of_a_parquet_file_are_answers_as_written(tmp_path: Path) -> None:
    import datetime

    from tests.userdata import write_parquet

    write_parquet(
        tmp_path / "dates.parquet",
        [
            {"id": "a", "question": "When?", "answer": datetime.datetime(2024, 1, 5)},
            {"id": "b", "question": "When?", "answer": datetime.datetime(2024, 1, 5, 13, 30)},
        ],
    )
    samples = task_at(tmp_path, _numeric_task("dates.parquet") | {"scorer": "exact"}).load_samples()
    assert [s.target for s in samples] == [["2024-01-05"], ["2024-01-05 13:30:00"]]
    assert get_scorer("exact")("Answer: 2024-01-05", samples[0]).value == 1.0


@pytest.mark.parametrize(
    "output",
    ["Answer: A or B", "Answer: A, C", "Answer: **A** and **B**", "Answer: (A) or (B)", "Ответ: А или Б"],
)
def test_an_answer_line_naming_two_options_is_a_hedge_not_the_first_option(output: str) -> None:
    for target in ("A", "B", "C"):
        score = CHOICE(output, Sample(id="x", target=target, choices=CITIES, language="ru"))
        assert (score.value, score.extracted) == (0.0, None), (output, target, score)


@pytest.mark.parametrize(
    ("output", "target"), [("Answer: A, because B is wrong", "A"), ("Answer: A or B\nAnswer: B", "B")]
)
def test_an_answer_that_commits_to_one_option_is_still_read(output: str, target: str) -> None:
    assert CHOICE(output, Sample(id="x", target=target, choices=CITIES, language="en")).value == 1.0


@pytest.mark.parametrize(
    ("output", "language"),
    [
        ("Answer: 5 or 6", "en"),
        ("Ответ: 5 или 6", "ru"),
        ("Answer: **5** or **6**", "en"),
        ("Answer: $5 or $6.", "en"),
        ("Answer: 5 apples or 6 pears", "en"),
        ("Answer: 12 500 or 13 000", "en"),
        ("Respuesta: 5 o 6", "es"),
    ],
)
def test_a_numeric_answer_line_hedging_between_two_numbers_scores_0(output: str, language: str) -> None:
    for target in ("5", "6", "12500", "13000"):
        score = NUMERIC(output, Sample(id="x", target=target, language=language))
        assert (score.value, score.extracted) == (0.0, None), (output, target, score)
    assert "several answers" in NUMERIC(output, Sample(id="x", target="5", language=language)).explanation


@pytest.mark.parametrize(
    ("output", "target"),
    [("Answer: 5 (or 6 if we count him)", "5"), ("Answer: 5 or 5", "5"), ("Answer: 1 000 or more", "1000")],
)
def test_a_numeric_answer_line_with_one_answer_is_still_read(output: str, target: str) -> None:
    assert NUMERIC(output, Sample(id="x", target=target, language="en")).value == 1.0


def test_answer_types_are_matched_without_case_or_spaces() -> None:
    scorer = get_scorer("by_type", {"scorers": {"number": "numeric", "Name": "exact"}, "default": "choice"})
    for kind in ("Number", " number ", "NUMBER"):
        sample = Sample(id="x", target="12 500", metadata={"answer_type": kind}, language="ru")
        assert scorer("Ответ: 12500", sample).value == 1.0, kind
    assert (
        scorer("Answer: Paris", Sample(id="y", target="Paris", metadata={"answer_type": "name"})).value == 1.0
    )


def test_exact_reads_yes_no_types_in_any_case() -> None:
    sample = Sample(id="x", target="Да", metadata={"answer_type": "Yes_No"}, language="ru")
    assert get_scorer("exact")("Answer: yes", sample).value == 1.0


@pytest.mark.parametrize("scorer", ["numeric", "exact", "choice"])
def test_an_empty_answer_list_fails_validate_unless_the_scorer_reads_no_answer(
    tmp_path: Path, capsys, scorer: str
) -> None:
    from tests.userdata import write_parquet

    write_parquet(
        tmp_path / "d.parquet",
        [{"id": "a", "question": "q", "answer": ["5"]}, {"id": "b", "question": "q", "answer": []}],
    )
    spec = _numeric_task("d.parquet") | {"scorer": scorer}
    code, out, _ = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 2 and "sample 'b': no accepted answer (an empty list)" in out, out
    spec["scorer"] = "extractive"
    code, out, _ = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 0, out


def test_integer_labels_written_as_floats_by_pandas_are_indices(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "question": ["q"] * 3,
            "label": [1, None, 2],
            "choices": [["x", "y", "z"]] * 3,
        }
    )
    frame.to_csv(tmp_path / "gaps.csv", index=False)  # label: 1.0, "", 2.0
    spec = _numeric_task("gaps.csv") | {
        "fields": {"id": "id", "target": "label", "choices": "choices"},
        "scorer": "choice",
    }
    with pytest.raises(TaskError, match="row 1: the target is empty") as error:
        task_at(tmp_path, spec).load_samples()
    assert "row 0" not in str(error.value) and "row 2" not in str(error.value)
    frame.dropna().to_csv(tmp_path / "gaps.csv", index=False)
    assert [s.target for s in task_at(tmp_path, spec).load_samples()] == [["B"], ["C"]]


# --- exact: dropping punctuation must not change what an answer says --------------------------------


@pytest.mark.parametrize(
    ("output", "target", "expected"),
    [
        ("Answer: 3.14", "314", 0.0),
        ("Answer: 3.14", "3.14", 1.0),
        ("Answer: -5", "5", 0.0),
        ("Answer: −5", "-5", 1.0),
        ("Answer: C#", "C++", 0.0),
        ("Answer: C", "C++", 0.0),
        ("Answer: C++", "C++", 1.0),
        ("Answer: 12:30", "1230", 0.0),
        ("Answer: 1,5", "15", 0.0),
        ("Answer: 1,000", "1000", 1.0),  # a comma before three digits groups
        ("Answer: Москва.", "Москва", 1.0),
        ("Answer: U.S.A.", "USA", 1.0),
        ("Answer: **«Paris»**!", "Paris", 1.0),
        ("<", "<", 1.0),  # a symbol-only answer is compared as written
        (">", "<", 0.0),
    ],
)
def test_exact_keeps_signs_decimal_marks_and_symbols_that_change_the_answer(
    output: str, target: str, expected: float
) -> None:
    assert get_scorer("exact")(output, Sample(id="x", target=target, language="en")).value == expected


@pytest.mark.parametrize(
    ("choices", "output", "target"),
    [
        (["-5", "5", "10", "-10"], "Answer: -5", "A"),
        (["-5", "5", "10", "-10"], "Answer: 5", "B"),
        (["-5", "5", "10", "-10"], "Answer: −10", "D"),
        (["C++", "C#", "Java"], "Answer: C#", "B"),
    ],
)
def test_option_texts_differing_only_in_a_sign_or_symbol_are_different_options(
    choices: list[str], output: str, target: str
) -> None:
    for letter in "ABCD"[: len(choices)]:
        expected = 1.0 if letter == target else 0.0
        assert CHOICE(output, Sample(id="x", target=letter, choices=choices)).value == expected, (
            output,
            letter,
        )


def test_norwegian_and_yes_no_words_in_task_yaml_stay_text(tmp_path: Path) -> None:
    from evalkit.task.spec import load_task

    (tmp_path / "task.yaml").write_text(
        "name: nb\nsource: {path: d.jsonl, languages: [en, no]}\nfields: {target: answer}\n"
        'prompt: {user: "{question}", languages: {no: {user: "Hva er {question}"}}}\n'
        "scorer: exact\n",
        encoding="utf-8",
    )
    task = load_task(tmp_path / "task.yaml")
    assert task.source is not None and task.source.languages == ["en", "no"]
    assert task.prompt.for_language("no")[1] == "Hva er {question}"
    inline = tmp_path / "inline.yaml"
    inline.write_text(
        "name: yn\nsamples: [{id: a, input: q, target: yes}, {id: b, input: q, target: on}]\nscorer: exact\n"
    )
    assert [s.target for s in load_task(inline).load_samples()] == [["yes"], ["on"]]
    flags = tmp_path / "flags.yaml"
    flags.write_text(
        "name: f\nsamples: [{id: a, input: q, target: x}]\nfields: {target_json_lists: false}\nscorer: exact\n"
    )
    assert load_task(flags).fields.target_json_lists is False


def test_inline_answers_that_yaml_1_1_would_turn_into_other_numbers_stay_as_written(tmp_path: Path) -> None:
    from evalkit.task.spec import load_task

    path = tmp_path / "inline.yaml"
    path.write_text(
        "name: times\nsamples:\n"
        "  - {id: a, input: q, target: 1:30}\n"  # YAML 1.1: 90
        "  - {id: b, input: q, target: 010}\n"  # YAML 1.1: 8
        "  - {id: c, input: q, target: 12.50}\n"
        "  - {id: d, input: q, target: 42}\n"
        "generation: {temperature: 0.5, max_tokens: 64}\nscorer: exact\n",
        encoding="utf-8",
    )
    task = load_task(path)
    assert [s.target for s in task.load_samples()] == [["1:30"], ["010"], ["12.5"], ["42"]]
    assert (task.generation.temperature, task.generation.max_tokens) == (0.5, 64)
