"""One model call through the official `openai` SDK: streaming, TTFT, usage, cost, error classes.

`Client.call` performs attempts until success, a non-retryable error or the retry policy's bounds.
The SDK itself retries nothing (`max_retries=0`): the router reports errors the SDK does not
understand (inside HTTP 200 bodies and streams), and a blindly retried POST can start a second paid
generation, so classification and retries live here. What the router's payloads mean (errors inside
HTTP 200 and streams, `usage.cost`, SSE comments) is read with the router dialect (`dialect/`): a
response by `sse.py`, an exception by `failures.py`; this module runs the attempts.

Timing and money semantics of a `CallRecord`:

* `ttft_s` is measured at the first non-empty answer delta of the stream (not at the response
  headers: the router sends `: PROCESSING` comment lines long before the first token), and
  `ttft_reasoning_s` at the first thinking delta (`delta.reasoning`, or content inside `<think>`).
  With `stream=False` there is no first token to observe, so both and `output_tokens_per_s` are None.
* `output` is the answer only: thinking (a `reasoning` field or `<think>` blocks in the content) is
  kept in `reasoning` and never reaches a scorer (`evalkit/client/dialect/reasoning.py` draws the line).
* token counts and timings describe the final attempt; `cost_rub` adds up every attempt whose
  cost the router reported, because that is what the sample cost you.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from evalkit.client.dialect.recognise import ERROR_FINISH_REASON, STREAM_OPTIONS
from evalkit.client.endpoint import Endpoint
from evalkit.client.errors import ErrorClass, is_retryable
from evalkit.client.failures import CallFailed, classify_exception, clean_message
from evalkit.client.sse import AttemptState, json_chunk, read_body, read_chunk, sse_data, usage_fields
from evalkit.common.clock import SYSTEM_CLOCK, Clock
from evalkit.common.errors import ConfigError

if TYPE_CHECKING:
    import openai

    from evalkit.client.dialect.pricing import CostEstimate, PriceCard


@dataclass
class CallRecord:
    """What one call (after its retries) produced. Times in seconds, money in ₽.

    Token counts and timings describe the final attempt; `cost_rub` adds up all attempts.
    `attempt_errors` lists the error class of every failed attempt, in order.
    """

    output: str | None = None
    finish_reason: str | None = None
    generation_id: str | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    output_tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cost_rub: float | None = None
    error: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    attempts: int = 1
    reasoning_tokens: int | None = None
    reasoning: str | None = None
    ttft_reasoning_s: float | None = None
    cache_write_tokens: int | None = None
    provider: str | None = None
    retry_after_s: float | None = None
    attempt_errors: list[str] = field(default_factory=list)
    total_time_s: float | None = None

    @property
    def ok(self) -> bool:
        """True when the call produced a usable response."""
        return self.error is None

    @property
    def truncated(self) -> bool:
        """The reply stopped at `max_tokens` (`finish_reason=length`): still the model's answer."""
        return self.error is None and self.finish_reason == "length"

    def estimate(self, price: PriceCard | None, images: int = 0) -> CostEstimate | None:
        """Our price-card estimate of what this call used (None without a card or without usage)."""
        if price is None or self.prompt_tokens is None:
            return None
        return price.estimate(
            self.prompt_tokens,
            self.completion_tokens or 0,
            images=images,
            cached_tokens=self.cached_tokens or 0,
            reasoning_tokens=self.reasoning_tokens or 0,
            cache_write_tokens=self.cache_write_tokens or 0,
        )

    def to_dict(self) -> dict[str, Any]:
        # every field is a plain value or a list of str, so a shallow copy suffices; `asdict`'s
        # recursive deep copy cost ~27 µs, three times per sample
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        data["attempt_errors"] = list(self.attempt_errors)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        """The inverse of `to_dict`; unknown keys (from newer or older versions) are ignored."""
        return cls(**{k: v for k, v in data.items() if k in _RECORD_FIELDS})


_RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and pacing of retries: exponential backoff with full jitter, Retry-After honoured.

    `max_total_s` bounds one sample's call (its attempts and backoff waits, not the time the runner
    holds it in `before_attempt`); an attempt never gets a deadline past it, and a wait that would
    end past it is not started.
    """

    max_attempts: int = 6
    max_total_s: float = 900.0
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def backoff(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        jittered = rng.uniform(0.0, cap)
        if retry_after_s is not None:
            # the server's word is a floor; a little jitter keeps parallel workers from re-syncing
            return retry_after_s + rng.uniform(0.0, min(cap, 0.1 * retry_after_s + 0.05))
        return jittered


@dataclass(frozen=True)
class CallHooks:
    """Optional async callbacks the runner supplies to one `Client.call`.

    before_attempt(attempt): acquire a concurrency slot / reserve budget; may raise to abort.
    after_attempt(record, attempt): release the slot and settle that attempt's cost; called for
        every attempt that started, failed ones included (the record covers that attempt only).
    on_backoff(delay_s, record): about to wait `delay_s` after the failed attempt `record`.
    """

    before_attempt: Callable[[int], Awaitable[None]] | None = None
    after_attempt: Callable[[CallRecord, int], Awaitable[None]] | None = None
    on_backoff: Callable[[float, CallRecord], Awaitable[None]] | None = None


class Client:
    """Calls one OpenAI-compatible endpoint through `openai.AsyncOpenAI` with our own retries.

    Use as `async with Client(endpoint) as client: record = await client.call(model, messages, params)`
    or call `await client.aclose()` when done.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        stream: bool = True,
        transport: str = "aiohttp",
        deadline_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        seed: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        import openai

        if transport not in ("aiohttp", "httpx"):
            raise ConfigError(f"unknown transport {transport!r}: use 'aiohttp' or 'httpx'", where="transport")
        self.endpoint = endpoint
        self.stream = stream
        self.transport = transport
        self.deadline_s = deadline_s
        self.retry = retry or RetryPolicy()
        self.clock = clock  # backoff waits, deadlines and timings (a ManualClock in tests)
        self._rng = random.Random(seed)
        http_client = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
        self._client = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            max_retries=0,
            timeout=openai.Timeout(deadline_s, connect=connect_timeout_s),
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r}, stream={self.stream}, transport={self.transport!r})"

    @property
    def sdk(self) -> openai.AsyncOpenAI:
        """The underlying SDK client (for GET helpers such as the catalog)."""
        return self._client

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    close = aclose

    async def call(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        *,
        hooks: CallHooks | None = None,
    ) -> CallRecord:
        """Run attempts until success, a non-retryable error, or the retry bounds; never raises for API errors.

        Exceptions raised by `hooks` propagate (that is how the runner aborts a call).
        """
        hooks = hooks or CallHooks()
        history: list[CallRecord] = []
        spent = 0.0  # attempts and backoff waits; time queued in `before_attempt` is the runner's, not ours
        while True:
            attempt = len(history) + 1
            if hooks.before_attempt:
                await hooks.before_attempt(attempt)
            attempt_started = self.clock.monotonic()
            deadline = max(0.001, min(self.deadline_s, self.retry.max_total_s - spent))
            record = await self._guarded_attempt(model, messages, params or {}, deadline, hooks, attempt)
            spent += self.clock.monotonic() - attempt_started
            history.append(record)
            delay = self._next_delay(record, attempt, spent)
            if delay is None:
                return _combine(history, spent)
            if hooks.on_backoff:
                await hooks.on_backoff(delay, record)
            await self.clock.sleep(delay)
            spent += delay

    async def _guarded_attempt(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        deadline_s: float,
        hooks: CallHooks,
        attempt: int,
    ) -> CallRecord:
        """One attempt; `after_attempt` runs even when the attempt is cancelled."""
        try:
            record = await self._attempt(model, messages, params, deadline_s)
        except asyncio.CancelledError:
            if hooks.after_attempt:
                await hooks.after_attempt(CallRecord(error=ErrorClass.CANCELLED, attempts=attempt), attempt)
            raise
        record.attempts = attempt
        if hooks.after_attempt:
            await hooks.after_attempt(record, attempt)
        return record

    def _next_delay(self, record: CallRecord, attempt: int, spent_s: float) -> float | None:
        if not is_retryable(record.error) or attempt >= self.retry.max_attempts:
            return None
        delay = self.retry.backoff(attempt, self._rng, record.retry_after_s)
        if spent_s + delay >= self.retry.max_total_s:
            return None
        return delay

    async def _attempt(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], deadline_s: float
    ) -> CallRecord:
        state = AttemptState(started=self.clock.monotonic(), clock=self.clock)
        try:
            async with self.clock.timeout(deadline_s):
                if self.stream:
                    await self._streamed(model, messages, params, state)
                else:
                    await self._whole(model, messages, params, state)
        except TimeoutError:
            failure = CallFailed(
                ErrorClass.TIMEOUT, f"no complete response within the {deadline_s:.3g} s deadline"
            )
            return self._failed(state, failure)
        except Exception as exc:  # classified below; anything unexpected is still a recorded error
            return self._failed(state, classify_exception(exc, streaming_started=state.streaming_started))
        return self._succeeded(state)

    async def _post(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        """POST /chat/completions through the SDK's own HTTP client; the raw response comes back.

        The SDK's typed `create()` re-walks every message and parameter to transform them (~0.3 ms a
        request, a quarter of its cost); our body is already plain JSON, so it goes as it is.
        Status errors still raise the SDK's exceptions.
        """
        import httpx2

        body = {**params, "model": model, "messages": messages}
        if self.stream:
            body.update(stream=True, stream_options=STREAM_OPTIONS)
        else:
            body.pop("stream", None)
        return await self._client.post(
            "/chat/completions", body=body, cast_to=httpx2.Response, stream=self.stream
        )

    async def _streamed(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], state: AttemptState
    ) -> None:
        """Read the event stream ourselves: the SDK's iterator raises on an error chunk and drops the
        usage (the cost) that the same chunk carries."""
        response = await self._post(model, messages, params)
        state.http_status = response.status_code
        state.streaming_started = True  # from here on, a cut connection is a broken stream
        try:
            if "json" in response.headers.get("content-type", ""):
                # the router answered a streaming request with a plain JSON body (an error, usually)
                read_body(await response.aread(), state)
                return
            async for data in sse_data(response):
                if data.strip() == "[DONE]":
                    state.done = True
                    break
                read_chunk(json_chunk(data), state)
        finally:
            await response.aclose()
        if state.finish_reason is None and not state.done:
            raise CallFailed(ErrorClass.STREAM_ERROR, "the stream ended without a finish_reason or [DONE]")

    async def _whole(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], state: AttemptState
    ) -> None:
        response = await self._post(model, messages, params)
        state.http_status = response.status_code
        read_body(await response.aread(), state)

    def _succeeded(self, state: AttemptState) -> CallRecord:
        record = self._base_record(state)
        if not record.output and not record.reasoning and not record.completion_tokens:
            failure = CallFailed(
                ErrorClass.EMPTY_RESPONSE, "the response had no content and no completion tokens"
            )
            return self._failed(state, failure)
        if record.finish_reason == ERROR_FINISH_REASON:
            return self._failed(
                state, CallFailed(ErrorClass.STREAM_ERROR, "the stream ended with finish_reason=error")
            )
        return record

    def _failed(self, state: AttemptState, failure: CallFailed) -> CallRecord:
        record = self._base_record(state)
        record.error = str(failure.error)
        record.error_message = clean_message(failure.message, self.endpoint.api_key)
        record.http_status = failure.status if failure.status is not None else state.http_status
        record.retry_after_s = failure.retry_after_s
        return record

    def _base_record(self, state: AttemptState) -> CallRecord:
        latency = self.clock.monotonic() - state.started
        usage = usage_fields(state.usage)
        output, thinking, first_answer, first_thought = state.answer()
        record = CallRecord(
            output=output,
            reasoning=thinking,
            finish_reason=state.finish_reason,
            generation_id=state.generation_id,
            ttft_s=first_answer if self.stream else None,
            ttft_reasoning_s=first_thought if self.stream else None,
            latency_s=latency,
            http_status=state.http_status,
            provider=state.provider,
            **usage,
        )
        record.output_tokens_per_s = _tokens_per_s(record)
        return record


def _tokens_per_s(record: CallRecord) -> float | None:
    starts = [t for t in (record.ttft_reasoning_s, record.ttft_s) if t is not None]
    if not starts or record.latency_s is None or not record.completion_tokens:
        return None
    generating = record.latency_s - min(starts)  # thinking tokens are generated output too
    return record.completion_tokens / generating if generating > 0 else None


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _combine(history: list[CallRecord], total_s: float) -> CallRecord:
    """The final record: the last attempt's result, with money summed over all attempts."""
    last = history[-1]
    return replace(
        last,
        attempts=len(history),
        cost_rub=_sum([r.cost_rub for r in history]),
        attempt_errors=[r.error for r in history if r.error],
        total_time_s=total_s,
    )
