"""Images are prepared off the event loop, in a cache that belongs to the run; a task that sends
images is refused for a text-only model whatever its family says."""

from __future__ import annotations

import asyncio
import threading

import pytest

import evalkit
from evalkit.common.errors import ConfigError
from evalkit.task import images as images_module
from evalkit.task.spec import Sample, Task


def _png(tmp_path, name: str = "red.png"):
    from PIL import Image

    path = tmp_path / name
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    return str(path)


def _vision_task(tmp_path, family: str = "vision", n: int = 4) -> Task:
    image = _png(tmp_path)
    samples = [Sample(id=str(i), input=f"What colour? {i}", target="red", images=[image]) for i in range(n)]
    return Task(name=f"colours_{family}", family=family, samples=samples, scorer="exact")


def test_images_are_prepared_in_a_worker_thread_once_per_run(tmp_path, monkeypatch) -> None:
    seen: list[tuple[str, bool]] = []
    original = images_module._prepare

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((threading.current_thread().name, on_loop))
        return original(*args, **kwargs)

    monkeypatch.setattr(images_module, "_prepare", spy)
    task = _vision_task(tmp_path)
    models = ["meta-llama/llama-4-scout"]
    result = evalkit.run(
        [task], models, sim=True, out=str(tmp_path / "r"), progress=False, cache=False, epochs=2
    )
    assert len(result.df) == 8 and result.df.error.isna().all()
    assert seen and not any(on_loop for _, on_loop in seen), "an image was prepared on the event loop"
    # the run's cache prepares the one image once for every sample and epoch; the simulator, running in
    # this process, renders the task once more to index it
    assert len(seen) <= 2, seen


def test_a_qa_task_that_sends_images_is_refused_for_a_text_only_model(tmp_path) -> None:
    task = _vision_task(tmp_path, family="qa", n=1)
    with pytest.raises(ConfigError, match="does not take image input"):
        evalkit.run([task], ["sim/small-fast"], sim=True, out=str(tmp_path / "r"), progress=False)
