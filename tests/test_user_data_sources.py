"""Task files written the way users write them: every way a data cell can hold an answer is read right
or refused by row, through the Python API and `evalkit validate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.common.errors import TaskError
from evalkit.scorers import get_scorer
from evalkit.task.spec import Sample, Task
from tests.userdata import cli, task_at, write_csv, write_disk, write_jsonl, write_parquet, write_task

CAPITALS = [
    {
        "id": "ru1",
        "question": "Столица России?",
        "language": "ru",
        "choices": ["Париж", "Москва", "Рим"],
        "label": 1,
    },
    {
        "id": "kk1",
        "question": "Қазақстанның астанасы?",
        "language": "kk",
        "choices": ["Алматы", "Шымкент", "Астана"],
        "label": 2,
    },
    {
        "id": "zh1",
        "question": "日本的首都是哪里？",
        "language": "zh",
        "choices": ["东京", "大阪"],
        "label": 0,
    },
    {
        "id": "th1",
        "question": "เมืองหลวงของไทยคืออะไร",
        "language": "th",
        "choices": ["เชียงใหม่", "กรุงเทพฯ"],
        "label": 1,
    },
]
CHOICE_SPEC = {
    "name": "capitals_mc",
    "source": {"path": "data.parquet"},
    "fields": {"id": "id", "target": "label", "choices": "choices"},
    "prompt": {"user": "{question}\n{choices}"},
    "scorer": "choice",
}


def _score(task: Task, outputs: dict[str, str]) -> dict[str, float]:
    scorer = task.build_scorer()
    return {s.id: scorer(outputs[s.id], s).value for s in task.load_samples()}


# --- 1. multiple-choice labels --------------------------------------------------------------------


def test_integer_labels_in_a_parquet_list_column_are_0_based_option_indices(tmp_path: Path) -> None:
    write_parquet(tmp_path / "data.parquet", CAPITALS)
    task = task_at(tmp_path, CHOICE_SPEC)
    assert {s.id: s.target for s in task.load_samples()} == {
        "ru1": ["B"],
        "kk1": ["C"],
        "zh1": ["A"],
        "th1": ["B"],
    }
    outputs = {"ru1": "Ответ: B", "kk1": "Жауабы: C", "zh1": "答案：A", "th1": "คำตอบ: ข"}
    assert _score(task, outputs) == dict.fromkeys(outputs, 1.0)
    wrong = {"ru1": "Ответ: A", "kk1": "Жауабы: B", "zh1": "答案：B", "th1": "คำตอบ: ก"}
    assert _score(task, wrong) == dict.fromkeys(wrong, 0.0)


def test_1_based_labels_in_a_semicolon_cp1251_csv_with_json_list_choices(tmp_path: Path, capsys) -> None:
    rows = [
        {
            "id": 1,
            "вопрос": "Столица Франции?",
            "варианты": json.dumps(["Берлин", "Париж"], ensure_ascii=False),
            "ответ": "2",
        },
        {
            "id": 2,
            "вопрос": "Столица Италии?",
            "варианты": json.dumps(["Рим", "Милан"], ensure_ascii=False),
            "ответ": "1",
        },
    ]
    write_csv(tmp_path / "data.csv", rows, sep=";", encoding="cp1251")
    spec = {
        "name": "excel_mc",
        "source": {"path": "data.csv", "options": {"delimiter": ";", "encoding": "cp1251"}},
        "fields": {"id": "id", "target": "ответ", "choices": "варианты", "index_base": 1, "language": None},
        "prompt": {"user": "{вопрос}\n{choices}"},
        "scorer": "choice",
    }
    path = write_task(tmp_path, spec)
    code, out, err = cli(["validate", str(path)], capsys)
    assert code == 0, err
    assert "label '2' → option B ('Париж')" in out and "self-check: 2/2" in out
    task = task_at(tmp_path, spec)
    assert [s.target for s in task.load_samples()] == [["B"], ["A"]]


def test_letters_and_option_texts_and_option_columns_are_labels_too(tmp_path: Path) -> None:
    rows = [
        {
            "q": "Capitale de la France ?",
            "A": "Lyon",
            "B": "Paris",
            "C": "Nice",
            "answer": "b",
            "language": "fr",
        },
        {
            "q": "Hauptstadt von Deutschland?",
            "A": "Bonn",
            "B": "Köln",
            "C": "Berlin",
            "answer": "(C)",
            "language": "de",
        },
        {
            "q": "Столиця України?",
            "A": "Київ",
            "B": "Львів",
            "C": "Одеса",
            "answer": "Київ",
            "language": "uk",
        },
    ]
    write_csv(tmp_path / "mc.csv", rows)
    spec = {
        "name": "columns_mc",
        "source": {"path": "mc.csv"},
        "fields": {"target": "answer", "choices": ["A", "B", "C"]},
        "prompt": {"user": "{q}\n{choices}"},
        "scorer": "choice",
    }
    task = task_at(tmp_path, spec)
    samples = task.load_samples()
    assert [s.target for s in samples] == [["B"], ["C"], ["A"]]
    assert [s.id for s in samples] == ["0", "1", "2"]  # no id column: the row numbers
    assert _score(task, {"0": "Réponse : B", "1": "Antwort: C", "2": "Відповідь: А"}) == {
        "0": 1.0,
        "1": 1.0,
        "2": 1.0,
    }


@pytest.mark.parametrize(
    ("choices", "label", "fix", "expected"),
    [
        (["1", "2", "3"], 1, "index", "B"),  # index 1 is B, but the text "1" is option A
        (["B", "A", "C"], "A", "text", "B"),  # the letter A, or the option whose text is "A"
    ],
)
def test_an_ambiguous_label_is_refused_naming_the_row_until_the_reading_is_declared(
    tmp_path: Path, capsys, choices: list[str], label: object, fix: str, expected: str
) -> None:
    write_jsonl(
        tmp_path / "mc.jsonl",
        [
            {"id": "a", "q": "?", "opts": ["x", "y", "z"], "label": 0 if fix == "index" else "y"},
            {"id": "b", "q": "?", "opts": choices, "label": label},
        ],
    )
    spec = {
        "name": "ambiguous",
        "source": {"path": "mc.jsonl"},
        "fields": {"id": "id", "target": "label", "choices": "opts"},
        "prompt": {"user": "{q}"},
        "scorer": "choice",
    }
    path = write_task(tmp_path, spec)
    code, _, err = cli(["validate", str(path)], capsys)
    assert (
        code == 2
        and "row 1" in err
        and "ambiguous" in err
        and "choice_target" in err
        and "Traceback" not in err
    )
    spec["fields"]["choice_target"] = fix
    assert [s.target for s in task_at(tmp_path, spec).load_samples()][1] == [expected]


def test_a_label_outside_the_options_is_refused_naming_the_row(tmp_path: Path) -> None:
    write_parquet(tmp_path / "data.parquet", [*CAPITALS[:2], {**CAPITALS[2], "label": 5}])
    with pytest.raises(TaskError) as info:
        task_at(tmp_path, CHOICE_SPEC).load_samples()
    assert "row 2" in str(info.value) and "label 5" in str(info.value) and "data.parquet" in str(info.value)


def test_python_api_integer_target_with_choices_is_an_index() -> None:
    sample = Sample(id="1", target=1, choices=["Paris", "Москва"], language="ru")
    assert sample.target == ["B"]
    assert get_scorer("choice")("Ответ: B", sample).value == 1.0


# --- 2. several accepted answers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "fields"),
    [
        ("Москва|Moscow", {"target_separator": "|"}),
        ('["Москва", "Moscow"]', {}),
    ],
)
def test_several_answers_in_one_csv_cell(tmp_path: Path, capsys, cell: str, fields: dict) -> None:
    write_csv(
        tmp_path / "qa.csv", [{"id": "q1", "question": "Столица России?", "answer": cell, "language": "ru"}]
    )
    spec = {
        "name": "alts",
        "source": {"path": "qa.csv"},
        "fields": {"id": "id", "target": "answer", **fields},
        "prompt": {"user": "{question}"},
        "scorer": "exact",
    }
    task = task_at(tmp_path, spec)
    (sample,) = task.load_samples()
    assert sample.target == ["Москва", "Moscow"]
    scorer = task.build_scorer()
    assert scorer("Ответ: Moscow", sample).value == 1.0 and scorer("Ответ: Москва", sample).value == 1.0
    code, out, _ = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 0 and "→ 2 alternatives" in out


@pytest.mark.parametrize("writer", [write_parquet, write_jsonl, write_disk])
def test_list_valued_columns_are_alternatives_in_every_format(tmp_path: Path, writer) -> None:
    rows = [
        {
            "id": "de1",
            "question": "Hauptstadt von Bayern?",
            "answer": ["München", "Munich"],
            "language": "de",
        },
        {
            "id": "fr1",
            "question": "Capitale de la Belgique ?",
            "answer": ["Bruxelles", "Brussels"],
            "language": "fr",
        },
    ]
    name = {write_parquet: "qa.parquet", write_jsonl: "qa.jsonl", write_disk: "qa_folder"}[writer]
    writer(tmp_path / name, rows)
    task = task_at(
        tmp_path,
        {
            "name": "lists",
            "source": {"path": name},
            "fields": {"id": "id", "target": "answer"},
            "prompt": {"user": "{question}"},
            "scorer": "exact",
        },
    )
    samples = task.load_samples()
    assert [s.target for s in samples] == [["München", "Munich"], ["Bruxelles", "Brussels"]]
    assert task.build_scorer()("Antwort: Munich", samples[0]).value == 1.0


# --- 7. ids, null targets, template variables -----------------------------------------------------


def _qa_csv(tmp_path: Path, rows: list[dict]) -> Path:
    write_csv(tmp_path / "qa.csv", rows)
    return write_task(
        tmp_path,
        {
            "name": "qa",
            "source": {"path": "qa.csv"},
            "fields": {"id": "id", "target": "answer"},
            "prompt": {"user": "{question}"},
            "scorer": "numeric",
        },
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [
                {"id": "a", "question": "1+1", "answer": "2"},
                {"id": "", "question": "2+2", "answer": "4"},
                {"id": "", "question": "3+3", "answer": "6"},
            ],
            ["row 1", "row 2", "id column 'id' is empty"],
        ),
        (
            [
                {"id": "a", "question": "1+1", "answer": "2"},
                {"id": "b", "question": "2+2", "answer": "4"},
                {"id": "a", "question": "3+3", "answer": "6"},
            ],
            ["id 'a' repeats sample 0", "unique"],
        ),
        (
            [{"id": "a", "question": "1+1", "answer": "2"}, {"id": "b", "question": "2+2", "answer": ""}],
            ["row 1", "target is empty"],
        ),
        ([{"id": "a", "question": "", "answer": "2"}], ["sample 'a'", "{missing} is not in the data"]),
    ],
)
def test_missing_or_repeated_ids_null_targets_and_variables_name_the_rows(
    tmp_path: Path, capsys, rows: list[dict], expected: list[str]
) -> None:
    path = _qa_csv(tmp_path, rows)
    if not rows[-1]["question"]:  # an empty CSV cell in a template variable: the prompt would be empty
        (tmp_path / "qa.csv").write_text("id,question,answer\na,,2\n", encoding="utf-8")
        path.write_text(path.read_text().replace("{question}", "{question}{missing}"), encoding="utf-8")
    code, _, err = cli(["validate", str(path)], capsys)
    assert code == 2 and "Traceback" not in err and str(tmp_path) in err
    assert len(err.strip().splitlines()) == 1 and (rows[-1]["question"] == "" or "qa.csv" in err)
    for text in expected:
        assert text in err


def test_jsonl_null_target_and_null_or_missing_template_variables_are_refused(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", [{"id": 1, "question": "q", "answer": None}])
    spec = {
        "name": "q",
        "source": {"path": "qa.jsonl"},
        "fields": {"id": "id", "target": "answer"},
        "prompt": {"user": "{question}"},
    }
    with pytest.raises(TaskError, match=r"row 0: the target is empty \(null\)"):
        task_at(tmp_path, spec).load_samples()
    write_jsonl(tmp_path / "qa.jsonl", [{"id": 1, "question": None, "answer": "x"}, {"id": 2, "answer": "y"}])
    with pytest.raises(TaskError) as info:
        task_at(tmp_path, spec).load_samples()
    assert "sample '1': template variable {question} is null" in str(info.value)
    assert "sample '2': template variable {question} is not in the data" in str(info.value)


def test_row_number_ids_never_collide_across_languages(tmp_path: Path) -> None:
    for lang in ("ru", "uk"):
        write_csv(
            tmp_path / f"qa_{lang}.csv",
            [{"question": "1+1", "answer": "2"}, {"question": "2+2", "answer": "4"}],
        )
    task = task_at(
        tmp_path,
        {
            "name": "q",
            "source": {"path": "qa_{language}.csv", "languages": ["ru", "uk"]},
            "prompt": {"user": "{question}"},
            "fields": {"target": "answer"},
        },
    )
    assert [s.id for s in task.load_samples()] == ["ru/0", "ru/1", "uk/0", "uk/1"]


def test_inline_samples_with_repeated_ids_are_refused() -> None:
    task = Task(
        name="t", samples=[Sample(id="x", input="a", target="1"), Sample(id="x", input="b", target="2")]
    )
    with pytest.raises(TaskError, match="id 'x' repeats sample 0"):
        task.load_samples()
    with pytest.raises(ValueError, match="null"):
        Sample(id="y", input="c", target=[None])


# --- 9 and hostile files: formats, options, malformed and huge lines ------------------------------


def test_semicolon_csv_without_the_delimiter_option_says_which_option_to_set(tmp_path: Path, capsys) -> None:
    rows = [{"id": "1", "вопрос": "Сколько будет 2+2?", "ответ": "4"}]
    write_csv(tmp_path / "qa.csv", rows, sep=";", encoding="cp1251")
    spec = {
        "name": "excel",
        "source": {"path": "qa.csv"},
        "fields": {"id": "id", "target": "ответ"},
        "prompt": {"user": "{вопрос}"},
        "scorer": "numeric",
    }
    code, _, err = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 2 and "encoding" in err and "cp1251" in err and "line 1" in err and "Traceback" not in err
    spec["source"]["options"] = {"encoding": "cp1251"}
    code, _, err = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 2 and "delimiter: ';'" in err
    spec["source"]["options"] = {"encoding": "cp1251", "sep": ";"}
    code, out, err = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 0, err
    assert "Сколько будет 2+2?" in out and "self-check: 1/1" in out


@pytest.mark.parametrize(
    ("fmt", "file", "options", "named"),
    [
        ("csv", "qa.csv", {"sepp": ";"}, "sepp"),
        ("jsonl", "qa.jsonl", {"delimiter": ","}, "delimiter"),
        ("mgsm_tsv", "qa.tsv", {"languages": ["ru"]}, "languages"),
        ("math_vision", "qa.jsonl", {"images": "x"}, "images"),
    ],
)
def test_unknown_source_options_are_refused_by_name(
    tmp_path: Path, capsys, fmt, file, options, named
) -> None:
    (tmp_path / file).write_text("question\tanswer\n", encoding="utf-8")
    spec = {
        "name": "x",
        "source": {"path": file, "format": fmt, "options": options},
        "prompt": {"user": "{question}"},
    }
    code, _, err = cli(["validate", str(write_task(tmp_path, spec))], capsys)
    assert code == 2 and "option" in err and named in err and "Traceback" not in err


def test_a_malformed_json_line_is_one_error_naming_file_and_line(tmp_path: Path, capsys) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text(
        '{"id": 1, "question": "a", "target": "1"}\n\n{"id": 2, "question": "b", "target": \n',
        encoding="utf-8",
    )
    path = write_task(
        tmp_path, {"name": "j", "source": {"path": "qa.jsonl"}, "prompt": {"user": "{question}"}}
    )
    code, _, err = cli(["validate", str(path)], capsys)
    assert code == 2 and f"{data}: line 3" in err and "not valid JSON" in err
    assert "DatasetGenerationError" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_huge_line_is_refused_naming_file_and_line(tmp_path: Path, capsys, suffix: str) -> None:
    data = tmp_path / f"qa.{suffix}"
    first = '{"id": 1, "question": "a", "target": "1"}\n' if suffix == "jsonl" else "id,question,target\n"
    with open(data, "w", encoding="utf-8") as handle:  # 65 MiB on one line, past the 64 MiB maximum
        handle.write(first)
        handle.write("x" * (65 * 1024 * 1024))
        handle.write("\n")
    path = write_task(
        tmp_path, {"name": "h", "source": {"path": data.name}, "prompt": {"user": "{question}"}}
    )
    code, _, err = cli(["validate", str(path)], capsys)
    assert code == 2 and f"{data}: line 2" in err and "longer than the maximum" in err
    assert len(err.strip().splitlines()) == 1


def test_max_line_bytes_is_an_option(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", [{"id": 1, "question": "a" * 200, "target": "1"}])
    spec = {
        "name": "h",
        "source": {"path": "qa.jsonl", "options": {"max_line_bytes": 100}},
        "prompt": {"user": "{question}"},
    }
    with pytest.raises(TaskError, match="line 1: line is longer than the maximum of 100 bytes"):
        task_at(tmp_path, spec).load_samples()


def test_a_save_to_disk_dataset_dict_needs_its_split_named(tmp_path: Path) -> None:
    import datasets

    rows = [{"id": "1", "question": "Сколько будет 2+2?", "answer": "4", "language": "ru"}]
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows)}
    ).save_to_disk(str(tmp_path / "saved"))
    spec = {
        "name": "d",
        "source": {"path": "saved"},
        "fields": {"id": "id", "target": "answer"},
        "prompt": {"user": "{question}"},
        "scorer": "numeric",
    }
    with pytest.raises(TaskError, match="split"):
        task_at(tmp_path, spec).load_samples()
    spec["source"]["options"] = {"split": "test"}
    assert [s.target for s in task_at(tmp_path, spec).load_samples()] == [["4"]]


def test_a_task_object_reads_its_data_again_after_the_file_changed(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "qa.csv", [{"id": "a", "q": "1+1", "answer": "2"}])
    task = task_at(
        tmp_path,
        {
            "name": "q",
            "source": {"path": "qa.csv"},
            "fields": {"id": "id", "target": "answer"},
            "prompt": {"user": "{q}"},
        },
    )
    before = task.fingerprint()
    assert [s.target for s in task.load_samples()] == [["2"]]
    data.write_text("id,q,answer\na,1+1,3\n", encoding="utf-8")
    assert [s.target for s in task.load_samples()] == [["3"]]
    assert task.fingerprint() != before


def test_a_gzipped_json_array_and_a_bom_csv_are_read(tmp_path: Path) -> None:
    import gzip

    rows = [{"id": "zh1", "question": "二加二等于几？", "target": "4", "language": "zh"}]
    (tmp_path / "qa.json.gz").write_bytes(gzip.compress(json.dumps(rows, ensure_ascii=False).encode()))
    task = task_at(
        tmp_path,
        {
            "name": "g",
            "source": {"path": "qa.json.gz"},
            "fields": {"id": "id"},
            "prompt": {"user": "{question}"},
            "scorer": "numeric",
        },
    )
    assert [s.target for s in task.load_samples()] == [["4"]]
    (tmp_path / "bom.csv").write_bytes("\ufeffid,question,target\nth1,สองบวกสอง,4\n".encode())
    task = task_at(
        tmp_path,
        {
            "name": "b",
            "source": {"path": "bom.csv"},
            "fields": {"id": "id"},
            "prompt": {"user": "{question}"},
            "scorer": "numeric",
        },
    )
    assert [(s.id, s.fields["question"]) for s in task.load_samples()] == [("th1", "สองบวกสอง")]
