"""Judged runs end to end over real HTTP on the simulator (its own process, logging every request):
model ₽ + judge ₽ = the simulator's bill; the budget holds with judge calls included; a judge that fails
or answers no verdict is never scored; a run killed with SIGKILL and resumed pays no judge call twice."""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import KEY, cli_process, journal_lines, request_log

import evalkit
from evalkit import sim
from evalkit.sim.judge import JudgeProfile
from evalkit.sim.profiles import JUDGE

REPO = Path(__file__).resolve().parent.parent
MODELS = ["sim/small-fast", "sim/ru-tuned"]
FLAKY = JUDGE.model_copy(update={"id": "sim/judge-flaky", "judge": JudgeProfile(accuracy=0.9, malformed=0.3)})
N_SAMPLES = 26  # 2 questions × 13 languages


def _task(directory: Path, judges: list[str], replicates: int = 2, reply_format: str = "json") -> Path:
    """builtin_open's first two questions, judged by `judges` with `replicates` each."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        json.loads(line) for line in (REPO / "tasks/data/builtin_open.jsonl").read_text("utf-8").splitlines()
    ]
    kept = [r for r in rows if r["id"].split("/")[1] in ("sky_blue", "seasons")]
    (directory / "open.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), "utf-8"
    )
    params = {"judges": judges, "mode": "reference", "replicates": replicates, "reply_format": reply_format}
    task = directory / "open.yaml"
    task.write_text(
        "name: open_judged\nfamily: other\nsource: {path: open.jsonl, format: json}\n"
        "fields: {id: id, target: target, language: language, metadata: [cluster]}\n"
        "prompt: {user: '{question}'}\n"
        f"scorer: {{name: judge, params: {json.dumps(params)}}}\n"
        "generation: {max_tokens: 200}\n",
        encoding="utf-8",
    )
    return task


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("judged")
    task = _task(root / "task", ["sim/judge"])
    flaky = _task(root / "flaky", ["sim/judge-flaky"], replicates=1)
    log = root / "requests.jsonl"
    served = [*MODELS, "sim/judge", FLAKY]
    with sim.serve(
        tasks=[str(task), str(flaky)], models=served, latency_scale=0.3, request_log=log, process=True
    ) as server:
        yield collections.namedtuple("World", "root task flaky log server")(root, task, flaky, log, server)


def _billed(log: list[dict[str, Any]], model: str | None = None) -> list[dict[str, Any]]:
    return [e for e in log if e["cost_rub"] and (model is None or e["model"] == model)]


def _run(world: Any, out: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    return evalkit.run(
        [str(options.pop("task", world.task))], MODELS, base_url=world.server.base_url, out=str(out),
        progress=False, concurrency=6, **options,
    )  # fmt: skip


def test_model_and_judge_rubles_add_up_to_the_simulators_bill_exactly(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = world.server.stats()["billed_rub"]
    start = len(request_log(world.log))
    result = _run(world, tmp_path, monkeypatch, cache=False)
    assert result.status == "completed", result.message
    df = result.df
    billed = world.server.stats()["billed_rub"] - before
    model_rub, judge_rub = df["cost_rub"].sum(), df["cost_rub_judge"].sum()
    assert model_rub + judge_rub == pytest.approx(billed, rel=1e-12, abs=1e-12)
    log = request_log(world.log)[start:]
    assert judge_rub == pytest.approx(sum(e["cost_rub"] for e in _billed(log, "sim/judge")), rel=1e-12)
    assert model_rub == pytest.approx(sum(e["cost_rub"] for e in log if e["model"] in MODELS), rel=1e-12)
    # every sample judged twice (2 replicates), each stated in the row
    assert len(df) == N_SAMPLES * len(MODELS) and (df["judge_calls"] == 2).all()
    assert set(df["judge_setup"]) == {"reference judge sim/judge, 2 replicate(s), majority"}
    assert all(len(v) == 2 for v in df["judge_votes"])
    summary = evalkit.summarize(df)
    assert (summary["rub_per_1000_with_judge"] > summary["rub_per_1000"]).all()
    assert summary["judge_rub"].sum() == pytest.approx(judge_rub)
    assert summary["total_rub"].sum() == pytest.approx(model_rub)  # never mixed in


def test_a_judge_that_fails_or_answers_no_verdict_is_never_scored(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(world, tmp_path, monkeypatch, task=world.flaky, cache=False)
    assert result.status == "completed_with_errors"
    df = result.df
    unparsed = df[df["error"] == "judge_unparsed"]
    assert 5 <= len(unparsed) <= 30  # 30% of 52 replies are no verdict
    assert unparsed["score"].isna().all()
    assert (
        unparsed["error_message"]
        .str.contains("judge sim/judge-flaky#0: the judge's reply is not one JSON")
        .all()
    )
    assert unparsed["cost_rub_judge"].gt(0).all()  # paid for all the same, and said so
    assert df.loc[df["error"].isna(), "score"].notna().all()
    summary = evalkit.summarize(df)
    assert (summary["n_scored"] + summary["errors"] == summary["n"]).all()


def test_the_budget_holds_with_judge_calls_included(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _run(world, tmp_path / "full", monkeypatch, cache=False)
    whole = full.df["cost_rub"].sum() + full.df["cost_rub_judge"].sum()
    budget = whole / 3
    before = world.server.stats()["billed_rub"]
    result = _run(world, tmp_path / "capped", monkeypatch, cache=False, budget_rub=budget)
    billed = world.server.stats()["billed_rub"] - before
    assert result.status == "budget_exhausted", result.message
    assert billed <= budget
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["totals"]["spent_rub"] == pytest.approx(billed, rel=1e-9)
    df = result.df
    assert df["cost_rub"].sum() + df["cost_rub_judge"].sum() <= billed + 1e-12


def _recorded(run_dir: Path) -> set[str]:
    """Generation ids of every reply the journal holds: model responses and judge responses."""
    kinds = ("response", "judge_response")
    return {line["call"]["generation_id"] for line in journal_lines(run_dir) if line["kind"] in kinds}


def _kill_after(argv: list[str], run_dir: Path, lines: int) -> None:
    child = cli_process(argv)
    started = time.monotonic()
    while child.is_alive() and len(journal_lines(run_dir)) < lines:
        assert time.monotonic() - started < 120, "the run never got that far"
        time.sleep(0.002)
    if child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    child.join(30)


@pytest.mark.parametrize("cycle", range(3))
def test_a_judged_run_killed_and_resumed_pays_no_judge_call_twice(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cycle: int
) -> None:
    rng = random.Random(1600 + cycle)
    out, run_id = tmp_path / "out", f"judged{cycle}"
    start = len(request_log(world.log))
    before = world.server.stats()["billed_rub"]
    argv = [
        "run", str(world.task), *sum((["--model", m] for m in MODELS), []), "--base-url", world.server.base_url,
        "--out", str(out), "--run-id", run_id, "-c", "6", "-q", *(["--no-cache"] if cycle % 2 else []),
    ]  # fmt: skip
    total_requests = N_SAMPLES * len(MODELS) * 3  # one model call and two judge calls per sample
    after_lines = rng.randrange(10, total_requests // 2)
    world.server.hold_after(after_lines)  # the run cannot finish before the kill
    try:
        _kill_after(argv, out / run_id, after_lines)
    finally:
        world.server.release()
    killed_lines = journal_lines(out / run_id)
    assert any(line["kind"] == "judge_response" for line in killed_lines)
    recorded_at_kill = _recorded(out / run_id)
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    resumed = evalkit.run([], [], base_url=world.server.base_url, out=str(out), resume=run_id, progress=False)
    assert resumed.status == "completed", resumed.message
    df = resumed.df
    assert len(df) == N_SAMPLES * len(MODELS) and df["score"].notna().all()
    billed = _billed(request_log(world.log)[start:])
    recorded = _recorded(out / run_id)
    # a reply the journal held at the kill (model or judge) was never asked, or paid, again
    paid = collections.Counter(e["body_sha256"] for e in billed)
    body_of = {e["generation_id"]: e["body_sha256"] for e in billed}
    twice = [g for g in recorded_at_kill if paid[body_of[g]] > 1]
    assert not twice, f"{len(twice)} recorded response(s) were paid again after the resume"
    # what the kill cut off in flight was billed without an answer coming back (at most the concurrency)
    lost = [e for e in billed if e["generation_id"] not in recorded]
    assert len(lost) <= 6
    judge_billed = [e for e in billed if e["model"] == "sim/judge" and e["generation_id"] in recorded]
    assert len(judge_billed) == 2 * len(df)  # both replicates of every sample, each paid once
    spent = world.server.stats()["billed_rub"] - before
    unrecorded = sum(e["cost_rub"] for e in lost)
    assert df["cost_rub"].sum() + df["cost_rub_judge"].sum() == pytest.approx(spent - unrecorded, rel=1e-12)
    shutil.rmtree(out)


def test_a_judged_generate_phase_is_scored_by_resuming_not_by_evalkit_score(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalkit.common.errors import ConfigError

    generated = _run(world, tmp_path, monkeypatch, cache=False, phase="generate", run_id="gen")
    assert generated.status == "completed", generated.message
    with pytest.raises(ConfigError, match="scored by a judge.*evalkit run --resume gen"):
        evalkit.score("gen", out=str(tmp_path))  # a judge calls models: the scheduler budgets those calls
    start = len(request_log(world.log))
    resumed = evalkit.run(
        [], [], base_url=world.server.base_url, out=str(tmp_path), resume="gen", progress=False
    )
    assert resumed.status == "completed", resumed.message
    asked = {entry["model"] for entry in request_log(world.log)[start:]}
    assert asked == {"sim/judge"}  # the recorded answers were judged, not asked again
    assert len(resumed.df) == N_SAMPLES * len(MODELS) and resumed.df["score"].notna().all()


def test_a_judges_estimate_is_its_price_card_applied_to_cache_writes_and_thinking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A judge that thinks and whose provider bills cache writes at their own price: the estimate
    column is the price card applied to every token kind the router reported, the same function as
    a model call's (so here it equals the router's bill, which uses the same card)."""
    from evalkit.client import CallRecord, PriceCard
    from evalkit.sim.profiles import PER_MILLION
    from evalkit.sim.wire import model_entry

    judge = JUDGE.model_copy(
        update={
            "id": "sim/judge-thinks", "thinking": "field", "thinking_tokens": {"medium": 40},
            "cache_write_price": 25 * PER_MILLION, "cache_min_tokens": 1,
        }
    )  # fmt: skip
    task = _task(tmp_path / "task", [judge.id], replicates=2)
    with sim.serve(tasks=[str(task)], models=["sim/small-fast", judge], latency_scale=0) as server:
        monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
        result = evalkit.run(
            [str(task)], ["sim/small-fast"], base_url=server.base_url, out=str(tmp_path / "out"),
            progress=False, cache=False, limit=6,
        )  # fmt: skip
    assert result.status == "completed", result.message
    card = PriceCard.from_api(model_entry(judge, 0)["pricing"])
    expected: dict[str, float] = collections.defaultdict(float)
    calls = [line for line in journal_lines(result.path) if line["kind"] == "judge_response"]
    for line in calls:
        expected[line["key"][2]] += CallRecord.from_dict(line["call"]).estimate(card).total
    assert sum(line["call"]["cache_write_tokens"] or 0 for line in calls) > 0
    assert all(line["call"]["reasoning_tokens"] for line in calls)
    df = result.df.set_index("sample_id")
    assert len(expected) == len(df) == 6
    for sample_id, rub in expected.items():
        assert df.loc[sample_id, "cost_rub_judge_estimated"] == pytest.approx(rub, rel=1e-12)
    # the sim bills by the same card, so what we estimated is what the router billed, to the kopeck
    assert df["cost_rub_judge_estimated"].sum() == pytest.approx(df["cost_rub_judge"].sum(), rel=1e-9)
