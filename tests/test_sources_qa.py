"""Readers for MGSM (TSV), XQuAD (SQuAD JSON) and MKQA (gzip JSONL): real files, hub rows, bad input."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from evalkit.common.errors import TaskError
from evalkit.sources import mgsm, mkqa, squad
from evalkit.task.spec import Task

MGSM_LANGUAGES = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]
XQUAD_LANGUAGES = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
COMMA_TARGETS = {"2,125", "114,200", "276,000", "5,600"}


def _task(tmp_path: Path, spec: dict) -> Task:
    """A task from a YAML written next to its data (paths resolve relative to it)."""
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return Task.model_validate({**spec, "file": str(path)})


# --- MGSM -----------------------------------------------------------------------------------------


def test_mgsm_real_files_rows_targets_and_clusters(shared_data: Path) -> None:
    by_index: dict[int, set[str]] = defaultdict(set)
    for language in MGSM_LANGUAGES:
        rows = list(mgsm.read(shared_data / "mgsm" / f"mgsm_{language}.tsv"))
        assert len(rows) == 250, language
        assert [row["index"] for row in rows] == list(range(250))
        raw = {row["answer_raw"] for row in rows}
        assert raw >= COMMA_TARGETS, language
        for row in rows:
            assert row["target"] == [row["answer_raw"].replace(",", "")]
            assert row["target"][0].lstrip("-").isdigit()
            assert row["cluster"] == f"mgsm/{row['index']}"
            by_index[row["index"]].add(row["target"][0])
        assert rows[146]["target"] == ["2125"] and rows[146]["answer_raw"] == "2,125"
    # a parallel set: the same question index has the same answer in every language
    assert all(len(targets) == 1 for targets in by_index.values())


def test_mgsm_task_ids_language_and_cluster(shared_data: Path) -> None:
    from evalkit.task.spec import load_task

    task = load_task(Path(__file__).resolve().parent.parent / "tasks" / "mgsm.yaml")
    samples = task.load_samples()
    assert len(samples) == 250 * 11
    assert len({s.id for s in samples}) == len(samples)
    assert {s.language for s in samples} == set(MGSM_LANGUAGES)
    cluster = [s for s in samples if s.metadata["cluster"] == "mgsm/146"]
    assert sorted(s.id for s in cluster) == sorted(f"{lang}/146" for lang in MGSM_LANGUAGES)
    assert {tuple(s.target) for s in cluster} == {("2125",)}


def test_mgsm_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mgsm_xx.tsv"
    path.write_bytes(b"one plus one?\t2\ntwo plus two?\t4\nbad \xff byte\t5\n")
    with pytest.raises(TaskError) as info:
        list(mgsm.read(path))
    assert str(path) in str(info.value) and "line 3" in str(info.value) and "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("just a question", "found 1"),
        ("q\t1\textra", "found 3"),
        ("q\tseven", "not an integer"),
        ("\t7", "empty"),
    ],
)
def test_mgsm_bad_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "mgsm_xx.tsv"
    path.write_text(f"fine?\t1\n{line}\n", encoding="utf-8")
    with pytest.raises(TaskError) as info:
        list(mgsm.read(path))
    assert info.value.where == str(path)
    assert "line 2" in info.value.message and problem in info.value.message


def test_mgsm_bad_file_through_a_task_is_one_task_error(tmp_path: Path) -> None:
    (tmp_path / "mgsm_en.tsv").write_text("q1\t1\nq2\t2\t3\n", encoding="utf-8")
    task = _task(
        tmp_path,
        {"name": "t", "source": {"path": "mgsm_{language}.tsv", "format": "mgsm_tsv", "languages": ["en"]}},
    )
    with pytest.raises(TaskError, match=r"mgsm_en\.tsv.*line 2"):
        task.load_samples()


def test_mgsm_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_bytes(b"a?\t1\r\nb?\t2,000")
    assert [row["target"] for row in mgsm.read(path)] == [["1"], ["2000"]]


def test_mgsm_hub_rows_get_the_local_columns() -> None:
    rows = [
        {"question": "q0", "answer": None, "answer_number": 18, "equation_solution": None},
        {"question": "q1", "answer": None, "answer_number": 3.0, "equation_solution": None},
    ]
    adapted = list(mgsm.from_hub(rows, language="de"))
    assert [r["target"] for r in adapted] == [["18"], ["3"]]
    assert [r["cluster"] for r in adapted] == ["mgsm/0", "mgsm/1"]


# --- XQuAD / SQuAD --------------------------------------------------------------------------------


def test_xquad_real_files_alignment_ids_and_clusters(shared_data: Path) -> None:
    reference: dict[str, str] | None = None
    for language in XQUAD_LANGUAGES:
        rows = list(squad.read(shared_data / "xquad" / f"xquad.{language}.json"))
        assert len(rows) == 1190, language
        assert len({row["id"] for row in rows}) == 1190
        assert len({row["cluster"] for row in rows}) == 240
        for row in rows:
            assert len(row["answers"]) == 1 and len(row["answer_starts"]) == 1
            start, text = row["answer_starts"][0], row["answers"][0]
            assert row["context"][start : start + len(text)] == text
        clusters = {row["id"]: row["cluster"] for row in rows}
        reference = reference or clusters
        assert clusters == reference, f"{language}: question ids or paragraph clusters differ from the others"


def test_xquad_task_ids_prefix_language(shared_data: Path) -> None:
    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "tasks" / "xquad.yaml").read_text())
    spec["source"]["languages"] = ["en", "ru"]
    spec["file"] = str(Path(__file__).resolve().parent.parent / "tasks" / "xquad.yaml")
    samples = Task.model_validate(spec).load_samples()
    assert len(samples) == 2 * 1190 and len({s.id for s in samples}) == 2 * 1190
    first = {s.language: s for s in samples if s.id.endswith("/56beb4343aeaaa14008c925b")}
    assert set(first) == {"en", "ru"} and first["ru"].id == "ru/56beb4343aeaaa14008c925b"
    assert first["en"].metadata["cluster"] == first["ru"].metadata["cluster"] == "xquad/Super_Bowl_50/0"
    assert first["en"].target == ["308"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"version": "1.1"}', "`data` list"),
        ('{"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}', "`context`"),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": []}]}]}]}',
            "no answers",
        ),
    ],
)
def test_squad_bad_structure_is_a_task_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError, match=problem) as info:
        list(squad.read(path))
    assert str(path) in str(info.value)


def test_squad_unknown_option_is_a_task_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(TaskError, match="cluster_prfix"):
        list(squad.read(path, cluster_prfix="x"))


def test_squad_hub_rows_group_paragraphs_by_context() -> None:
    rows = [
        {"id": "a", "context": "P1", "question": "q", "answers": {"text": ["x"], "answer_start": [0]}},
        {"id": "b", "context": "P1", "question": "q", "answers": {"text": ["y"], "answer_start": [1]}},
        {"id": "c", "context": "P2", "question": "q", "answers": {"text": ["z"], "answer_start": [0]}},
    ]
    adapted = list(squad.from_hub(rows, language="en"))
    assert [r["cluster"] for r in adapted] == ["xquad/0", "xquad/0", "xquad/1"]
    assert adapted[1]["answers"] == ["y"] and adapted[1]["answer_starts"] == [1]


# --- MKQA -----------------------------------------------------------------------------------------


def test_mkqa_fixture_rows(shared_data: Path) -> None:
    rows = list(mkqa.read(shared_data / "mkqa" / "test_mkqa.jsonl.gz"))
    assert len(rows) == 6 * 26
    assert len({row["id"] for row in rows}) == len(rows)
    assert len({row["language"] for row in rows}) == 26
    by_id = {row["id"]: row for row in rows}
    gladiator = by_id["en/7631360939705650347"]
    assert (
        gladiator["target"] == ["Ridley Scott", "Sir Ridley Scott"] and gladiator["answer_type"] == "entity"
    )
    assert by_id["ru/7631360939705650347"]["target"][0] == "Ридли Скотт"
    assert by_id["zh_cn/7631360939705650347"]["target"] == ["雷德利·斯科特"]
    assert by_id["en/36228854473990432"]["target"][:2] == ["2017", "2017-05-18"]
    unanswerable = {row["example_id"] for row in rows if row["unanswerable"]}
    assert unanswerable == {"7721692200040168186", "2961317153244610375", "2904274678882358283"}
    assert all(row["target"] == [] for row in rows if row["unanswerable"])
    assert all(row["cluster"] == f"mkqa/{row['example_id']}" for row in rows)


def test_mkqa_options_filter_languages_and_unanswerable(shared_data: Path) -> None:
    path = shared_data / "mkqa" / "test_mkqa.jsonl.gz"
    rows = list(mkqa.read(path, languages=["ru", "en"], answerable_only=True))
    assert len(rows) == 3 * 2
    assert [row["language"] for row in rows[:2]] == ["ru", "en"]
    with pytest.raises(TaskError, match="unknown option"):
        list(mkqa.read(path, language=["en"]))


def test_mkqa_hub_rows_match_the_file(shared_data: Path) -> None:
    with gzip.open(shared_data / "mkqa" / "test_mkqa.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    hub_rows = [_as_hub_row(record) for record in records]
    from_file = list(mkqa.read(shared_data / "mkqa" / "test_mkqa.jsonl.gz", languages=["en", "ru", "ja"]))
    from_hub = list(mkqa.from_hub(hub_rows, languages=["en", "ru", "ja"]))
    assert from_hub == from_file
    assert {row["language"] for row in mkqa.from_hub(hub_rows, language="ru")} == {"ru"}


def _as_hub_row(record: dict) -> dict:
    """The apple/mkqa layout: answers column-wise per language, `type` as a class index."""
    answers = {}
    for language, items in record["answers"].items():
        answers[language] = {
            "type": [mkqa.ANSWER_TYPES.index(item["type"]) for item in items],
            "entity": [item.get("entity") for item in items],
            "text": [item.get("text") for item in items],
            "aliases": [item.get("aliases", []) for item in items],
        }
    return {
        "example_id": str(record["example_id"]),
        "query": record["query"],
        "queries": record["queries"],
        "answers": answers,
    }


def test_mkqa_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl.gz"
    good = {
        "example_id": 1,
        "query": "q",
        "queries": {"en": "q"},
        "answers": {"en": [{"type": "number", "text": "3"}]},
    }
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(good) + "\n{broken\n")
    with pytest.raises(TaskError) as info:
        list(mkqa.read(path))
    assert f"{path}: line 2" in str(info.value)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"example_id": 1}) + "\n")
    with pytest.raises(TaskError, match="needs `example_id`, `queries` and `answers`"):
        list(mkqa.read(path))


# --- shared loader behaviour used by these tasks --------------------------------------------------


def test_data_dir_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "elsewhere"
    (data / "mgsm").mkdir(parents=True)
    (data / "mgsm" / "mgsm_en.tsv").write_text("q?\t7\n", encoding="utf-8")
    (tmp_path / "default" / "mgsm").mkdir(parents=True)
    (tmp_path / "default" / "mgsm" / "mgsm_en.tsv").write_text("q?\t1\nr?\t2\n", encoding="utf-8")
    spec = {
        "name": "t",
        "source": {
            "path": "${EVALKIT_DATA_DIR:-default}/mgsm/mgsm_{language}.tsv",
            "format": "mgsm_tsv",
            "languages": ["en"],
        },
        "prompt": {"user": "{question}"},
    }
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    assert [s.target for s in _task(tmp_path, spec).load_samples()] == [["1"], ["2"]]
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(data))
    assert [s.target for s in _task(tmp_path, spec).load_samples()] == [["7"]]
    spec["source"]["path"] = "${EVALKIT_NO_SUCH_VARIABLE}/mgsm_{language}.tsv"
    with pytest.raises(TaskError, match="EVALKIT_NO_SUCH_VARIABLE is not set"):
        _task(tmp_path, spec).load_samples()
