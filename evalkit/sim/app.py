"""The simulator's aiohttp application: routes, auth, billing, faults, streaming, request log.

All mutable state (balance, generation log, attempt counts, stats) belongs to one `SimApp` and is
touched only from its event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from evalkit.client.dialect import PROCESSING_COMMENT
from evalkit.client.messages import message_text
from evalkit.client.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from evalkit.sim import wire
from evalkit.sim.faults import FaultDraw, Faults, draw_fault
from evalkit.sim.gate import Gate
from evalkit.sim.generation import Plan, RequestError, plan
from evalkit.sim.index import SampleIndex
from evalkit.sim.profiles import SimModel

API = "/api/v1"
KEEPALIVE_S = 1.0
"""Seconds between `: PROCESSING` comments while a stream waits for its first token."""
MAX_CHUNKS = 48
MAX_GENERATIONS_KEPT = 200_000
_JSON_HEADERS = {"Content-Type": "application/json", **wire.SIMULATED_HEADER}
_PROCESSING = f"{PROCESSING_COMMENT}\n\n".encode()
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **wire.SIMULATED_HEADER}


@dataclass
class SimConfig:
    """How a simulator behaves. `api_key` None accepts any key; `latency_scale` 0 injects no latency."""

    models: dict[str, SimModel]
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    api_key: str | None = None
    latency_scale: float = 1.0
    request_log: Path | None = None


@dataclass
class Exchange:
    """What happened to one chat request; becomes a request-log line."""

    model: str | None
    body_sha256: str
    stream: bool
    attempt: int = 0
    outcome: str = "ok"
    status: int = 200
    cost_rub: float = 0.0
    generation_id: str | None = None
    completed: bool = False
    sample: str | None = None
    correct: bool | None = None
    ts: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "model": self.model,
            "body_sha256": self.body_sha256,
            "stream": self.stream,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "status": self.status,
            "cost_rub": self.cost_rub,
            "generation_id": self.generation_id,
            "completed": self.completed,
            "sample": self.sample,
            "correct": self.correct,
        }


class Dropped(Exception):
    """The simulator closed the connection on purpose (a `drop_stream` fault)."""


class SimApp:
    """One simulator: its config, sample index and all mutable state."""

    def __init__(self, config: SimConfig, index: SampleIndex) -> None:
        self.config = config
        self.index = index
        self.total_credits = config.faults.credits
        self.total_usage = 0.0
        self.generations: dict[str, tuple[str, Plan, float, bool, float]] = {}
        self.attempts: Counter[str] = Counter()
        self.prefixes: set[tuple[str, str]] = set()  # (model, prompt prefix hash) in the prompt cache
        self.outcomes: Counter[str] = Counter()
        self.lateness_ms: deque[float] = deque(maxlen=20_000)  # injected sleeps: woke up this late
        self.gate = Gate()
        self._log: IO[str] | None = None
        self._created = int(time.time())

    # ----- application -----

    def build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(f"{API}/chat/completions", self.chat)
        app.router.add_get(f"{API}/models", self.models)
        app.router.add_get(f"{API}/credits", self.credits)
        app.router.add_get(f"{API}/generation", self.generation)
        app.router.add_post("/sim/credits", self.admin_credits)
        app.router.add_get("/sim/stats", self.admin_stats)
        app.router.add_post("/sim/gate", self.admin_gate)
        app.on_response_prepare.append(_mark_simulated)
        app.on_startup.append(self._open_log)
        app.on_cleanup.append(self._close_log)
        return app

    async def _open_log(self, app: web.Application) -> None:
        if self.config.request_log is not None:
            self.config.request_log.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.config.request_log.open("a", encoding="utf-8")

    async def _close_log(self, app: web.Application) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def balance(self) -> float:
        return self.total_credits - self.total_usage

    def set_balance(self, balance: float) -> None:
        self.total_credits = self.total_usage + balance

    def stats(self) -> dict[str, Any]:
        return {
            "requests": sum(self.outcomes.values()),
            "outcomes": dict(self.outcomes),
            "billed_rub": self.total_usage,
            "balance_rub": self.balance(),
            "generations": len(self.generations),
            "samples_indexed": len(self.index),
            "latency_lateness_ms": _percentiles(self.lateness_ms),
            "gate": self.gate.state(),
        }

    # ----- auth -----

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return _json_error(401, "No auth credentials found")
        if self.config.api_key is not None and header[7:].strip() != self.config.api_key:
            return _json_error(401, "User not found.")
        return None

    # ----- simple routes -----

    async def models(self, request: web.Request) -> web.Response:
        data = [wire.model_entry(model, self._created) for model in self.config.models.values()]
        return web.Response(body=wire.dumps({"data": data}), headers=_JSON_HEADERS)

    async def credits(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = {"data": {"total_credits": self.total_credits, "total_usage": self.total_usage}}
        return web.Response(body=wire.dumps(body), headers=_JSON_HEADERS)

    async def generation(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        gen_id = request.query.get("id", "")
        kept = self.generations.get(gen_id)
        if kept is None:
            return _json_error(404, f"Generation {gen_id!r} not found")
        return web.Response(
            body=wire.dumps({"data": generation_record(gen_id, *kept)}), headers=_JSON_HEADERS
        )

    async def admin_credits(self, request: web.Request) -> web.Response:
        """POST /sim/credits {"balance": ₽}: set the remaining balance (tests restore credit this way)."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            balance = float((await request.json())["balance"])
        except (ValueError, KeyError, TypeError):
            return _json_error(400, 'expected {"balance": <rubles>}')
        self.set_balance(balance)
        return web.Response(body=wire.dumps(self.stats()), headers=_JSON_HEADERS)

    async def admin_gate(self, request: web.Request) -> web.Response:
        """POST /sim/gate {"hold_after": n} or {"release": true}: see `evalkit.sim.gate`."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            body = await request.json()
            if body.get("release"):
                self.gate.release()
            else:
                self.gate.hold_after(int(body["hold_after"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return _json_error(400, 'expected {"hold_after": <requests>} or {"release": true}')
        return web.Response(body=wire.dumps(self.stats()), headers=_JSON_HEADERS)

    async def admin_stats(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        return web.Response(body=wire.dumps(self.stats()), headers=_JSON_HEADERS)

    # ----- chat completions -----

    async def chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            self.outcomes["unauthorized"] += 1
            return denied
        await self.gate.enter()
        raw = await request.read()
        sha = hashlib.sha256(raw).hexdigest()
        exchange = Exchange(model=None, body_sha256=sha, stream=False, attempt=self.attempts[sha])
        self.attempts[sha] += 1
        try:
            return await self._chat(request, raw, exchange)
        except Dropped:
            return web.Response(status=499)  # never reaches the client: the transport is closed
        except (asyncio.CancelledError, ConnectionError):
            exchange.outcome, exchange.completed = "cancelled", False
            raise
        finally:
            self._record(exchange)

    async def _chat(self, request: web.Request, raw: bytes, exchange: Exchange) -> web.StreamResponse:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._reject(exchange, 400, wire.error(400, "Invalid JSON in request body"), "bad_request")
        exchange.model, exchange.stream = str(body.get("model")), bool(body.get("stream"))
        model = self.config.models.get(exchange.model)
        if model is None:
            message = wire.dumps({"error": f"Model '{body.get('model')}' not found"})
            return self._reject(exchange, 400, message, "unknown_model")
        try:
            planned = self._plan(body, model, exchange)
        except RequestError as exc:
            return self._reject(exchange, exc.status, wire.error(exc.status, exc.message), "bad_request")
        if planned.usage.cost > self.balance():
            message = wire.error(402, "Insufficient credits. Add more using https://routerai.ru/pay")
            return self._reject(exchange, 402, message, "no_credits")
        fault = draw_fault(self.config.faults, self.config.seed, exchange.body_sha256, exchange.attempt)
        return await self._respond(request, model, planned, fault, exchange)

    def _plan(self, body: dict[str, Any], model: SimModel, exchange: Exchange) -> Plan:
        planned = plan(
            body,
            model,
            self.index,
            seed=self.config.seed,
            body_sha256=exchange.body_sha256,
            attempt=exchange.attempt,
            latency_scale=self.config.latency_scale,
            **self._cached_prefix(body, model),
        )
        if planned.item is not None:
            exchange.sample = f"{planned.item.task.name}/{planned.item.sample.id}"
            exchange.correct = planned.correct
        key = f"{self.config.seed}|{exchange.body_sha256}|{exchange.attempt}"
        exchange.generation_id = (
            f"gen-{int(time.time())}-{hashlib.blake2b(key.encode(), digest_size=10).hexdigest()}"
        )
        return planned

    def _cached_prefix(self, body: dict[str, Any], model: SimModel) -> dict[str, int]:
        """Prompt tokens read from the cache: every message before the last, once this model has seen
        that prefix before and it is long enough to cache. The first request writes it (reported as
        `cache_write_tokens` by a model with a cache-write price)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            return {}
        prefix = messages[:-1]
        tokens = sum(
            MESSAGE_OVERHEAD_TOKENS + estimate_tokens(message_text(m)) for m in prefix if isinstance(m, dict)
        )
        if tokens < model.cache_min_tokens:
            return {}
        digest = hashlib.sha256(json.dumps(prefix, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        if (model.id, digest) in self.prefixes:
            return {"cached_tokens": tokens}
        self.prefixes.add((model.id, digest))
        return {} if model.cache_write_price is None else {"cache_write_tokens": tokens}

    def _reject(self, exchange: Exchange, status: int, body: bytes, outcome: str) -> web.Response:
        exchange.status, exchange.outcome, exchange.generation_id = status, outcome, None
        exchange.sample = exchange.correct = None
        return web.Response(status=status, body=body, headers=_JSON_HEADERS)

    async def _respond(
        self, request: web.Request, model: SimModel, planned: Plan, fault: FaultDraw, exchange: Exchange
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        kind = fault.kind
        if kind == "hang":
            await asyncio.sleep(self.config.faults.hang_s)
            exchange.outcome = "hang"
        elif kind in ("rate_limit", "server_error", "error_in_200") or (
            kind == "error_in_stream" and not exchange.stream
        ):
            return self._fault_response(fault, exchange)
        elif kind == "drop_stream" and not exchange.stream:
            exchange.outcome = "drop_stream"
            _drop(request)
        if exchange.stream:
            return await self._stream(request, model, planned, fault, exchange, started)
        deadline = started + planned.ttft_s + planned.generation_s
        await _sleep_until(deadline)
        if planned.ttft_s + planned.generation_s > 0:
            self.lateness_ms.append((loop.time() - deadline) * 1000)
        self._bill(model, planned, exchange, loop.time() - started, streamed=False)
        return web.Response(
            body=wire.completion(
                exchange.generation_id or "",
                model.id,
                int(time.time()),
                planned.text,
                planned.finish_reason,
                planned.usage,
                planned.reasoning,
            ),
            headers=_JSON_HEADERS,
        )

    def _fault_response(self, fault: FaultDraw, exchange: Exchange) -> web.Response:
        kind = "error_in_200" if fault.kind == "error_in_stream" else fault.kind
        exchange.outcome = str(kind)
        exchange.generation_id = None
        if kind == "rate_limit":
            exchange.status = 429
            headers = dict(_JSON_HEADERS)
            hint = self.config.faults.retry_after_s
            if fault.variant < self.config.faults.retry_after_share / 2:
                headers["Retry-After"] = str(max(1, round(hint)))
            elif fault.variant < self.config.faults.retry_after_share:
                headers["retry-after-ms"] = str(round(hint * 1000))
            body = wire.error(429, "Rate limit exceeded: too many requests, please retry shortly")
            return web.Response(status=429, body=body, headers=headers)
        if kind == "server_error":
            status = (500, 502, 503)[int(fault.variant * 3)]
            exchange.status = status
            message = {
                500: "Internal Server Error",
                502: "Provider returned error",
                503: "Service Unavailable",
            }[status]
            return web.Response(status=status, body=wire.error(status, message), headers=_JSON_HEADERS)
        exchange.status = 200
        if fault.variant < 0.5:  # RouterAI wraps the upstream error as a JSON string
            inner = json.dumps(
                {"error": {"code": 429, "message": "Provider rate limit exceeded, retry later"}}
            )
            body = wire.dumps({"error": inner})
        else:
            body = wire.error(502, "Upstream provider returned an invalid response")
        return web.Response(status=200, body=body, headers=_JSON_HEADERS)

    async def _stream(
        self,
        request: web.Request,
        model: SimModel,
        planned: Plan,
        fault: FaultDraw,
        exchange: Exchange,
        started: float,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(request)
        await response.write(_PROCESSING)
        loop = asyncio.get_running_loop()
        first_token = started + planned.ttft_s
        while first_token - loop.time() > KEEPALIVE_S:
            await asyncio.sleep(KEEPALIVE_S)
            await response.write(_PROCESSING)
        await _sleep_until(first_token)
        # the thought streams first as `reasoning` deltas, then the answer as `content`
        thought = split_text(planned.reasoning) if planned.reasoning else []
        pieces = [("reasoning", p) for p in thought] + [("content", p) for p in split_text(planned.text)]
        gen_id, created = exchange.generation_id or "", int(time.time())
        cut = int(fault.cut * len(pieces)) if fault.kind in ("error_in_stream", "drop_stream") else -1
        for i, (kind, piece) in enumerate(pieces):
            if i == cut:
                return await self._stream_fault(request, response, fault, exchange, model)
            delta = {"role": "assistant", kind: piece} if i == 0 else {kind: piece}
            await response.write(wire.chunk(gen_id, model.id, created, delta))
            await _sleep_until(first_token + planned.generation_s * (i + 1) / len(pieces))
        await response.write(wire.chunk(gen_id, model.id, created, {"content": ""}, planned.finish_reason))
        self._bill(model, planned, exchange, loop.time() - started, streamed=True)
        final = wire.chunk(gen_id, model.id, created, {"content": ""}, planned.finish_reason, planned.usage)
        await response.write(final + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _stream_fault(
        self,
        request: web.Request,
        response: web.StreamResponse,
        fault: FaultDraw,
        exchange: Exchange,
        model: SimModel,
    ) -> web.StreamResponse:
        exchange.outcome = str(fault.kind)
        if fault.kind == "drop_stream":
            _drop(request)
        event = wire.stream_error(
            exchange.generation_id or "", model.id, int(time.time()), 502, "Provider disconnected"
        )
        await response.write(event)
        await response.write_eof()
        return response

    def _bill(
        self, model: SimModel, planned: Plan, exchange: Exchange, elapsed_s: float, *, streamed: bool
    ) -> None:
        usage = planned.usage
        self.total_usage += usage.cost
        exchange.cost_rub, exchange.completed = usage.cost, True
        # kept compact; the JSON record is built only when someone asks (GET /generation)
        self.generations[exchange.generation_id or ""] = (model.id, planned, elapsed_s, streamed, time.time())
        if len(self.generations) > MAX_GENERATIONS_KEPT:
            del self.generations[next(iter(self.generations))]

    def _record(self, exchange: Exchange) -> None:
        self.outcomes[exchange.outcome] += 1
        if self._log is not None:
            self._log.write(json.dumps(exchange.to_json(), ensure_ascii=False) + "\n")
            self._log.flush()


def generation_record(
    gen_id: str, model: str, planned: Plan, elapsed_s: float, streamed: bool, finished: float
) -> dict[str, Any]:
    """A past generation as `GET /generation?id=` returns it (times in ms, money in ₽)."""
    usage = planned.usage
    return {
        "id": gen_id,
        "model": model,
        "provider_name": wire.PROVIDER,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "total_cost": usage.cost,
        "usage": usage.cost,
        "latency": round(elapsed_s * 1000),
        "generation_time": round(planned.generation_s * 1000),
        "moderation_latency": 0,
        "tokens_prompt": usage.prompt_tokens,
        "tokens_completion": usage.completion_tokens,
        "native_tokens_prompt": usage.prompt_tokens,
        "native_tokens_completion": usage.completion_tokens,
        "native_tokens_cached": usage.cached_tokens,
        "native_tokens_reasoning": usage.reasoning_tokens,
        "num_media_prompt": usage.images,
        "finish_reason": planned.finish_reason,
        "native_finish_reason": planned.finish_reason,
        "streamed": streamed,
        "cancelled": False,
        "is_byok": False,
    }


def split_text(text: str, max_chunks: int = MAX_CHUNKS) -> list[str]:
    """The reply cut into stream deltas of a few words each (at least one, possibly empty, piece)."""
    if not text:
        return [""]
    words = text.split(" ")
    per_chunk = max(2, -(-len(words) // max_chunks))
    pieces = [" ".join(words[i : i + per_chunk]) for i in range(0, len(words), per_chunk)]
    return [piece + " " for piece in pieces[:-1]] + [pieces[-1]]


def _percentiles(values: deque[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


async def _sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


def _drop(request: web.Request) -> None:
    """Close the connection at once, as a router whose upstream died would."""
    if request.transport is not None:
        request.transport.abort()
    raise Dropped()


def _json_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=wire.error(status, message), headers=_JSON_HEADERS)


async def _mark_simulated(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Evalkit-Simulated"] = "1"
