"""A stream cut mid-way brings no `usage.cost` back, yet a router may bill the generation it started.
The ruble ceiling must hold whatever such a router billed: each cut attempt keeps its worst case
committed (`unconfirmed_rub`), across a resume too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import evalkit
from evalkit import Sample, Task
from evalkit.runner.budget import Budget
from tests.text_router import COST_RUB, MODEL, TextRouter, _event


class CuttingRouter(TextRouter):
    """Bills `COST_RUB` for every request, then cuts every stream after its first piece of content."""

    def __init__(self) -> None:
        super().__init__()
        self.billed_rub = 0.0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests[body["messages"][-1]["content"]] += 1
        self.billed_rub += COST_RUB
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_event({"id": "gen", "choices": [{"index": 0, "delta": {"content": "4"}}]}))
        assert request.transport is not None
        request.transport.abort()  # the cut: no usage, no [DONE]
        return response


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-cutting-router-0000")
    with CuttingRouter() as router:
        yield router


def _task(n: int) -> Task:
    samples = [Sample(id=f"s{i}", input=f"cut prompt {i}", target=["42"]) for i in range(n)]
    return Task(name="cut", family="qa", samples=samples, scorer="exact", generation={"max_tokens": 64})


def test_cut_streams_count_their_worst_case_so_the_ceiling_holds_whatever_the_router_billed(
    router: CuttingRouter, tmp_path: Path
) -> None:
    budget = 0.01  # ten of the router's bills, far fewer than 30 samples × up to 6 attempts
    run = dict(base_url=router.base_url, out=str(tmp_path), progress=False, cache=False, concurrency=4)
    result = evalkit.run([_task(30)], [MODEL], run_id="cut", budget_rub=budget, **run)
    assert result.status == "budget_exhausted", result.message
    assert router.billed_rub <= budget
    totals = json.loads((tmp_path / "cut" / "manifest.json").read_text())["totals"]
    assert totals["spent_rub"] == 0.0  # the router never said what it billed
    assert 0 < totals["unconfirmed_rub"] <= budget
    assert totals["spent_rub"] + totals["unconfirmed_rub"] >= router.billed_rub - 1e-12

    billed_before = router.billed_rub
    # the same ceiling on resume, with what is committed read back from the journal
    resumed = evalkit.run([_task(30)], [MODEL], resume="cut", budget_rub=budget, **run)
    assert resumed.status == "budget_exhausted", resumed.message
    assert router.billed_rub <= budget, (billed_before, router.billed_rub)


async def _settle_cut(budget: Budget, worst: float, estimate: float | None) -> float:
    reservation = await budget.reserve(worst)
    return await budget.settle(reservation, None, estimate, possibly_billed=True)


def test_a_cut_attempt_commits_its_worst_case_less_what_its_tokens_already_cost() -> None:
    import asyncio

    budget = Budget(1.0)
    assert asyncio.run(_settle_cut(budget, 0.3, 0.1)) == pytest.approx(0.2)
    assert budget.spent_rub == pytest.approx(0.1) and budget.unconfirmed_rub == pytest.approx(0.2)
    assert budget.remaining_rub == pytest.approx(0.7)
    # a failure that never reached a generation (a refused connection, a 4xx) commits nothing more
    plain = Budget(1.0)

    async def refused() -> float:
        return await plain.settle(await plain.reserve(0.3), None, None)

    assert asyncio.run(refused()) == 0.0 and plain.unconfirmed_rub == 0.0


class CutThenRefusingRouter(CuttingRouter):
    """Cuts the first stream of each prompt (maybe billed), then answers every retry with HTTP 402."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if self.requests[body["messages"][-1]["content"]]:
            self.requests[body["messages"][-1]["content"]] += 1
            error = {"error": {"code": 402, "message": "Insufficient credits"}}
            return web.json_response(error, status=402)
        return await super()._chat(request)


def test_a_run_fatal_call_after_a_cut_attempt_keeps_its_worst_case_across_a_resume(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from evalkit.runner.journal import Journal

    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-cutting-router-0000")
    with CutThenRefusingRouter() as router:
        run = dict(base_url=router.base_url, out=str(tmp_path), progress=False, cache=False, concurrency=1)
        result = evalkit.run([_task(1)], [MODEL], run_id="cut402", budget_rub=1.0, **run)
        assert result.status == "out_of_credit", result.message
        first = json.loads((tmp_path / "cut402" / "manifest.json").read_text())["totals"]
        assert first["unconfirmed_rub"] > 0  # the cut attempt may have been billed
        lines = [json.loads(line) for line in (tmp_path / "cut402" / "samples.jsonl").open()]
        assert [line["kind"] for line in lines] == ["unconfirmed"]  # no response, no sample: redone
        assert Journal(tmp_path / "cut402").read_state().unconfirmed_rub == first["unconfirmed_rub"]

        resumed = evalkit.run([_task(1)], [MODEL], resume="cut402", budget_rub=1.0, **run)
        assert resumed.status == "out_of_credit", resumed.message
        again = json.loads((tmp_path / "cut402" / "manifest.json").read_text())["totals"]
        assert again["unconfirmed_rub"] >= first["unconfirmed_rub"]  # still counted after the resume


class CutThenRefusingEachTime(CuttingRouter):
    """Each invocation's first attempt is cut (maybe billed), its retry refused with HTTP 402."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if self.requests[body["messages"][-1]["content"]] % 2:
            self.requests[body["messages"][-1]["content"]] += 1
            return web.json_response({"error": {"code": 402, "message": "Insufficient credits"}}, status=402)
        return await super()._chat(request)


def test_the_same_cut_in_two_invocations_is_counted_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # won: both invocations wrote byte-identical `unconfirmed` lines, and the journal reads an exact
    # duplicate line once, so a later resume counted one maybe-billed attempt where there were two
    from evalkit.runner.journal import Journal

    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-cutting-router-0000")
    with CutThenRefusingEachTime() as router:
        run = dict(base_url=router.base_url, out=str(tmp_path), progress=False, cache=False, concurrency=1)
        evalkit.run([_task(1)], [MODEL], run_id="twice", budget_rub=1.0, **run)
        once = Journal(tmp_path / "twice").read_state().unconfirmed_rub
        evalkit.run([_task(1)], [MODEL], resume="twice", budget_rub=1.0, **run)
        assert router.billed_rub == 2 * COST_RUB
    lines = [json.loads(line) for line in (tmp_path / "twice" / "samples.jsonl").open()]
    assert [line["kind"] for line in lines] == ["unconfirmed", "unconfirmed"]
    assert once > 0 and Journal(tmp_path / "twice").read_state().unconfirmed_rub == pytest.approx(2 * once)


class JudgeCutThenRefusingRouter(CuttingRouter):
    """Answers the model; each invocation's first judge attempt is cut, its retry refused with 402."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        if prompt in self.replies:
            return await TextRouter._chat(self, _Replayed(request, body))
        if self.requests[prompt] % 2:
            self.requests[prompt] += 1
            return web.json_response({"error": {"code": 402, "message": "Insufficient credits"}}, status=402)
        return await super()._chat(_Replayed(request, body))


class _Replayed:
    """The request with its body already read, for the router it is handed on to."""

    def __init__(self, request: web.Request, body: dict) -> None:
        self._request, self._body = request, body

    async def json(self) -> dict:
        return self._body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def test_the_same_cut_judge_call_in_two_invocations_is_counted_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # won, as for a model's call: two byte-identical `unconfirmed` lines of one judge call were read once
    from evalkit.runner.journal import Journal

    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-cutting-router-0000")
    samples = [Sample(id="s0", input="judged prompt 0", target=["42"])]
    task = Task(name="judged", family="other", samples=samples, generation={"max_tokens": 64},
                scorer={"name": "judge", "params": {"judges": MODEL}})  # fmt: skip
    with JudgeCutThenRefusingRouter() as router:
        router.replies["judged prompt 0"] = "42"
        run = dict(base_url=router.base_url, out=str(tmp_path), progress=False, cache=False, concurrency=1)
        # the answer first, so that each judging invocation below reserves exactly the same worst case
        evalkit.run([task], [MODEL], run_id="judged", budget_rub=1.0, phase="generate", **run)
        for _ in range(2):
            judged = evalkit.run([task], [MODEL], resume="judged", budget_rub=1.0, **run)
            assert judged.status == "out_of_credit", judged.message
    lines = [json.loads(line) for line in (tmp_path / "judged" / "samples.jsonl").open()]
    assert [line["kind"] for line in lines] == ["response", "unconfirmed", "unconfirmed"]
    once = lines[1]["unconfirmed_rub"]
    assert once > 0 and lines[2]["unconfirmed_rub"] == once
    assert Journal(tmp_path / "judged").read_state().unconfirmed_rub == pytest.approx(2 * once)
