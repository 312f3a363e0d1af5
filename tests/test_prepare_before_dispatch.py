"""Images are prepared off the event loop, ahead of the workers, in a cache that belongs to the run and
prepares each image once; a task that sends images is refused for a text-only model whatever its
family says."""

from __future__ import annotations

import asyncio
import threading

import pytest

import evalkit
from evalkit.common.errors import ConfigError, ImageError
from evalkit.runner import prefetch as prefetch_module
from evalkit.runner.prefetch import THREAD_PREFIX, Prefetcher
from evalkit.runner.unit import Unit
from evalkit.task import images as images_module
from evalkit.task.images import ImageCache, PreparedImage, prepare_image
from evalkit.task.render import render
from evalkit.task.spec import ImageOptions, Sample, Task


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


# --- images prepared ahead of the workers ------------------------------------------------------------


GUARD_S = 30  # only a guard against a hang; no assertion depends on how long anything takes


def _until(condition) -> None:
    done = threading.Event()
    for _ in range(GUARD_S * 1000):
        if condition():
            return
        done.wait(0.001)
    raise AssertionError("condition never held")


def _image(ref: str = "x") -> PreparedImage:
    return PreparedImage(data_url="data:image/png;base64,AAAA", mime="image/png", width=1, height=1,
                         sha256="0" * 64, ref=ref)  # fmt: skip


def _blocking_make(calls: list[str], name: str, release: threading.Event, fail: bool = False):
    def make() -> PreparedImage:
        calls.append(name)
        release.wait(GUARD_S)
        if fail:
            raise ImageError(f"broken for {name}", where=name)
        return _image(name)

    return make


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def test_the_cache_prepares_an_image_once_when_two_threads_ask_at_the_same_moment() -> None:
    cache, calls, release = ImageCache(), [], threading.Event()
    first, first_out = _in_thread(lambda: cache.prepared("k", _blocking_make(calls, "prefetch", release)))
    _until(lambda: calls == ["prefetch"])  # the first is inside its preparation, holding the key
    second, second_out = _in_thread(lambda: cache.prepared("k", _blocking_make(calls, "worker", release)))
    _until(lambda: cache.waits == 1)  # the second found it in flight and waits, not prepares
    release.set()
    first.join(GUARD_S), second.join(GUARD_S)
    assert calls == ["prefetch"]
    assert second_out["value"] is first_out["value"]
    assert (cache.misses, len(cache)) == (1, 1)


def test_a_failed_preparation_is_not_handed_to_the_thread_waiting_for_it() -> None:
    cache, calls, release = ImageCache(), [], threading.Event()
    make_a = _blocking_make(calls, "sample a", release, fail=True)
    make_b = _blocking_make(calls, "sample b", release, fail=True)
    first, first_out = _in_thread(lambda: cache.prepared("k", make_a))
    _until(lambda: calls == ["sample a"])
    second, second_out = _in_thread(lambda: cache.prepared("k", make_b))
    _until(lambda: cache.waits == 1)
    release.set()
    first.join(GUARD_S), second.join(GUARD_S)
    # each raises its own error, naming its own sample; nothing failed is cached or left in flight
    assert "sample a" in str(first_out["error"]) and "sample b" in str(second_out["error"])
    assert calls == ["sample a", "sample b"] and len(cache) == 0
    assert cache.prepared("k", lambda: _image("ok")).ref == "ok"


def _units(tmp_path, n: int, *, bad: set[int] = frozenset()) -> list[Unit]:
    from PIL import Image

    samples = []
    for i in range(n):
        path = tmp_path / f"img_{i}.png"
        if i in bad:
            path.write_bytes(b"not an image at all")
        else:
            Image.new("RGB", (8, 8), (i, 0, 0)).save(path)
        samples.append(Sample(id=f"s{i}", input=f"q{i}", target="t", images=[str(path)]))
    task = Task(name="pics", family="vision", samples=samples, scorer="exact")
    return [Unit(task, sample, "m", 0) for sample in samples]


def test_the_prefetcher_prepares_the_next_units_into_the_run_cache_and_looks_a_bounded_way_ahead(
    tmp_path,
) -> None:
    units, pulled = _units(tmp_path, 10), []

    def source():
        for unit in units:
            pulled.append(unit.sample.id)
            yield unit

    cache = ImageCache()
    prefetcher = Prefetcher(source(), cache, ahead=3, max_images=100, threads=2)
    try:
        assert next(prefetcher) is units[0]
        assert pulled == ["s0", "s1", "s2", "s3"]  # the unit handed out and three ahead, no more
        _until(lambda: len(cache) == 4)
        for unit in units[:4]:  # the worker's render finds them ready
            render(unit.task, unit.sample, images=cache)
        assert (cache.misses, cache.hits) == (4, 4)
        assert list(prefetcher) == units[1:]
    finally:
        prefetcher.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_the_prefetcher_holds_at_most_max_images_prepared_ahead(tmp_path) -> None:
    units, pulled = _units(tmp_path, 10), []

    def source():
        for unit in units:
            pulled.append(unit)
            yield unit

    prefetcher = Prefetcher(source(), ImageCache(), ahead=100, max_images=2, threads=1)
    try:
        next(prefetcher)
        assert len(pulled) == 3
    finally:
        prefetcher.close()


def test_a_bad_image_surfaces_from_the_workers_render_naming_its_own_sample(tmp_path) -> None:
    units = _units(tmp_path, 3, bad={1})
    cache = ImageCache()
    prefetcher = Prefetcher(iter(units), cache, ahead=5, threads=2)
    try:
        assert list(prefetcher) == units  # the prefetch failure is not raised here ...
    finally:
        prefetcher.close()
    with pytest.raises(ImageError) as caught:  # ... but by the worker's render, exactly as without it
        render(units[1].task, units[1].sample, images=cache)
    with pytest.raises(ImageError) as plain:
        render(units[1].task, units[1].sample)
    assert str(caught.value) == str(plain.value)
    assert "sample 's1'" in str(caught.value) and "img_1.png" in str(caught.value)


def test_units_not_wanted_are_not_prepared(tmp_path) -> None:
    units, cache = _units(tmp_path, 4), ImageCache()
    prefetcher = Prefetcher(iter(units), cache, wanted=lambda unit: unit.sample.id == "s2", threads=1)
    try:
        assert list(prefetcher) == units
    finally:
        prefetcher.close()  # waits for the one preparation submitted
    assert len(cache) == 1
    assert prepare_image(units[2].sample.images[0], ImageOptions(), where="w", cache=cache)
    assert cache.hits == 1


def test_a_text_only_run_starts_no_prefetch_thread(tmp_path, monkeypatch) -> None:
    def no_pool(*args, **kwargs):
        raise AssertionError("a text-only run started a prefetch pool")

    monkeypatch.setattr(prefetch_module, "ThreadPoolExecutor", no_pool)
    samples = [Sample(id=str(i), input=f"2+{i}?", target=str(2 + i)) for i in range(6)]
    task = Task(name="sums", family="qa", samples=samples, scorer="exact")
    result = evalkit.run([task], ["sim/small-fast"], sim=True, out=str(tmp_path / "r"), progress=False)
    assert len(result.df) == 6 and result.df.error.isna().all()


def test_a_vision_run_prepares_in_the_prefetch_pool_and_leaves_no_thread_behind(
    tmp_path, monkeypatch
) -> None:
    threads: list[str] = []
    original = images_module._prepare

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(images_module, "_prepare", spy)
    from PIL import Image

    samples = []
    for i in range(12):
        path = tmp_path / f"p{i}.png"
        Image.new("RGB", (16, 16), (i * 20, 0, 0)).save(path)
        samples.append(Sample(id=str(i), input=f"colour {i}?", target="red", images=[str(path)]))
    task = Task(name="many", family="vision", samples=samples, scorer="exact")
    result = evalkit.run([task], ["meta-llama/llama-4-scout"], sim=True, out=str(tmp_path / "r"),
                         progress=False, cache=False, concurrency=2)  # fmt: skip
    assert len(result.df) == 12 and result.df.error.isna().all()
    assert any(name.startswith(THREAD_PREFIX) for name in threads), threads
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_a_run_stopped_by_its_budget_stops_the_prefetch(tmp_path) -> None:
    from PIL import Image

    samples = []
    for i in range(40):
        path = tmp_path / f"b{i}.png"
        Image.new("RGB", (16, 16), (0, i * 5, 0)).save(path)
        samples.append(Sample(id=str(i), input=f"colour {i}?", target="green", images=[str(path)]))
    task = Task(name="budgeted", family="vision", samples=samples, scorer="exact")
    result = evalkit.run([task], ["meta-llama/llama-4-scout"], sim=True, out=str(tmp_path / "r"),
                         progress=False, cache=False, concurrency=2, budget_rub=0.001)  # fmt: skip
    assert result.status == "budget_exhausted", result.status
    assert len(result.df) < 40
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_a_bad_image_mid_run_fails_the_run_naming_that_sample_not_a_neighbour(tmp_path) -> None:
    units = _units(tmp_path, 6, bad={4})
    task = units[0].task
    with pytest.raises(ImageError, match=r"sample 's4': unreadable image .*img_4\.png"):
        evalkit.run([task], ["meta-llama/llama-4-scout"], sim=True, out=str(tmp_path / "r"),
                    progress=False, cache=False, concurrency=2)  # fmt: skip
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_a_cancelled_run_stops_the_prefetch_and_leaves_no_thread_behind(tmp_path) -> None:
    task = _units(tmp_path, 200)[0].task

    def prefetch_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]

    async def interrupted() -> None:
        run = asyncio.create_task(
            evalkit.arun(
                [task],
                ["meta-llama/llama-4-scout"],
                sim=True,
                out=str(tmp_path / "r"),
                progress=False,
                cache=False,
                concurrency=2,
            )  # fmt: skip
        )
        for _ in range(GUARD_S * 100):  # until the prefetch is at work, as SIGINT would find it
            if prefetch_threads() or run.done():
                break
            await asyncio.sleep(0.01)
        assert not run.done(), "the run ended before it could be interrupted"
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(interrupted())
    assert not prefetch_threads()
