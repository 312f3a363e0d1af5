"""ChartQA: the task's field mapping on rows in the hub's schema (image, query, label, human_or_machine)."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from evalkit.task.render import render
from evalkit.task.spec import Task, load_task, tasks_dir

ROWS = [
    ("What is the value of the tallest bar?", ["54.3"], 0, "red"),
    ("Which country has the lowest share?", ["Canada"], 1, "blue"),
    ("What is the difference between 2019 and 2020?", ["1,200"], 1, "green"),
]


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def with_local_file(path: Path) -> Task:
    task = load_task(tasks_dir() / "chartqa.yaml")
    assert (
        task.source is not None and task.source.hub == "HuggingFaceM4/ChartQA" and task.source.split == "test"
    )
    return task.model_copy(update={"source": task.source.model_copy(update={"path": str(path)})})


def hub_schema_parquet(path: Path) -> Path:
    """As `datasets` saves the hub set: image as an Image feature, human_or_machine a ClassLabel."""
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "query": datasets.Value("string"),
            "label": datasets.Sequence(datasets.Value("string")),
            "human_or_machine": datasets.ClassLabel(names=["human", "machine"]),
        }
    )
    data = {
        "image": [{"bytes": png(c), "path": None} for *_, c in ROWS],
        "query": [q for q, *_ in ROWS],
        "label": [label for _, label, *_ in ROWS],
        "human_or_machine": [h for _, _, h, _ in ROWS],
    }
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(path))
    return path


def plain_parquet(path: Path) -> Path:
    """The same columns written without `datasets` metadata: the image is a {bytes, path} struct."""
    table = pa.table(
        {
            "image": [{"bytes": png(c), "path": f"{i}.png"} for i, (*_, c) in enumerate(ROWS)],
            "query": [q for q, *_ in ROWS],
            "label": [label for _, label, *_ in ROWS],
            "human_or_machine": [h for _, _, h, _ in ROWS],
        }
    )
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("make", [hub_schema_parquet, plain_parquet])
def test_field_mapping_on_hub_schema_rows(tmp_path: Path, make) -> None:
    task = with_local_file(make(tmp_path / "test.parquet"))
    samples = task.load_samples()
    assert [s.target for s in samples] == [["54.3"], ["Canada"], ["1,200"]]
    assert [s.metadata["human_or_machine"] for s in samples] == [0, 1, 1]
    rendered = render(task, samples[1])
    text, image = rendered.messages[-1]["content"]
    assert text["text"].startswith("Which country has the lowest share?\nAnswer with a single word or number")
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert (rendered.images[0].width, rendered.images[0].height) == (120, 80)
    decoded = Image.open(io.BytesIO(__import__("base64").b64decode(image["image_url"]["url"].split(",")[1])))
    assert decoded.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_scoring_follows_chartqa(tmp_path: Path) -> None:
    task = with_local_file(hub_schema_parquet(tmp_path / "test.parquet"))
    first, second, third = task.load_samples()
    scorer = task.build_scorer()
    assert scorer("The tallest bar reads about 52.\nAnswer: 52", first).value == 1.0  # 4.2% off
    assert scorer("Answer: 50", first).value == 0.0
    assert scorer("Answer: canada", second).value == 1.0
    assert scorer("Answer: 1200", third).value == 1.0
