"""Fault injection through the real SDK: mixed faults at scale, sustained 429s, 402 and 401.

Every test talks to the simulator (or a small 429-ing proxy in front of it) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from reliability_helpers import KEY, MODEL, journal_lines, request_log, run_cli, write_task

import evalkit
from evalkit import sim
from evalkit.runner.journal import read_manifest
from evalkit.runner.progress import ProgressSnapshot
from evalkit.task.spec import Sample, Task

MIXED_FAULTS = (
    "rate_limit=0.10,retry_after_share=0.5,retry_after_s=0.2,"  # half of the 429s carry a hint
    "server_error=0.05,error_in_200=0.02,drop_stream=0.01,hang=0.01,hang_s=3"
)


def arithmetic(n: int, name: str = "arith") -> Task:
    samples = [
        Sample(id=f"q{i}", input=f"What is {i} + {i * 3}? Finish with 'Answer: <n>'.", target=str(4 * i))
        for i in range(n)
    ]
    return Task(name=name, family="qa", samples=samples, scorer="numeric", generation={"max_tokens": 64})


class Recorder:
    """A progress sink that keeps every snapshot."""

    def __init__(self) -> None:
        self.snapshots: list[ProgressSnapshot] = []

    def update(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)

    def close(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)


def _kept_costs_match_the_bill(df: Any, log: list[dict[str, Any]]) -> None:
    """₽ in the results == what the simulator billed for the responses we kept, and nothing it billed
    for a completed response is missing from the results."""
    billed = {e["generation_id"]: e["cost_rub"] for e in log if e["completed"]}
    kept = df[df.error.isna()]
    assert set(kept.generation_id) <= set(billed)
    assert set(billed) <= set(kept.generation_id), "the router billed responses the results do not show"
    assert df.cost_rub.sum() == pytest.approx(sum(billed.values()), rel=1e-9, abs=1e-12)


def _exactly_once(run_dir: Path, expected: int) -> list[tuple[Any, ...]]:
    samples = [tuple(line["key"]) for line in journal_lines(run_dir) if line["kind"] == "sample"]
    responses = [tuple(line["key"]) for line in journal_lines(run_dir) if line["kind"] == "response"]
    assert len(samples) == len(set(samples)) == expected, "a sample is missing or recorded twice"
    assert len(responses) == len(set(responses)), "a response was recorded twice"
    return samples


@pytest.mark.slow
def test_two_thousand_samples_at_concurrency_64_under_mixed_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task, log = arithmetic(2000), tmp_path / "requests.jsonl"
    max_attempts, budget = 4, 5.0
    with sim.serve(
        tasks=[task], faults=MIXED_FAULTS, latency_scale=0.02, request_log=log, process=True
    ) as server:
        # no wall-clock bound here: that depends on the machine's load. Every attempt has a 1 s
        # deadline and at most 4 attempts (checked below), and pytest's per-test timeout catches a hang
        result = evalkit.run(
            [task], [MODEL], base_url=server.base_url, out=str(tmp_path), concurrency=64,
            max_attempts=max_attempts, retry_base_delay_s=0.05, deadline_s=1.0, budget_rub=budget,
            progress=False,
        )  # fmt: skip
        stats = server.stats()
    df = result.df
    # honest: a sample that failed after its attempts makes the run say so
    assert result.status == ("completed_with_errors" if df.error.notna().any() else "completed"), (
        result.message
    )
    _exactly_once(result.path, 2000)
    failed, scored = df[df.error.notna()], df[df.error.isna()]
    assert scored.score.notna().all() and failed.score.isna().all()
    assert (failed.attempts == max_attempts).all() or set(failed.error) <= {"bad_request"}
    assert df.attempts.between(1, max_attempts).all()
    outcomes = stats["outcomes"]
    for fault in ("rate_limit", "server_error", "error_in_200", "drop_stream", "cancelled"):
        assert outcomes.get(fault, 0) > 0, f"no {fault} was injected: {outcomes}"
    assert df.attempts.sum() == stats["requests"], "every request sent is accounted for in attempts"
    _kept_costs_match_the_bill(df, request_log(log))
    assert df.cost_rub.sum() == pytest.approx(stats["billed_rub"], abs=1e-9)
    assert df.cost_rub.sum() <= budget


@pytest.mark.slow
def test_a_tight_budget_under_faults_is_never_exceeded_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task, log = arithmetic(400), tmp_path / "requests.jsonl"
    options = dict(max_attempts=6, retry_base_delay_s=0.05, deadline_s=1.0, progress=False)
    with sim.serve(
        tasks=[task], faults=MIXED_FAULTS, latency_scale=0.02, request_log=log, process=True
    ) as server:
        first = evalkit.run(
            [task], [MODEL], base_url=server.base_url, out=str(tmp_path), concurrency=64, budget_rub=0.04,
            **options,
        )  # fmt: skip
        assert first.status == "budget_exhausted" and "larger budget_rub" in first.message
        assert server.stats()["billed_rub"] <= 0.04  # the router's own bill, not only our sum
        assert 0 < len(first.df) < 400
        resumed = evalkit.run(
            [task], [MODEL], base_url=server.base_url, out=str(tmp_path), resume=first.run_id, budget_rub=1.0,
            **options,
        )  # fmt: skip
        stats = server.stats()
    assert resumed.status == ("completed_with_errors" if resumed.df.error.notna().any() else "completed")
    _exactly_once(resumed.path, 400)
    _kept_costs_match_the_bill(resumed.df, request_log(log))
    assert resumed.df.cost_rub.sum() == pytest.approx(stats["billed_rub"], abs=1e-9)
    assert stats["billed_rub"] <= 1.0


class RateLimitingProxy:
    """Answers 429 (with retry-after-ms) to every POST while `storming`, else forwards to the
    simulator. The test ends the storm by flipping `storming`; no wall clock decides anything.
    Counts the 429s and notes when a request body comes back (the client retried after a 429)."""

    def __init__(self, upstream: str, retry_after_ms: int) -> None:
        self.upstream, self.retry_after_ms = upstream, retry_after_ms
        self.storming = True
        self.limited = 0
        self.retried = False  # a body was seen again while storming: a 429 reached the runner
        self._seen: set[bytes] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST" and self.storming:
            body = await request.read()
            self.retried = self.retried or body in self._seen
            self._seen.add(body)
            self.limited += 1
            error = b'{"error":{"code":429,"message":"Rate limit exceeded"}}'
            headers = {"retry-after-ms": str(self.retry_after_ms), "Content-Type": "application/json"}
            return web.Response(status=429, body=error, headers=headers)
        return await self._forward(request)

    async def _forward(self, request: web.Request) -> web.Response:
        url = self.upstream + request.path_qs.removeprefix("/api/v1")
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with (
            ClientSession() as session,
            session.request(request.method, url, data=await request.read(), headers=headers) as upstream,
        ):
            body = await upstream.read()
            kind = upstream.headers.get("Content-Type", "application/json")
            return web.Response(status=upstream.status, body=body, headers={"Content-Type": kind})


@pytest.fixture
def storm(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, RateLimitingProxy]]:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task = arithmetic(500, name="storm")
    with sim.serve(tasks=[task], latency_scale=0.05) as server:
        proxy = RateLimitingProxy(server.base_url, retry_after_ms=300)
        loop = asyncio.new_event_loop()
        ready, stop = threading.Event(), asyncio.Event()
        box: dict[str, Any] = {}

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", proxy.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
            ready.set()
            await stop.wait()
            await runner.cleanup()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        ready.wait(10)
        box["task"] = task
        yield box["url"], proxy, task
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


class StormWatcher(Recorder):
    """Keeps every snapshot with what the proxy was doing when it was taken, and ends the storm once
    a snapshot shows concurrency cut to a quarter after the runner saw a 429 (or after
    `MAX_STORM_429S`, so a limiter that never backs off fails the test instead of hanging it)."""

    def __init__(self, proxy: RateLimitingProxy, maximum: int) -> None:
        super().__init__()
        self.proxy, self.maximum = proxy, maximum
        self.during: list[ProgressSnapshot] = []  # taken after a retry was seen, while storming

    def update(self, snapshot: ProgressSnapshot) -> None:
        super().update(snapshot)
        if not (self.proxy.storming and self.proxy.retried):
            return
        self.during.append(snapshot)
        if snapshot.concurrency <= self.maximum // 4 or self.proxy.limited >= MAX_STORM_429S:
            self.proxy.storming = False


MAX_STORM_429S = 3000


@pytest.mark.slow
def test_sustained_429s_slow_the_run_down_show_backing_off_and_recover(storm: Any, tmp_path: Path) -> None:
    url, proxy, task = storm
    progress = StormWatcher(proxy, maximum=16)
    result = evalkit.run(
        [task], [MODEL], base_url=url, out=str(tmp_path), concurrency=16, max_attempts=30,
        retry_base_delay_s=0.05, progress=progress,
    )  # fmt: skip
    assert result.status == "completed", result.message
    assert result.df.error.isna().all(), "429s during the storm must be retried, not recorded as failures"
    _exactly_once(result.path, 500)
    during = progress.during
    assert during, "no snapshot was taken during the storm"
    assert not proxy.storming and proxy.limited < MAX_STORM_429S, (
        f"concurrency never fell to a quarter in {proxy.limited} 429s"
    )
    assert all(s.done == 0 for s in during), "a sample finished while every request got a 429"
    assert all(s.backing_off for s in during), "the display must say it is backing off, not look stuck"
    assert "rate_limit" in during[-1].backing_off or "rate limited" in during[-1].backing_off
    lowest = during[-1]
    assert lowest.concurrency <= 16 // 4, "still sending at full concurrency late in the storm"
    snapshots = progress.snapshots
    after = snapshots[snapshots.index(lowest) :]
    assert max(s.concurrency for s in after) > lowest.concurrency, "concurrency never grew back"
    final = snapshots[-1]
    assert final.status == "completed" and final.concurrency == 16
    assert final.backing_off is None, f"the finished run still says it is backing off: {final.backing_off}"


def test_out_of_credit_mid_run_stops_cleanly_keeps_work_and_resumes(tmp_path: Path) -> None:
    task = write_task(tmp_path / "task", 60)
    log, out = tmp_path / "requests.jsonl", tmp_path / "out"
    with sim.serve(
        tasks=[str(task)], faults="credits=0.006,server_error=0.05", latency_scale=0.05, request_log=log,
        process=True,
    ) as server:  # fmt: skip
        args = ("--model", MODEL, "--base-url", server.base_url, "--out", str(out), "-c", "8", "-q")
        first = run_cli("run", str(task), "--run-id", "credit", *args)
        assert first.returncode == 3, first.stderr
        assert "run credit: out_of_credit" in first.stdout and "Insufficient credits" in first.stdout
        assert "evalkit run --resume credit" in first.stdout
        assert "Traceback" not in first.stderr
        manifest = read_manifest(out / "credit")
        assert manifest["status"] == "out_of_credit" and "Insufficient credits" in manifest["message"]
        kept = evalkit.load_results(out / "credit")
        completed = [e for e in request_log(log) if e["completed"]]
        assert 0 < len(kept) < 60
        assert len(kept[kept.error.isna()]) == len(completed), "a paid response was lost at the stop"
        assert "out_of_credit" not in set(kept.error.dropna()), "the 402 is the run's stop, not a sample's"
        recorded_bodies = {e["body_sha256"] for e in completed}
        before = len(request_log(log))
        server.set_credits(100.0)
        resumed = run_cli("run", "--resume", "credit", *args[2:])
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "run credit: completed" in resumed.stdout
    _exactly_once(out / "credit", 60)
    resent = [e for e in request_log(log)[before:] if e["body_sha256"] in recorded_bodies]
    assert not resent, "resume re-sent requests whose responses were recorded"
    _kept_costs_match_the_bill(evalkit.load_results(out / "credit"), request_log(log))


def test_a_rejected_key_fails_fast_with_one_clear_message_and_no_retries(tmp_path: Path) -> None:
    task = write_task(tmp_path / "task", 40)
    log = tmp_path / "requests.jsonl"
    with sim.serve(tasks=[str(task)], api_key=KEY, latency_scale=0, request_log=log, process=True) as server:
        result = run_cli(
            "run", str(task), "--model", MODEL, "--base-url", server.base_url, "--out", str(tmp_path / "out"),
            "--run-id", "badkey", "-c", "4", "-q", key="sk-wrong-0000000000000000",
        )  # fmt: skip
        sent = server.stats()["outcomes"]
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    status_lines = [line for line in result.stdout.splitlines() if line.startswith("run badkey")]
    assert len(status_lines) == 1 and "auth_failed" in status_lines[0]
    assert "401" in status_lines[0] and "check ROUTERAI_API_KEY" in status_lines[0]
    # fast by count, not by wall time: at most the 4 calls already in flight, none retried
    assert sent == {"unauthorized": sent.get("unauthorized", 0)} and sent["unauthorized"] <= 4
    assert "sk-wrong" not in result.stdout + result.stderr
    assert evalkit.load_results(tmp_path / "out" / "badkey").empty
    del log


def test_a_full_budget_raises_instead_of_waiting_forever_after_float_residue() -> None:
    """Found by the tight-budget fault run: settling reservations in another order than they were made
    left ~1e-19 ₽ "reserved", so the next reservation waited for a settle that would never come."""
    import random

    from evalkit.runner.budget import Budget, BudgetExhausted

    async def scenario(seed: int) -> None:
        rng = random.Random(seed)
        budget = Budget(0.01)
        reservations = [await budget.reserve(rng.uniform(1e-4, 1e-3)) for _ in range(8)]
        rng.shuffle(reservations)
        for reservation in reservations:
            await budget.settle(reservation, reservation.estimate, None)
        with pytest.raises(BudgetExhausted):
            await asyncio.wait_for(budget.reserve(0.01), timeout=5)

    for seed in range(50):
        asyncio.run(scenario(seed))
