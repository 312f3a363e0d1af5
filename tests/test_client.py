"""The client against a tiny local router on 127.0.0.1 that answers in RouterAI's exact shapes.

Every test goes through the real SDK and real HTTP; nothing is patched. Scenarios are chosen by the
model id in the request, and the server counts the hits per model so retries can be counted.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from evalkit.client import (
    CallHooks,
    CallRecord,
    Client,
    Endpoint,
    ErrorClass,
    RetryPolicy,
    Severity,
    is_model_fatal,
    is_retryable,
    is_run_fatal,
    parse_retry_after,
    severity,
)
from evalkit.client.dialect import classify_payload, parse_error_payload
from evalkit.common.clock import ManualClock
from evalkit.common.errors import ConfigError

KEY = "sk-test-SECRET-0123456789abcdef"
FAST = RetryPolicy(max_attempts=4, max_total_s=30.0, base_delay_s=0.01, max_delay_s=0.05)
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "cost": 0.000511,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
FIRST_DELTA_DELAY = 0.3
Handler = Callable[[web.Request, dict[str, Any], int], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------------------------
# The fake router


def chunk(
    model: str, content: str | None = None, finish: str | None = None, usage: dict | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "gen-1234",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "provider": "FakeProvider",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    body.update(extra)
    return body


def completion(model: str, content: str = "Paris", usage: dict | None = None) -> dict[str, Any]:
    return {
        "id": "gen-5678",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "provider": "FakeProvider",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": usage or USAGE,
    }


async def open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(b": PROCESSING\n\n")
    return response


async def send(response: web.StreamResponse, data: dict[str, Any] | str) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    await response.write(f"data: {text}\n\n".encode())


async def success(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    model = body["model"]
    if not body.get("stream"):
        return web.json_response(completion(model))
    response = await open_sse(request)
    await asyncio.sleep(FIRST_DELTA_DELAY / 2)
    await response.write(b": PROCESSING\n\n")
    await send(response, chunk(model, content=""))  # role-only delta: not a token
    await asyncio.sleep(FIRST_DELTA_DELAY / 2)
    for piece in ("The answer ", "is ", "Paris."):
        await send(response, chunk(model, content=piece))
        await asyncio.sleep(0.02)
    await send(response, chunk(model, content="", finish="stop"))
    await send(response, chunk(model, content="", finish="stop", usage=USAGE))
    await send(response, "[DONE]")
    return response


def status(code: int, payload: Any, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
        return web.json_response(payload, status=code, headers=headers)

    return handler


def then_succeed(first: Handler, failures: int = 1) -> Handler:
    async def handler(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
        return await (first if hit <= failures else success)(request, body, hit)

    return handler


async def midstream_error(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    model = body["model"]
    response = await open_sse(request)
    await send(response, chunk(model, content="partial "))
    error = {"code": 502, "message": "Upstream provider died", "metadata": {"raw": "ECONNRESET"}}
    await send(
        response,
        chunk(model, content="", finish="error", error=error, usage=dict(USAGE, cost=0.001)),
    )
    return response


async def midstream_error_no_code(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    response = await open_sse(request)
    await send(response, chunk(body["model"], content="partial "))
    await send(response, {"error": {"message": "stream interrupted"}})
    return response


async def dropped(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    response = await open_sse(request)
    await send(response, chunk(body["model"], content="half an ans"))
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()
    return response


async def hang(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    response = await open_sse(request)
    for _ in range(300):  # keeps the connection alive with comments, never sends a token
        await asyncio.sleep(0.1)
        await response.write(b": PROCESSING\n\n")
    return response


async def empty_stream(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    response = await open_sse(request)
    usage = dict(USAGE, completion_tokens=0, cost=0.0001)
    await send(response, chunk(body["model"], content="", finish="stop", usage=usage))
    await send(response, "[DONE]")
    return response


async def echo_key(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
    auth = request.headers.get("Authorization", "")
    return web.json_response(
        {"error": {"message": f"bad key {auth} and {auth.split()[-1]}", "code": 400}}, status=400
    )


def thought_stream(*deltas: dict[str, Any], usage: dict | None = None) -> Handler:
    """A stream of the given deltas (thinking and content), then finish_reason and usage."""

    async def handler(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
        response = await open_sse(request)
        for delta in deltas:
            event = chunk(body["model"])
            event["choices"][0]["delta"] = delta
            await send(response, event)
            await asyncio.sleep(0.02)  # keeps the first thought and the first answer token apart
        await send(response, chunk(body["model"], content="", finish="stop", usage=usage or USAGE))
        await send(response, "[DONE]")
        return response

    return handler


def json_to_stream_request(payload: Any) -> Handler:
    """The router answering a streaming request with a plain JSON body and status 200."""

    async def handler(request: web.Request, body: dict[str, Any], hit: int) -> web.StreamResponse:
        return web.json_response(payload)

    return handler


def future_date(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


SCENARIOS: dict[str, Handler] = {
    "t/ok": success,
    "t/err200-json-string": json_to_stream_request(
        {"error": json.dumps({"error": {"code": 429, "message": "Rate limit exceeded upstream"}})}
    ),
    "t/err200-dict": json_to_stream_request({"error": {"code": 502, "message": "Provider returned error"}}),
    "t/err200-plain": json_to_stream_request({"error": "Something broke"}),
    "t/midstream": midstream_error,
    "t/midstream-nocode": midstream_error_no_code,
    "t/drop": dropped,
    "t/hang": hang,
    "t/empty": empty_stream,
    "t/echo-key": echo_key,
    "t/unknown": status(400, {"error": "Model 't/unknown' not found"}),
    "t/401": status(401, {"error": {"code": 401, "message": "Invalid API key"}}),
    "t/402": status(402, {"error": {"code": 402, "message": "Insufficient credits"}}),
    "t/403": status(403, {"error": {"code": 403, "message": "Input flagged by moderation"}}),
    "t/400": status(400, {"error": {"code": 400, "message": "max_tokens must be positive"}}),
    "t/500-always": status(500, {"error": {"code": 500, "message": "Internal error"}}),
    "t/408-once": then_succeed(status(408, {"error": "Request timeout"})),
    "t/503-twice": then_succeed(status(503, {"error": "Service unavailable"}), failures=2),
    "t/429-after": then_succeed(status(429, {"error": "Too many requests"}, {"Retry-After": "1"})),
    "t/429-ms": then_succeed(status(429, {"error": "Too many requests"}, {"retry-after-ms": "400"})),
    "t/429-none": then_succeed(status(429, {"error": "Too many requests"}), failures=2),
    "t/429-long": status(429, {"error": "Too many requests"}, {"Retry-After": "60"}),
    "t/midstream-then-ok": then_succeed(midstream_error),
    "t/empty-then-ok": then_succeed(empty_stream),
    # a <think> tag cut across deltas, a wrong answer and several scripts inside it
    "t/think-split": thought_stream(
        {"content": "<thi"},
        {"content": "nk>Ответ: 5. 答案：5"},
        {"content": "</think"},
        {"content": ">\n\nAnswer: Paris"},
    ),  # fmt: skip
    # OpenRouter sends the thought twice per delta: as `reasoning` and in `reasoning_details`
    "t/reasoning-twice": thought_stream(
        {"reasoning": "Lyon? ", "reasoning_details": [{"type": "reasoning.text", "text": "Lyon? "}]},
        {"reasoning": "No.", "reasoning_details": [{"type": "reasoning.text", "text": "No."}]},
        {"content": "Paris"},
    ),
    # the whole reply was thought, cut before the answer, and usage never came: not an empty response
    "t/thought-only": thought_stream({"content": "<think>Answer: Lyon"}, usage={"cost": 0.0003}),
}


class FakeRouter:
    """Hits per model and the last request body, for assertions."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.base_url = ""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        self.hits[body["model"]] += 1
        if body["model"] == "t/429-date":
            handler = then_succeed(status(429, {"error": "slow down"}, {"Retry-After": future_date(2.5)}))
        else:
            handler = SCENARIOS[body["model"]]
        return await handler(request, body, self.hits[body["model"]])


@asynccontextmanager
async def fake_router():
    router = FakeRouter()
    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", router.chat)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    router.base_url = f"http://127.0.0.1:{port}/api/v1"
    try:
        yield router
    finally:
        await runner.cleanup()


def on_virtual_time(
    model: str, clock: ManualClock, *, advance_s: float = 0.0, **options: Any
) -> tuple[CallRecord, FakeRouter]:
    """One `Client.call` on virtual time; with `advance_s`, time moves that far once the router holds
    the request (so a deadline fires by the clock, never by how busy the machine is)."""
    hooks = options.pop("hooks", None)

    async def scenario() -> tuple[CallRecord, FakeRouter]:
        async with (
            fake_router() as router,
            Client(Endpoint(router.base_url, KEY), clock=clock, **options) as client,
        ):
            task = asyncio.create_task(
                client.call(model, [{"role": "user", "content": "Capital of France?"}], {}, hooks=hooks)
            )
            if advance_s:
                while not router.hits[model]:  # wait for the request to arrive, however long it takes
                    await asyncio.sleep(0.001)
                clock.advance(advance_s)
            return await task, router

    return asyncio.run(scenario())


def call(
    model: str, *, stream: bool = True, transport: str = "aiohttp", **options: Any
) -> tuple[CallRecord, FakeRouter, float]:
    """One `Client.call` against a fresh fake router: (record, router, wall seconds, never asserted on)."""
    hooks = options.pop("hooks", None)
    params = options.pop("params", {"temperature": 0, "max_tokens": 64})
    options.setdefault("retry", FAST)

    async def scenario() -> tuple[CallRecord, FakeRouter, float]:
        async with fake_router() as router:
            endpoint = Endpoint(base_url=router.base_url, api_key=KEY)
            async with Client(endpoint, stream=stream, transport=transport, **options) as client:
                started = time.monotonic()
                record = await client.call(
                    model, [{"role": "user", "content": "Capital of France?"}], params, hooks=hooks
                )
                return record, router, time.monotonic() - started

    return asyncio.run(scenario())


# --------------------------------------------------------------------------------------------
# Success


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_streamed_success_records_output_usage_cost_and_ttft(transport: str) -> None:
    record, router, _ = call("t/ok", transport=transport)
    assert record.error is None and record.ok
    assert record.output == "The answer is Paris."
    assert record.finish_reason == "stop"
    assert record.generation_id == "gen-1234"
    assert record.provider == "FakeProvider"
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (12, 5, 4)
    assert record.cost_rub == pytest.approx(0.000511)
    assert record.attempts == 1 and record.attempt_errors == []
    # TTFT is the first non-empty content delta, after the PROCESSING comments and the role-only delta
    assert record.ttft_s is not None and record.ttft_s >= FIRST_DELTA_DELAY
    assert record.latency_s is not None and record.latency_s > record.ttft_s
    assert record.output_tokens_per_s == pytest.approx(5 / (record.latency_s - record.ttft_s))
    sent = router.bodies[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_non_streamed_success_has_no_ttft() -> None:
    record, router, _ = call("t/ok", stream=False)
    assert record.error is None
    assert record.output == "Paris"
    assert record.generation_id == "gen-5678"
    assert record.cost_rub == pytest.approx(0.000511)
    assert record.ttft_s is None and record.output_tokens_per_s is None
    assert record.latency_s is not None and record.latency_s > 0
    assert "stream" not in router.bodies[0]


def test_params_unknown_to_the_sdk_reach_the_router_in_the_body() -> None:
    params = {"temperature": 0.5, "max_tokens": 10, "top_k": 3, "provider": {"order": ["x"]}, "seed": 7}
    record, router, _ = call("t/ok", params=params)
    assert record.error is None
    sent = router.bodies[0]
    assert sent["top_k"] == 3 and sent["provider"] == {"order": ["x"]}
    assert sent["temperature"] == 0.5 and sent["max_tokens"] == 10 and sent["seed"] == 7


# --------------------------------------------------------------------------------------------
# Errors inside HTTP 200 bodies and streams


@pytest.mark.parametrize(
    ("model", "expected", "code"),
    [
        ("t/err200-json-string", ErrorClass.RATE_LIMIT, 429),
        ("t/err200-dict", ErrorClass.UPSTREAM_ERROR, 502),
        ("t/err200-plain", ErrorClass.UPSTREAM_ERROR, 200),
    ],
)
def test_error_inside_a_200_body_is_an_error_not_an_output(
    model: str, expected: ErrorClass, code: int
) -> None:
    one = RetryPolicy(max_attempts=1)
    for stream in (True, False):
        record, router, _ = call(model, stream=stream, retry=one)
        assert record.error == expected, (stream, record)
        assert record.output is None
        assert record.http_status == code
        assert router.hits[model] == 1


def test_error_mid_stream_keeps_its_code_and_cost() -> None:
    record, router, _ = call("t/midstream", retry=RetryPolicy(max_attempts=1))
    assert record.error == ErrorClass.UPSTREAM_ERROR
    assert "Upstream provider died" in (record.error_message or "")
    assert "ECONNRESET" in (record.error_message or "")
    assert record.cost_rub == pytest.approx(0.001)


def test_error_chunk_without_code_is_a_stream_error() -> None:
    record, _, _ = call("t/midstream-nocode", retry=RetryPolicy(max_attempts=1))
    assert record.error == ErrorClass.STREAM_ERROR
    assert "stream interrupted" in (record.error_message or "")


def test_cost_of_failed_attempts_is_added_to_the_sample() -> None:
    record, router, _ = call("t/midstream-then-ok")
    assert record.error is None and record.output == "The answer is Paris."
    assert record.attempts == 2 and record.attempt_errors == ["upstream_error"]
    assert record.cost_rub == pytest.approx(0.001 + 0.000511)


def test_connection_dropped_mid_stream_is_a_stream_error() -> None:
    record, router, _ = call("t/drop", retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    assert record.error == ErrorClass.STREAM_ERROR
    assert router.hits["t/drop"] == 2 and record.attempts == 2


def test_connection_refused_is_a_connection_error() -> None:
    async def scenario() -> CallRecord:
        async with fake_router() as router:
            url = router.base_url
        async with Client(Endpoint(url, KEY), retry=RetryPolicy(max_attempts=2, base_delay_s=0.01)) as client:
            return await client.call("t/ok", [{"role": "user", "content": "hi"}], {})

    record = asyncio.run(scenario())
    assert record.error == ErrorClass.CONNECTION
    assert record.attempts == 2


def test_hard_deadline_covers_reading_the_stream() -> None:
    # the server keeps sending comments, so no idle timeout fires: only our deadline stops it
    clock = ManualClock(autojump=False)
    record, router = on_virtual_time(
        "t/hang", clock, advance_s=0.5, deadline_s=0.5, retry=RetryPolicy(max_attempts=1)
    )
    assert record.error == ErrorClass.TIMEOUT
    assert record.latency_s == 0.5 and clock.now == 0.5


def test_empty_response_is_retried_and_recorded() -> None:
    record, router, _ = call("t/empty", retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    assert record.error == ErrorClass.EMPTY_RESPONSE
    assert router.hits["t/empty"] == 2
    assert record.cost_rub == pytest.approx(0.0002)
    record, _, _ = call("t/empty-then-ok")
    assert record.error is None and record.attempts == 2


# --------------------------------------------------------------------------------------------
# HTTP status errors


@pytest.mark.parametrize(
    ("model", "expected", "sev"),
    [
        ("t/unknown", ErrorClass.MODEL_NOT_FOUND, Severity.MODEL),
        ("t/401", ErrorClass.AUTH, Severity.RUN),
        ("t/402", ErrorClass.OUT_OF_CREDIT, Severity.RUN),
        ("t/403", ErrorClass.FORBIDDEN, Severity.SAMPLE),
        ("t/400", ErrorClass.BAD_REQUEST, Severity.SAMPLE),
    ],
)
def test_fatal_statuses_are_not_retried(model: str, expected: ErrorClass, sev: Severity) -> None:
    record, router, _ = call(model)
    assert record.error == expected
    assert severity(record.error) is sev
    assert router.hits[model] == 1 and record.attempts == 1
    assert record.http_status is not None and record.http_status >= 400
    assert record.output is None


def test_run_and_model_fatal_helpers() -> None:
    assert is_run_fatal("auth") and is_run_fatal("out_of_credit")
    assert not is_run_fatal("model_not_found") and is_model_fatal("model_not_found")
    assert is_model_fatal("auth")  # a dead run is dead for every model too
    assert is_retryable("rate_limit") and not is_retryable("bad_request") and not is_retryable(None)
    assert severity("no_such_class") is Severity.SAMPLE


def test_server_errors_are_retried_up_to_the_attempt_limit() -> None:
    record, router, _ = call("t/500-always", retry=RetryPolicy(max_attempts=3, base_delay_s=0.01))
    assert record.error == ErrorClass.SERVER_ERROR
    assert router.hits["t/500-always"] == 3 and record.attempts == 3
    assert record.attempt_errors == ["server_error"] * 3
    assert "Internal error" in (record.error_message or "")


@pytest.mark.parametrize(("model", "failures"), [("t/408-once", 1), ("t/503-twice", 2), ("t/429-none", 2)])
def test_transient_statuses_recover(model: str, failures: int) -> None:
    record, router, _ = call(model)
    assert record.error is None and record.output == "The answer is Paris."
    assert record.attempts == failures + 1 == router.hits[model]


@pytest.mark.parametrize(("model", "wait"), [("t/429-after", 1.0), ("t/429-ms", 0.4), ("t/429-date", 1.0)])
def test_retry_after_is_honoured(model: str, wait: float) -> None:
    delays: list[float] = []

    async def on_backoff(delay: float, record: CallRecord) -> None:
        delays.append(delay)

    clock = ManualClock()
    record, router = on_virtual_time(model, clock, retry=FAST, hooks=CallHooks(on_backoff=on_backoff))
    assert record.error is None and record.attempts == 2
    assert len(delays) == 1 and delays[0] >= wait
    assert clock.slept == delays  # the wait really happened, on the clock


def test_total_time_bound_stops_a_wait_that_would_overrun() -> None:
    policy = RetryPolicy(max_attempts=10, max_total_s=2.0, base_delay_s=0.01)
    clock = ManualClock()
    record, router = on_virtual_time("t/429-long", clock, retry=policy)
    assert record.error == ErrorClass.RATE_LIMIT
    assert record.retry_after_s == 60
    assert router.hits["t/429-long"] == 1
    assert clock.slept == []  # the 60 s wait was never started


# --------------------------------------------------------------------------------------------
# Hooks


def test_hooks_see_every_attempt_in_order() -> None:
    events: list[tuple[str, Any]] = []

    async def before(attempt: int) -> None:
        events.append(("before", attempt))

    async def after(record: CallRecord, attempt: int) -> None:
        events.append(("after", (attempt, record.error)))

    async def backoff(delay: float, record: CallRecord) -> None:
        events.append(("backoff", record.error))

    record, _, _ = call("t/503-twice", hooks=CallHooks(before, after, backoff))
    assert record.error is None
    assert events == [
        ("before", 1),
        ("after", (1, "server_error")),
        ("backoff", "server_error"),
        ("before", 2),
        ("after", (2, "server_error")),
        ("backoff", "server_error"),
        ("before", 3),
        ("after", (3, None)),
    ]


def test_a_hook_that_raises_aborts_the_call() -> None:
    class Abort(Exception):
        pass

    async def before(attempt: int) -> None:
        if attempt == 2:
            raise Abort

    with pytest.raises(Abort):
        call("t/503-twice", hooks=CallHooks(before_attempt=before))


# --------------------------------------------------------------------------------------------
# The key never shows


def test_key_never_appears_in_messages_reprs_or_records() -> None:
    record, _, _ = call("t/echo-key")
    assert record.error == ErrorClass.BAD_REQUEST
    assert "bad key" in (record.error_message or "")
    dumped = json.dumps(record.to_dict())
    assert KEY not in dumped and KEY[-12:] not in dumped
    endpoint = Endpoint("https://user:pw@example.test/api/v1?token=x", KEY)
    client_text = ""

    async def make() -> None:
        nonlocal client_text
        async with Client(endpoint) as client:
            client_text = repr(client) + str(client)

    asyncio.run(make())
    for text in (repr(endpoint), str(endpoint), client_text, endpoint.safe_url()):
        assert KEY not in text and "pw" not in text and "token" not in text
    assert endpoint.safe_url() == "https://example.test/api/v1"


def test_error_messages_are_bounded() -> None:
    _, message = parse_error_payload({"error": {"code": 500, "message": "x" * 5000}})
    record, _, _ = call("t/500-always", retry=RetryPolicy(max_attempts=1))
    assert len(message) == 5000
    assert len(record.error_message or "") <= 500


# --------------------------------------------------------------------------------------------
# Endpoint from the environment


def test_endpoint_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ROUTERAI_API_KEY", "OPENAI_API_KEY", "EVALKIT_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="no API key: set ROUTERAI_API_KEY"):
        Endpoint.from_env()
    assert Endpoint.from_env(required=False).api_key == ""
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    assert Endpoint.from_env().api_key == "openai-key"
    monkeypatch.setenv("ROUTERAI_API_KEY", "router-key")
    endpoint = Endpoint.from_env()
    assert endpoint.api_key == "router-key"
    assert endpoint.base_url == "https://routerai.ru/api/v1"
    monkeypatch.setenv("EVALKIT_BASE_URL", "http://127.0.0.1:9/v1")
    assert Endpoint.from_env().base_url == "http://127.0.0.1:9/v1"
    assert Endpoint.from_env(base_url="http://x/v1").base_url == "http://x/v1"
    monkeypatch.setenv("MY_KEY", "mine")
    assert Endpoint.from_env(api_key_env="MY_KEY").api_key == "mine"
    assert Endpoint("http://h/v1", "k", simulated=True).cache_id == "sim"


# --------------------------------------------------------------------------------------------
# Classification of payloads (pure)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"error":{"code":429,"message":"slow"}}', ErrorClass.RATE_LIMIT),
        ({"code": 502, "message": "bad gateway"}, ErrorClass.UPSTREAM_ERROR),
        ({"code": "402", "message": "no money"}, ErrorClass.OUT_OF_CREDIT),
        ({"code": "rate_limit_exceeded", "message": "slow"}, ErrorClass.RATE_LIMIT),
        ({"code": "insufficient_quota", "message": "pay"}, ErrorClass.OUT_OF_CREDIT),
        ("Model 'foo/bar' not found", ErrorClass.MODEL_NOT_FOUND),
        ({"code": 404, "message": "No endpoints found for foo/bar"}, ErrorClass.MODEL_NOT_FOUND),
        ({"message": "who knows"}, ErrorClass.UPSTREAM_ERROR),
    ],
)
def test_classify_payload(payload: Any, expected: ErrorClass) -> None:
    assert classify_payload(payload)[0] == expected


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == pytest.approx(0.25)
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5", "retry-after-ms": "100"}) == pytest.approx(0.1)
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(7, abs=1)
    assert parse_retry_after({"retry-after": "garbage"}) is None
    assert parse_retry_after({}) is None


def test_backoff_has_full_jitter_within_bounds() -> None:
    import random

    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(0)
    delays = [policy.backoff(5, rng) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert min(delays) < 1.0 and max(delays) > 7.0  # spread over the whole range, not clustered
    assert all(policy.backoff(1, rng, retry_after_s=2.0) >= 2.0 for _ in range(50))


def test_call_record_round_trips_and_ignores_unknown_keys() -> None:
    record = CallRecord(output="x", cost_rub=0.5, attempt_errors=["rate_limit"], attempts=2)
    data = record.to_dict() | {"from_the_future": 1}
    assert CallRecord.from_dict(data) == record


def test_an_attempt_never_outlives_the_total_bound() -> None:
    policy = RetryPolicy(max_attempts=5, max_total_s=0.6, base_delay_s=0.01)
    clock = ManualClock(autojump=False)
    record, router = on_virtual_time("t/hang", clock, advance_s=0.6, deadline_s=30, retry=policy)
    assert record.error == ErrorClass.TIMEOUT
    assert router.hits["t/hang"] == 1
    assert record.total_time_s == 0.6


def test_time_queued_in_before_attempt_is_not_charged_to_the_sample() -> None:
    clock = ManualClock()

    async def slow_slot(attempt: int) -> None:
        await clock.sleep(0.5)  # the runner waiting for a concurrency slot

    # three slots of 0.5 s each outlast the 1.2 s bound; the attempts and waits take 0.04 s at most
    policy = RetryPolicy(max_attempts=5, max_total_s=1.2, base_delay_s=0.01, max_delay_s=0.02)
    record, router = on_virtual_time(
        "t/503-twice", clock, retry=policy, hooks=CallHooks(before_attempt=slow_slot)
    )
    assert record.error is None and record.attempts == 3
    assert clock.now >= 1.5 and record.total_time_s is not None and record.total_time_s <= 0.04


def test_cancelling_a_call_still_settles_the_attempt() -> None:
    settled: list[str | None] = []

    async def after(record: CallRecord, attempt: int) -> None:
        settled.append(record.error)

    async def scenario() -> None:
        async with fake_router() as router, Client(Endpoint(router.base_url, KEY)) as client:
            task = asyncio.create_task(
                client.call(
                    "t/hang", [{"role": "user", "content": "hi"}], {}, hooks=CallHooks(after_attempt=after)
                )
            )
            while not router.hits["t/hang"]:  # cancel once the attempt is really in flight
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert settled == ["cancelled"]


# --------------------------------------------------------------------------------------------
# Thinking


def test_thinking_split_across_deltas_is_kept_apart_and_timed_before_the_answer() -> None:
    record, _, _ = call("t/think-split")
    assert record.output == "Answer: Paris"
    assert record.reasoning == "Ответ: 5. 答案：5"
    assert record.ttft_reasoning_s is not None and record.ttft_s is not None
    assert record.ttft_reasoning_s < record.ttft_s


def test_a_thought_sent_in_two_fields_is_recorded_once() -> None:
    record, _, _ = call("t/reasoning-twice")
    assert record.output == "Paris" and record.reasoning == "Lyon? No."
    assert record.ttft_reasoning_s < record.ttft_s


def test_an_unclosed_thought_is_an_empty_answer_not_an_empty_response() -> None:
    record, router, _ = call("t/thought-only")
    assert record.error is None and router.hits["t/thought-only"] == 1  # not retried, not paid twice
    assert record.output == "" and record.reasoning == "Answer: Lyon" and record.ttft_s is None
