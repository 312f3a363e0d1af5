"""`qa_blocks`: added as one file (evalkit/sources/qa_blocks.py) and found by its format name."""

from __future__ import annotations

import pytest

from evalkit.common.errors import TaskError
from evalkit.task.spec import load_task

QUIZ = "Q: Capital of France?\nA: Paris | Paris, France\n\n\nq: 2 + 2?\na: 4\n"


def _task(tmp_path, text: str, encoding: str = "utf-8"):
    (tmp_path / "quiz.txt").write_bytes(text.encode(encoding))
    options = "" if encoding == "utf-8" else f"\n  options: {{encoding: {encoding}}}"
    (tmp_path / "quiz.yaml").write_text(
        f"name: quiz\nsource:\n  path: quiz.txt\n  format: qa_blocks{options}\nfields: {{id: id, target: target}}\nprompt: {{user: '{{question}}'}}\nscorer: contains\n",
        encoding="utf-8",
    )
    return load_task(tmp_path / "quiz.yaml")


def test_blocks_become_samples_with_several_answers(tmp_path) -> None:
    samples = _task(tmp_path, QUIZ).load_samples()
    assert [(s.id, s.fields["question"], s.target) for s in samples] == [
        ("q1", "Capital of France?", ["Paris", "Paris, France"]),
        ("q2", "2 + 2?", ["4"]),
    ]


def test_a_cp1251_file_reads_with_its_encoding_option(tmp_path) -> None:
    samples = _task(tmp_path, "Q: Столица России?\nA: Москва\n", encoding="cp1251").load_samples()
    assert samples[0].target == ["Москва"]


@pytest.mark.parametrize(
    ("text", "line"), [("Q: only a question\n", "line 1"), ("Q: x\nA: y\n\nB: z\n", "line 4")]
)
def test_a_malformed_block_names_its_line(tmp_path, text, line) -> None:
    with pytest.raises(TaskError, match=line):
        _task(tmp_path, text).load_samples()
