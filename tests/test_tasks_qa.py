"""The multilingual QA tasks: YAMLs validate, samples render in their language, builtin_qa is sound."""

from __future__ import annotations

import json
import string
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from evalkit.common.errors import TaskError
from evalkit.scorers import get_scorer, scorer_names
from evalkit.task import languages as L
from evalkit.task.render import render
from evalkit.task.spec import Sample, Task, load_task

TASKS = Path(__file__).resolve().parent.parent / "tasks"
QA_TASKS = ["mgsm", "xquad", "mkqa", "builtin_qa"]
BUILTIN_ROWS = TASKS / "data" / "builtin_qa.jsonl"
ANSWER_TYPES = {"number", "date", "name", "yes_no", "choice"}


def _needs_scorers(*names: str) -> None:
    """Every scorer these tasks name is registered: a deleted scorer fails here, it does not skip."""
    for name in names:
        assert name in scorer_names(), f"scorer {name!r} is not registered"


def _spec(name: str) -> Task:
    """The task without building its scorer (so rendering is tested even before every scorer exists)."""
    path = TASKS / f"{name}.yaml"
    return Task.model_validate({**yaml.safe_load(path.read_text(encoding="utf-8")), "file": str(path)})


@pytest.fixture(scope="module")
def builtin_rows() -> list[dict]:
    return [json.loads(line) for line in BUILTIN_ROWS.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", QA_TASKS)
def test_task_yaml_validates_with_its_scorer(name: str) -> None:
    _needs_scorers(
        *{"mgsm": ["numeric"], "xquad": ["extractive"], "mkqa": ["extractive"]}.get(
            name, ["numeric", "exact", "choice"]
        )
    )
    task = load_task(TASKS / f"{name}.yaml")
    assert task.family == "qa" and task.description
    assert callable(task.build_scorer())


@pytest.mark.parametrize("name", QA_TASKS)
def test_samples_render_in_their_language(name: str, shared_data: Path) -> None:
    task = _spec(name)
    samples = task.load_samples(limit_per_language=3)
    languages = {s.language for s in samples}
    assert None not in languages
    for sample in samples:
        messages = render(task, sample).messages
        text = messages[-1]["content"]
        assert "{" not in text.replace(sample.fields.get("question", ""), "").replace(
            sample.fields.get("context", ""), ""
        ), "an unfilled template variable"
        assert sample.fields["question"] in text
        # every prompt asks for the final answer after the answer word of the question's language
        # (MKQA's zh_cn/zh_hk/zh_tw use the Chinese word; its languages without a variant, English)
        native = sample.language in task.prompt.languages
        word = L.answer_word(sample.language.split("_")[0]) if native else "Answer"
        assert f"{word}:" in text or f"「{word}:" in text, (sample.id, word)


@pytest.mark.parametrize("name", ["mgsm", "xquad", "builtin_qa"])
def test_every_non_english_language_has_a_native_prompt(name: str, shared_data: Path) -> None:
    task = _spec(name)
    languages = task.source.languages or {s.language for s in task.load_samples()}
    missing = {lang for lang in languages if lang != "en"} - set(task.prompt.languages)
    assert not missing


def test_mkqa_metadata_marks_unanswerable(shared_data: Path) -> None:
    samples = _spec("mkqa").load_samples()
    assert len(samples) == 6 * 26
    flagged = [s for s in samples if s.metadata["unanswerable"]]
    assert len(flagged) == 3 * 26 and all(not s.target for s in flagged)
    assert {s.metadata["answer_type"] for s in samples} >= {"entity", "date", "unanswerable", "long_answer"}


# --- builtin_qa data ------------------------------------------------------------------------------


def test_builtin_qa_covers_the_13_languages(builtin_rows: list[dict]) -> None:
    per_language: dict[str, int] = defaultdict(int)
    for row in builtin_rows:
        per_language[row["language"]] += 1
    assert set(per_language) == set(L.CORE_LANGUAGES)
    assert min(per_language.values()) >= 25
    assert len({row["id"] for row in builtin_rows}) == len(builtin_rows)
    assert all(row["id"].startswith(f"{row['language']}/") for row in builtin_rows)


def test_builtin_qa_rows_are_well_formed(builtin_rows: list[dict]) -> None:
    for row in builtin_rows:
        assert set(row) <= {"id", "language", "question", "target", "answer_type", "choices", "cluster"}, row[
            "id"
        ]
        assert row["answer_type"] in ANSWER_TYPES, row["id"]
        assert row["question"].strip() and row["target"] and all(t.strip() for t in row["target"]), row["id"]
        assert ("choices" in row) == (row["answer_type"] == "choice"), row["id"]
        if row["answer_type"] == "choice":
            letters = string.ascii_uppercase[: len(row["choices"])]
            assert len(row["choices"]) >= 2 and len(row["target"]) == 1 and row["target"][0] in letters, row[
                "id"
            ]
            for letter, option in zip(letters, row["choices"], strict=True):
                assert f"\n{letter}. {option}" in row["question"], row["id"]
        elif row["answer_type"] == "number":
            assert all(t.isdigit() for t in row["target"]), row["id"]
        elif row["answer_type"] == "date":
            assert row["target"][0].isdigit() and 1000 <= int(row["target"][0]) <= 2100, row["id"]
        elif row["answer_type"] == "yes_no":
            canonical = row["target"][-1]
            words = {"yes": L.YES_WORDS, "no": L.NO_WORDS}[canonical][row["language"]]
            assert row["target"][0].lower() in words, row["id"]


def test_builtin_qa_clusters_are_parallel(builtin_rows: list[dict]) -> None:
    clusters: dict[str, list[dict]] = defaultdict(list)
    for row in builtin_rows:
        clusters[row["cluster"]].append(row)
    assert len(clusters) >= 25
    kinds = {rows[0]["answer_type"] for rows in clusters.values()}
    assert kinds == ANSWER_TYPES
    for cluster, rows in clusters.items():
        assert sorted(r["language"] for r in rows) == sorted(L.CORE_LANGUAGES), cluster
        assert len({r["answer_type"] for r in rows}) == 1, cluster
        assert all(r["id"].split("/", 1)[1] == cluster.split("/", 1)[1] for r in rows), cluster
        if rows[0]["answer_type"] in ("number", "choice"):
            assert len({tuple(r["target"]) for r in rows}) == 1, cluster
        elif rows[0]["answer_type"] == "date":  # Thai adds the Buddhist-Era year (CE + 543)
            assert len({r["target"][0] for r in rows}) == 1, cluster
            thai = next(r for r in rows if r["language"] == "th")["target"]
            assert thai == [thai[0], str(int(thai[0]) + 543)], cluster
        else:  # names and yes/no: the English form is accepted in every language
            english = next(r for r in rows if r["language"] == "en")["target"]
            assert all(english[0] in r["target"] for r in rows), cluster


# --- scoring builtin_qa end to end ----------------------------------------------------------------


def _answer(sample: Sample, text: str) -> str:
    return f"Let me think.\n{L.answer_word(sample.language)}: {text}"


def test_builtin_qa_scores_correct_and_wrong_answers() -> None:
    _needs_scorers("numeric", "exact", "choice")
    task = load_task(TASKS / "builtin_qa.yaml")
    scorer = task.build_scorer()
    samples = task.load_samples()
    wrong = {"number": "3", "date": "1900", "name": "Atlantis"}
    failures = []
    for sample in samples:
        kind = sample.metadata["answer_type"]
        if kind == "yes_no":
            bad = (L.NO_WORDS if sample.target[-1] == "yes" else L.YES_WORDS)[sample.language][0]
        elif kind == "choice":
            bad = "B" if sample.target[0] == "A" else "A"
        else:
            bad = wrong[kind]
        if scorer(_answer(sample, sample.target[0]), sample).value != 1.0:
            failures.append(("right answer scored below 1", sample.id))
        if scorer(_answer(sample, bad), sample).value != 0.0:
            failures.append(("wrong answer scored above 0", sample.id))
    assert not failures


def test_by_type_dispatches_on_answer_type() -> None:
    _needs_scorers("numeric", "extractive")
    scorer = get_scorer("by_type", {"scorers": {"number": "numeric"}, "default": {"name": "extractive"}})
    number = Sample(id="n", target=["56"], language="en", metadata={"answer_type": "number"})
    name = Sample(id="m", target=["Tokyo"], language="en", metadata={"answer_type": "name"})
    untyped = Sample(id="u", target=["Tokyo"], language="en")
    assert scorer("Answer: 56.0", number).value == 1.0  # numeric compares values
    assert (
        scorer("Answer: 56.0", name.model_copy(update={"target": ["56"]})).value < 1.0
    )  # extractive does not
    assert scorer("Answer: Tokyo", name).value == 1.0
    assert scorer("Answer: Tokyo", untyped).value == 1.0
    assert scorer.scorer_for(number) is not scorer.scorer_for(name)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"scorers": {"number": 3}}, "must be a name"),
        ({"scorers": ["numeric"]}, "must map"),
        ({"scorers": {"number": "no_such_scorer"}}, "unknown scorer"),
        ({"default": "by_type"}, "cannot be by_type"),
    ],
)
def test_by_type_bad_parameters_are_task_errors(params: dict, problem: str) -> None:
    with pytest.raises(TaskError, match=problem):
        get_scorer("by_type", params, where="tasks/x.yaml: scorer")


# --- real answers on the real sets ----------------------------------------------------------------


def test_mgsm_comma_target_scores_in_every_language(shared_data: Path) -> None:
    _needs_scorers("numeric")
    task = load_task(TASKS / "mgsm.yaml")
    scorer = task.build_scorer()
    cluster = [s for s in task.load_samples() if s.metadata["cluster"] == "mgsm/146"]
    assert len(cluster) == 11
    for sample in cluster:
        assert scorer(f"...\n{L.answer_word(sample.language)}: 2125", sample).value == 1.0, sample.id
        assert scorer(f"...\n{L.answer_word(sample.language)}: 2124", sample).value == 0.0, sample.id


def test_xquad_gold_span_scores_full_marks(shared_data: Path) -> None:
    _needs_scorers("extractive")
    task = load_task(TASKS / "xquad.yaml")
    scorer = task.build_scorer()
    for sample in task.load_samples(limit_per_language=5):
        score = scorer(f"{L.answer_word(sample.language)}: {sample.target[0]}", sample)
        assert score.value == 1.0 and score.metrics.get("em") == 1.0, sample.id
