"""End to end: the runner through the real SDK against the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

import evalkit
from evalkit import sim
from evalkit.common.errors import ConfigError
from evalkit.task.spec import Sample, Task

MODELS = ["meta-llama/llama-4-scout", "sim/small-fast"]
KEY = "sk-test-e2e-0123456789abcdefSECRET"


def arithmetic_task(n: int = 12, name: str = "arith") -> Task:
    samples = [
        Sample(
            id=f"q{i}",
            input=f"What is {i} + {i * 3}? Finish with 'Answer: <number>'.",
            target=str(4 * i),
            language="en",
        )
        for i in range(n)
    ]
    return Task(name=name, family="qa", samples=samples, scorer="numeric", generation={"max_tokens": 64})


@pytest.fixture
def router(monkeypatch):
    """A simulator serving the arithmetic task, reached like a real router: base URL + key from env."""
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task = arithmetic_task()
    with sim.serve(tasks=[task], latency_scale=0, api_key=KEY) as server:
        yield server, task


def _run(server, task, tmp_path, **options):
    options.setdefault("progress", False)
    return evalkit.run(
        [task], options.pop("models", MODELS), base_url=server.base_url, out=str(tmp_path), **options
    )


def test_every_sample_is_recorded_with_tokens_timings_and_both_costs(router, tmp_path):
    server, task = router
    result = _run(server, task, tmp_path)
    assert result.status == "completed"
    df = result.df
    assert len(df) == 24
    assert set(df.model) == set(MODELS)
    assert df.error.isna().all()
    assert df.score.between(0, 1).all()
    assert (df.cost_rub > 0).all() and (df.cost_rub_estimated > 0).all()
    assert (df.prompt_tokens > 0).all() and (df.completion_tokens > 0).all()
    assert (df.ttft_s > 0).all() and (df.latency_s >= df.ttft_s).all()
    assert df.simulated.all()
    billed = server.stats()
    assert df.cost_rub.sum() == pytest.approx(_billed_rub(billed), abs=1e-6)  # stats round to 1e-6
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["simulated"] is True
    assert manifest["models"]["meta-llama/llama-4-scout"]["pricing_rub"]["prompt"] == pytest.approx(18e-6)


def _billed_rub(stats: dict) -> float:
    return stats["billed_rub"]


def test_a_rerun_is_served_from_the_cache_and_sends_nothing(router, tmp_path):
    server, task = router
    first = _run(server, task, tmp_path)
    sent = server.stats()["requests"]
    second = _run(server, task, tmp_path)
    assert server.stats()["requests"] == sent
    assert second.df.from_cache.all()
    pd_first = first.df.set_index(["model", "sample_id"]).sort_index()
    pd_second = second.df.set_index(["model", "sample_id"]).sort_index()
    assert (pd_first.output == pd_second.output).all()
    third = _run(server, task, tmp_path, cache=False)
    assert server.stats()["requests"] == sent + 24
    assert not third.df.from_cache.any()


def test_the_budget_is_never_exceeded_and_a_larger_one_resumes(router, tmp_path):
    server, task = router
    first = _run(server, task, tmp_path, budget_rub=0.008, concurrency=4)  # the whole run costs ~0.02 ₽
    assert first.status == "budget_exhausted"
    spent = first.df.cost_rub.sum()
    assert 0 < spent <= 0.008
    assert len(first.df) < 24
    resumed = _run(server, task, tmp_path, resume=first.run_id, budget_rub=1.0)
    assert resumed.status == "completed"
    resumed_config = json.loads((resumed.path / "manifest.json").read_text())["config"]
    assert resumed_config["concurrency"] == 4  # not given on resume: the run's own setting is kept
    assert len(resumed.df) == 24
    assert resumed.df.cost_rub.sum() == pytest.approx(_billed_rub(server.stats()), abs=1e-6)


def test_api_failures_are_recorded_as_errors_and_never_scored(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task = arithmetic_task(6)
    with sim.serve(tasks=[task], latency_scale=0, faults="server_error=1.0") as server:
        result = _run(server, task, tmp_path, models=MODELS[:1], max_attempts=2, retry_base_delay_s=0.01)
    df = result.df
    assert len(df) == 6
    assert (df.error == "server_error").all()
    assert df.score.isna().all()
    assert (df.attempts == 2).all()
    summary = evalkit.summarize(df)
    assert summary.loc[0, "errors"] == 6


def test_a_wrong_key_fails_fast_without_retries(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-wrong-key-000000000000")
    task = arithmetic_task(20)
    with sim.serve(tasks=[task], latency_scale=0, api_key=KEY) as server:
        result = evalkit.run(
            [task], MODELS[:1], base_url=server.base_url, out=str(tmp_path), progress=False, concurrency=2
        )
        requests = server.stats()["requests"]
    assert result.status == "auth_failed"
    assert "auth" in result.message
    assert requests <= 2
    assert len(result.df) == 0


def test_out_of_credit_stops_cleanly_and_resumes_after_top_up(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task = arithmetic_task(20)
    with sim.serve(tasks=[task], latency_scale=0, faults="credits=0.004") as server:
        first = evalkit.run(
            [task], MODELS[:1], base_url=server.base_url, out=str(tmp_path), progress=False, concurrency=1
        )
        assert first.status == "out_of_credit"
        kept = len(first.df)
        assert 0 < kept < 20
        assert first.df.error.isna().all()  # the 402 is the run's stop, not a sample's failure
        server.set_credits(100.0)
        resumed = _run(server, task, tmp_path, models=MODELS[:1], resume=first.run_id)
    assert resumed.status == "completed"
    assert len(resumed.df) == 20
    assert resumed.df.sample_id.is_unique


def test_unknown_model_and_text_only_model_on_images_are_refused_before_any_request(router, tmp_path):
    server, task = router
    with pytest.raises(ConfigError, match="unknown model id 'nobody/none'"):
        _run(server, task, tmp_path, models=["nobody/none"])
    vision = Task(name="pic", family="vision", samples=[Sample(id="1", input="?", target="1", images=[b"x"])])
    with pytest.raises(ConfigError, match="does not take image input"):
        _run(server, vision, tmp_path, models=["sim/small-fast"])
    assert server.stats()["requests"] == 0


def test_resume_refuses_a_changed_task_unless_forced(router, tmp_path):
    server, task = router
    first = _run(server, task, tmp_path, limit=3)
    changed = task.model_copy(update={"generation": task.generation.model_copy(update={"max_tokens": 99})})
    with pytest.raises(ConfigError, match="changed since run"):
        evalkit.run(
            [changed],
            MODELS,
            base_url=server.base_url,
            out=str(tmp_path),
            resume=first.run_id,
            progress=False,
        )
    forced = _run(server, changed, tmp_path, resume=first.run_id, force=True)
    assert forced.status == "completed"


def test_run_works_inside_a_running_event_loop_like_jupyter(router, tmp_path):
    server, task = router

    async def notebook_cell():
        return _run(server, task, tmp_path, limit=4)

    result = asyncio.run(notebook_cell())
    assert result.status == "completed" and len(result.df) == 8

    async def awaited_cell():
        return await evalkit.arun(
            [task], MODELS, base_url=server.base_url, out=str(tmp_path), limit=4, progress=False
        )

    assert asyncio.run(awaited_cell()).status == "completed"


def test_the_key_is_written_nowhere(router, tmp_path):
    server, task = router
    result = _run(server, task, tmp_path)
    assert KEY not in repr(result)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "options, message",
    [
        ({"concurrency": 0}, "concurrency"),
        ({"budget_rub": -1}, "budget_rub"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_run_options_get_one_clear_error(router, tmp_path, options, message):
    server, task = router
    with pytest.raises(ConfigError, match=message):
        _run(server, task, tmp_path, **options)


def test_resuming_a_run_that_does_not_exist_is_a_clear_error(router, tmp_path):
    server, task = router
    with pytest.raises(ConfigError, match="no run"):
        _run(server, task, tmp_path, resume="20990101-000000-abcdef")


class BrokenScorer:
    blocking = False

    def __call__(self, output, sample):
        raise RuntimeError("sandbox unavailable")


def test_a_scorer_that_breaks_records_an_error_not_a_wrong_answer(router, tmp_path):
    server, task = router
    broken = task.model_copy(update={"scorer": BrokenScorer()})
    df = _run(server, broken, tmp_path, limit=3).df
    assert (df.error == "scoring_failed").all()
    assert df.score.isna().all()
    assert df.error_message.str.contains("sandbox unavailable").all()


def test_retry_errors_on_resume_redoes_only_the_failed_samples(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task = arithmetic_task(6)
    with sim.serve(tasks=[task], latency_scale=0, faults="server_error=1.0") as failing:
        first = _run(failing, task, tmp_path, models=MODELS[:1], max_attempts=1, limit=3)
    assert (first.df.error == "server_error").all()
    with sim.serve(tasks=[task], latency_scale=0) as healthy:
        plain = _run(healthy, task, tmp_path, models=MODELS[:1], resume=first.run_id)
        assert healthy.stats()["requests"] == 0  # failed samples stay failed without --retry-errors
        assert (plain.df.error == "server_error").all()
        retried = _run(healthy, task, tmp_path, models=MODELS[:1], resume=first.run_id, retry_errors=True)
        assert healthy.stats()["requests"] == 3
    assert retried.df.error.isna().all() and len(retried.df) == 3


def test_a_model_can_be_routed_to_its_own_endpoint_and_key(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    monkeypatch.setenv("OTHER_ROUTER_KEY", "sk-other-router-key-000000000000")
    task = arithmetic_task(4)
    with (
        sim.serve(tasks=[task], latency_scale=0, api_key=KEY) as main_router,
        sim.serve(tasks=[task], latency_scale=0, api_key="sk-other-router-key-000000000000") as other,
    ):
        result = evalkit.run(
            [task],
            MODELS,
            base_url=main_router.base_url,
            out=str(tmp_path),
            progress=False,
            model_routes=[f"sim/small-fast={other.base_url},OTHER_ROUTER_KEY"],
        )
        assert main_router.stats()["requests"] == 4 and other.stats()["requests"] == 4
    assert result.status == "completed" and len(result.df) == 8
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["models"]["sim/small-fast"]["endpoint"] == other.base_url
    assert manifest["config"]["model_routes"]["sim/small-fast"]["api_key_env"] == "OTHER_ROUTER_KEY"


@pytest.fixture
def router_without_catalog(monkeypatch):
    """A router whose /models is down (so the bundled catalog is used) and which answers every chat
    request for a model it does not know with RouterAI's 400 shape."""
    import threading

    from aiohttp import web

    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    requests: list[str] = []

    async def models(request):
        return web.json_response({"error": {"code": 500, "message": "catalog down"}}, status=500)

    async def chat(request):
        body = await request.json()
        requests.append(body["model"])
        return web.json_response({"error": f"Model '{body['model']}' not found"}, status=400)

    app = web.Application()
    app.router.add_get("/api/v1/models", models)
    app.router.add_post("/api/v1/chat/completions", chat)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/api/v1", requests
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.run_until_complete(runner.cleanup())
    loop.close()


def test_the_routers_unknown_model_400_stops_that_model_without_recording_wrong_answers(
    router_without_catalog, tmp_path
):
    base_url, requests = router_without_catalog
    task = arithmetic_task(10)
    result = evalkit.run([task], ["acme/typo-model"], base_url=base_url, out=str(tmp_path), progress=False,
                         concurrency=2)  # fmt: skip
    assert result.status == "failed"  # the run's only model answered nothing
    assert "every call to acme/typo-model failed" in result.message and "not found" in result.message
    assert len(requests) <= 2  # at most the calls already in flight; none retried
    assert len(result.df) == 0  # nothing scored, nothing recorded as the model's answer
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["catalog_source"] == ["bundled"]
    assert "acme/typo-model" in manifest["dead_models"]


def test_the_cache_keeps_simulator_seeds_apart(tmp_path):
    task = arithmetic_task(4)
    first = evalkit.run([task], MODELS[:1], sim=True, sim_latency_scale=0, out=str(tmp_path), progress=False)
    same = evalkit.run([task], MODELS[:1], sim=True, sim_latency_scale=0, out=str(tmp_path), progress=False)
    other = evalkit.run(
        [task], MODELS[:1], sim=True, sim_latency_scale=0, sim_seed=1, out=str(tmp_path), progress=False
    )
    assert not first.df.from_cache.any()
    assert same.df.from_cache.all()
    assert not other.df.from_cache.any()  # another seed answers differently: nothing reused
