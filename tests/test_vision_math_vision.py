"""MATH-Vision: the local reader on the real files, the hub adapter, the task definition, bad rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from evalkit.common.errors import TaskError
from evalkit.sources import math_vision
from evalkit.task.render import render
from evalkit.task.spec import load_task, tasks_dir


def test_real_testmini_rows(shared_data: Path) -> None:
    rows = list(math_vision.read(shared_data / "math_vision" / "data" / "testmini.jsonl"))
    assert len(rows) == 304 and len({row["id"] for row in rows}) == 304
    assert Counter(row["answer_type"] for row in rows) == {"choice": 190, "number": 112, "text": 2}
    assert set(Counter(row["subject"] for row in rows).values()) == {19}
    for row in rows:
        assert Path(row["image"]).is_absolute() and Path(row["image"]).is_file()
        if row["answer_type"] == "choice":
            assert len(row["options"]) == 5 and row["answer"] in "ABCDE"
            assert row["options_block"].startswith("Options:\nA. ")
        else:
            assert row["options"] == [] and row["options_block"] == ""
    assert {row["answer"] for row in rows if row["answer_type"] == "text"} == {"C", "(3,-4)"}


def test_real_images_decode(shared_data: Path) -> None:
    rows = list(math_vision.read(shared_data / "math_vision"))  # the folder works as well as the file
    for row in rows:
        with Image.open(row["image"]) as image:
            assert image.format == "JPEG" and min(image.size) > 0


def test_task_loads_and_renders(shared_data: Path) -> None:
    task = load_task(tasks_dir() / "math_vision.yaml")
    samples = {sample.id: sample for sample in task.load_samples()}
    assert len(samples) == 304
    choice = next(s for s in samples.values() if s.metadata["answer_type"] == "choice")
    assert choice.choices and len(choice.target) == 1 and choice.target[0] in "ABCDE"
    rendered = render(task, choice)
    text = rendered.messages[-1]["content"][0]["text"]
    assert "Options:\nA. " in text and "letter of the correct option" in text
    assert rendered.images[0].mime == "image/jpeg" and rendered.images[0].ref == choice.images[0]
    scorer = task.build_scorer()
    assert scorer(f"Reasoning...\nAnswer: {choice.target[0]}", choice).value == 1.0
    number = samples["5"]
    assert number.target == ["61"] and number.metadata == {
        "answer_type": "number",
        "subject": "arithmetic",
        "level": 2,
    }
    assert scorer("Answer: 61", number).value == 1.0 and scorer("Answer: 60", number).value == 0.0


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_dataset(tmp_path: Path, rows: list[dict | str]) -> Path:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "images" / "1.jpg")
    (tmp_path / "data").mkdir()
    return write_jsonl(tmp_path / "data" / "testmini.jsonl", rows)


ROW = {
    "id": "1",
    "question": "Q <image1>",
    "options": [],
    "answer": "4.8",
    "level": 1,
    "subject": "s",
    "image": "images/1.jpg",
}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {**ROW, "options": ["1", "2", "3"], "answer": "E"},
            "answer 'E' is not one of the option letters ABC",
        ),
        ({**ROW, "image": "images/missing.jpg"}, "image file not found: .*missing.jpg"),
        ({**ROW, "answer": ""}, "missing 'answer'"),
        ('{"id": "1", "question": ', "not valid JSON"),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, row: dict | str, message: str) -> None:
    file = make_dataset(tmp_path, [ROW, row])
    with pytest.raises(TaskError, match=message) as info:
        list(math_vision.read(file))
    assert info.value.where == f"{file}: line 2"


def test_image_root_option(tmp_path: Path) -> None:
    make_dataset(tmp_path, [ROW])
    flat = write_jsonl(tmp_path / "elsewhere.jsonl", [ROW])
    (row,) = math_vision.read(flat, image_root=str(tmp_path))
    assert row["image"] == str((tmp_path / "images" / "1.jpg").resolve())
    assert row["answer_type"] == "number" and row["instruction"] == "Answer with a number."


def test_hub_rows_get_the_same_columns() -> None:
    picture = Image.new("RGB", (8, 8))
    hub_row = {
        **ROW,
        "options": ["a", "b", "c", "d", "e"],
        "answer": "B",
        "image": "images/1.jpg",
        "decoded_image": picture,
    }
    (row,) = math_vision.from_hub([hub_row])
    assert row["image"] is picture and "decoded_image" not in row
    assert row["answer_type"] == "choice" and row["options_block"].splitlines()[2] == "B. b"
