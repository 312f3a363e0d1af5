"""`evalkit doctor --live` against the simulator (everything conforms) and against local routers that
each break one assumption: every break is reported, and nothing else is.

A breaking router is a small aiohttp proxy on 127.0.0.1 in front of the simulator that changes one
thing in what passes through; everything else stays the simulator's faithful answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from evalkit import sim
from evalkit.client import Endpoint
from evalkit.client.dialect import QUIRKS
from evalkit.doctor.conformance import DEFAULT_BUDGET_RUB, LiveReport, check_live

KEY = "sk-doctor-test-SECRET-5f3a9c"
NOT_SEEN_ON_A_HEALTHY_ROUTER = {
    "out_of_credit_402",
    "error_in_200",
    "error_json_in_string",
    "error_in_stream",
}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with sim.serve(latency_scale=0, api_key=KEY) as server:
        yield server.base_url


async def no_sleep(seconds: float) -> None:
    return None


# --------------------------------------------------------------------------------------------
# Breaking routers


class Break:
    """Hooks of a proxy; each returns what it got by default."""

    def models(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def completion(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def chunk(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def error(self, status: int, data: Any) -> tuple[int, Any]:
        return status, data


class NoCostInUsage(Break):
    def completion(self, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("usage"), dict):
            data["usage"].pop("cost", None)
        return data

    chunk = completion


class PricesAsStrings(Break):
    def models(self, data: dict[str, Any]) -> dict[str, Any]:
        for entry in data["data"]:
            entry["pricing"] = {k: str(v) for k, v in entry["pricing"].items()}
        return data


class PricesPerMillionTokens(Break):
    def models(self, data: dict[str, Any]) -> dict[str, Any]:
        for entry in data["data"]:
            pricing = entry["pricing"]
            pricing.update(prompt=pricing["prompt"] * 1e6, completion=pricing["completion"] * 1e6)
        return data


class DetailErrors(Break):
    """FastAPI-style errors: {"detail": {...}} instead of {"error": ...}, same statuses."""

    def error(self, status: int, data: Any) -> tuple[int, Any]:
        error = data.get("error") if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else str(error)
        return status, {"detail": {"msg": message, "type": "invalid_request_error"}}


class NoUsageInStream(Break):
    def chunk(self, data: dict[str, Any]) -> dict[str, Any]:
        data.pop("usage", None)
        return data


def proxy_app(target: str, hooks: Break) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        url = target + request.match_info["tail"]
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, url, params=request.query, data=await request.read(), headers=headers
            ) as upstream,
        ):
            body = await upstream.read()
            kind = upstream.headers.get("Content-Type", "")
        if "event-stream" in kind:
            return web.Response(body=_stream(body, hooks), content_type="text/event-stream")
        data = json.loads(body)
        status = upstream.status
        if status != 200:
            status, data = hooks.error(status, data)
        elif request.match_info["tail"] == "/models":
            data = hooks.models(data)
        elif request.match_info["tail"] == "/chat/completions":
            data = hooks.completion(data)
        return web.json_response(data, status=status)

    app = web.Application()
    app.router.add_route("*", "/api/v1{tail:.*}", forward)
    return app


def _stream(body: bytes, hooks: Break) -> bytes:
    out = []
    for event in body.decode().split("\n\n"):
        if event.startswith("data: {"):
            event = "data: " + json.dumps(hooks.chunk(json.loads(event[6:])))
        out.append(event)
    return "\n\n".join(out).encode()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        await runner.cleanup()


def check_through(sim_url: str, hooks: Break, **options: Any) -> LiveReport:
    async def main() -> LiveReport:
        async with serving(proxy_app(sim_url, hooks)) as url:
            return await check_live(Endpoint(url, KEY), sleep=no_sleep, **options)

    return asyncio.run(main())


def statuses(report: LiveReport) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"conforms": set(), "differs": set(), "not_seen": set()}
    for name, finding in report.findings.items():
        found[finding.status].add(name)
    return found


# --------------------------------------------------------------------------------------------
# Tests


def test_the_simulator_conforms_to_every_quirk_for_less_than_a_tenth_of_a_ruble(sim_url: str) -> None:
    report = asyncio.run(check_live(Endpoint(sim_url, KEY, simulated=True), sleep=no_sleep))
    found = statuses(report)
    assert found["differs"] == set(), report.differences
    assert found["not_seen"] == NOT_SEEN_ON_A_HEALTHY_ROUTER
    assert list(report.findings) == [q.name for q in QUIRKS]
    assert [c.probe for c in report.calls] == ["plain", "stream", "image"]
    assert all(c.cost_rub is not None for c in report.calls) and report.spent_estimated_rub == 0
    assert report.spent_rub == pytest.approx(sum(c.cost_rub or 0 for c in report.calls))
    assert 0.09 < report.spent_rub < 0.1  # the image (91.14 ₽ per 1K) is nearly all of it
    assert report.skipped == []


def test_an_unchanged_proxy_conforms_too(sim_url: str) -> None:
    found = statuses(check_through(sim_url, Break()))
    assert found["differs"] == set()


BREAKS: list[tuple[Break, set[str], str]] = [
    (NoCostInUsage(), {"usage_cost_rub"}, "`usage.cost` missing"),
    (PricesAsStrings(), {"prices_rub_per_token"}, "not JSON numbers"),
    (DetailErrors(), {"error_shape"}, "a code inside would be missed"),
    (NoUsageInStream(), {"stream_usage_last_chunk"}, "the last chunk has no `usage`"),
]


@pytest.mark.parametrize(("hooks", "expected", "words"), BREAKS, ids=lambda v: type(v).__name__)
def test_each_break_is_reported_and_nothing_else(
    sim_url: str, hooks: Break, expected: set[str], words: str
) -> None:
    report = check_through(sim_url, hooks)
    assert set(report.differences) == expected, report.differences
    (finding,) = report.differences.values()
    assert words in finding.detail
    assert report.spent_rub < DEFAULT_BUDGET_RUB


def test_without_a_cost_the_spend_is_the_price_card_estimate(sim_url: str) -> None:
    report = check_through(sim_url, NoCostInUsage())
    assert all(c.cost_rub is None for c in report.calls)
    assert report.spent_estimated_rub == pytest.approx(report.spent_rub) and report.spent_rub > 0.09


def test_without_usage_in_the_stream_its_worst_case_is_counted(sim_url: str) -> None:
    report = check_through(sim_url, NoUsageInStream())
    streamed = next(c for c in report.calls if c.probe == "stream")
    assert streamed.cost_rub is None and streamed.estimated_rub is not None and streamed.estimated_rub > 0


def test_prices_in_another_unit_are_reported_and_the_budget_refuses_the_calls(sim_url: str) -> None:
    report = check_through(sim_url, PricesPerMillionTokens())
    assert set(report.differences) == {"prices_rub_per_token"}
    assert "another unit" in report.findings["prices_rub_per_token"].detail
    assert report.calls == [] and report.spent_rub == 0  # each call's worst case is now far above 0.15 ₽
    assert [s.split(":")[0] for s in report.skipped] == ["plain", "stream", "unknown_model", "image"]
    assert all("budget of 0.15 ₽ reached" in s for s in report.skipped)


def test_the_budget_is_never_exceeded(sim_url: str) -> None:
    report = asyncio.run(check_live(Endpoint(sim_url, KEY, simulated=True), budget_rub=0.01, sleep=no_sleep))
    assert [c.probe for c in report.calls] == ["plain", "stream"]  # the image (0.09 ₽) does not fit
    assert report.spent_rub <= 0.01
    assert any(s.startswith("image:") for s in report.skipped)
    assert report.findings["image_price"].status == "not_seen"
    assert not report.differences


def test_an_unreachable_router_is_reported_not_crashed() -> None:
    report = asyncio.run(check_live(Endpoint("http://127.0.0.1:9/api/v1", KEY), sleep=no_sleep))
    assert report.spent_rub == 0 and all(c.status is None and c.cost_rub is None for c in report.calls)
    assert "models_schema" in report.differences
    assert "did not answer" in report.differences["models_schema"].detail


def test_generation_is_asked_again_while_the_router_has_not_recorded_it(sim_url: str) -> None:
    seen: list[int] = []

    def late_app() -> web.Application:
        app = proxy_app(sim_url, Break())

        @web.middleware
        async def first_404(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
            if request.path.endswith("/generation"):
                seen.append(1)
                if len(seen) == 1:
                    return web.json_response({"error": {"code": 404, "message": "not found"}}, status=404)
            return await handler(request)

        app.middlewares.append(first_404)
        return app

    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> LiveReport:
        async with serving(late_app()) as url:
            return await check_live(Endpoint(url, KEY), sleep=record_sleep)

    report = asyncio.run(main())
    assert len(seen) == 2 and waits == [1.0]
    assert report.findings["generation_record"].status == "conforms"


def test_calls_cut_without_a_bill_count_at_their_worst_case() -> None:
    with sim.serve(latency_scale=0, api_key=KEY, faults="drop_stream=1") as server:
        report = asyncio.run(
            check_live(Endpoint(server.base_url, KEY, simulated=True), budget_rub=0.01, sleep=no_sleep)
        )
    cut = [c for c in report.calls if c.probe in ("plain", "stream")]
    assert len(cut) == 2 and all(c.cost_rub is None and (c.estimated_rub or 0) > 0 for c in cut)
    assert report.spent_rub == pytest.approx(report.spent_estimated_rub) and 0 < report.spent_rub <= 0.01
    assert report.findings["usage_cost_rub"].status == "not_seen"


def test_a_text_only_model_makes_no_image_call(sim_url: str) -> None:
    report = asyncio.run(
        check_live(Endpoint(sim_url, KEY, simulated=True), model="sim/small-fast", sleep=no_sleep)
    )
    assert [c.probe for c in report.calls] == ["plain", "stream"]
    assert report.findings["image_price"].status == "not_seen"
    assert "takes no images" in report.findings["image_price"].detail
    assert "no bundled card" in report.findings["prices_rub_per_token"].detail
    assert not report.differences and report.spent_rub < 0.001


def test_a_model_the_router_does_not_list_is_reported_and_nothing_is_paid(sim_url: str) -> None:
    report = asyncio.run(check_live(Endpoint(sim_url, KEY, simulated=True), model="sim/typo", sleep=no_sleep))
    assert set(report.differences) == {"models_schema"}
    assert "sim/typo is not in GET /models" in report.differences["models_schema"].detail
    assert report.calls == [] and report.spent_rub == 0
    assert all("no price card" in s for s in report.skipped) and len(report.skipped) == 2


def test_a_router_that_serves_any_model_id_is_reported_and_its_bill_counted(sim_url: str) -> None:
    class AnyModel(Break):
        def error(self, status: int, data: Any) -> tuple[int, Any]:
            if status != 400:
                return status, data
            return 200, {
                "id": "gen-any",
                "choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "cost": 0.0003},
            }

    report = check_through(sim_url, AnyModel())
    assert "a typo in a model id would not be caught" in report.differences["unknown_model_400"].detail
    served = next(c for c in report.calls if c.probe == "unknown_model")
    assert served.cost_rub == 0.0003
    assert report.spent_rub == pytest.approx(sum(c.cost_rub or 0 for c in report.calls))
