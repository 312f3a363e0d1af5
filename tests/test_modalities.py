"""One modality check (`client.catalog.check_modalities`) for `run` before anything is sent and for
`estimate` before anything is priced: it reads what the samples send, not the task's family, and its
one error names the model, the task and the first sample that needs the modality."""

from __future__ import annotations

from pathlib import Path

import pytest

import evalkit
from evalkit.client.catalog import Catalog, ModelInfo, PriceCard
from evalkit.common.errors import ConfigError
from evalkit.runner.estimate import estimate_run
from evalkit.task.spec import Sample, Task

CARD = PriceCard(prompt=30e-6, completion=90e-6, image=0.05)
CATALOG = Catalog(
    {
        "m/text": ModelInfo("m/text", "text only", 10_000, ("text",), ("text",), CARD),
        "m/sees": ModelInfo("m/sees", "sees", 10_000, ("text", "image"), ("text",), CARD),
    },
    source="bundled",
)


def _png(tmp_path: Path) -> str:
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    return str(path)


def _task(family: str, images_on: set[str], image: str = "") -> Task:
    samples = [
        Sample(id=i, input=f"What colour is it? {i}", target="red", images=[image] if i in images_on else [])
        for i in ("a", "b", "c")
    ]
    return Task(name=f"colours_{family}", family=family, samples=samples, scorer="exact")


REFUSAL = (
    r"model 'm/text@effort=high' does not take image input \(its catalog entry lists text\), "
    r"but task 'colours_qa' sends images \(sample 'b' has 1 image\(s\)\)"
)


def test_estimate_refuses_a_qa_task_that_sends_images_naming_the_model_and_the_sample(tmp_path) -> None:
    task = _task("qa", {"b", "c"}, _png(tmp_path))
    with pytest.raises(ConfigError, match=REFUSAL):
        estimate_run([task], ["m/sees", "m/text@effort=high"], CATALOG)
    rows = estimate_run([task], ["m/sees"], CATALOG)  # a model that sees is priced, images included
    assert [(r.model, r.images) for r in rows] == [("m/sees", 2)]


def test_a_vision_task_without_images_is_priced_for_a_text_only_model() -> None:
    (row,) = estimate_run([_task("vision", set())], ["m/text"], CATALOG)
    assert row.images == 0 and row.calls == 3 and row.high_rub > 0


def test_run_refuses_the_same_way_before_any_request(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-test-modalities")
    task = _task("qa", {"b"}, _png(tmp_path))
    with evalkit.sim.serve(tasks=[task], request_log=tmp_path / "log.jsonl") as server:
        with pytest.raises(ConfigError) as refused:
            evalkit.run([task], ["sim/small-fast@effort=high"], base_url=server.base_url,
                        out=str(tmp_path / "out"), progress=False)  # fmt: skip
        assert server.stats()["requests"] == 0
    assert str(refused.value) == (
        "model 'sim/small-fast@effort=high' does not take image input (its catalog entry lists text), "
        "but task 'colours_qa' sends images (sample 'b' has 1 image(s))"
    )
