"""One model call through the official `openai` SDK: streaming, TTFT, usage, cost, error classes.

`Client.call` performs attempts until success, a non-retryable error or the retry policy's bounds.
The SDK itself retries nothing (`max_retries=0`): the router reports errors the SDK does not
understand (inside HTTP 200 bodies and streams), and a blindly retried POST can start a second paid
generation, so classification and retries live here. What the router's payloads mean (errors inside
HTTP 200 and streams, `usage.cost`, SSE comments) is read with the router dialect (`evalkit/dialect/`).

Timing and money semantics of a `CallRecord`:

* `ttft_s` is measured at the first non-empty answer delta of the stream (not at the response
  headers: the router sends `: PROCESSING` comment lines long before the first token), and
  `ttft_reasoning_s` at the first thinking delta (`delta.reasoning`, or content inside `<think>`).
  With `stream=False` there is no first token to observe, so both and `output_tokens_per_s` are None.
* `output` is the answer only: thinking (a `reasoning` field or `<think>` blocks in the content) is
  kept in `reasoning` and never reaches a scorer (`evalkit/dialect/reasoning.py` draws the line).
* token counts and timings describe the final attempt; `cost_rub` adds up every attempt whose
  cost the router reported, because that is what the sample cost you.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from evalkit.clock import SYSTEM_CLOCK, Clock
from evalkit.dialect import (  # re-exported (noqa) names stay importable from here
    ERROR_FINISH_REASON,
    STREAM_OPTIONS,
    classify_http_error,
    classify_payload,  # noqa: F401
    classify_stream_payload,
    error_in_body,
    error_in_choice,
    error_in_chunk,
    parse_error_payload,  # noqa: F401
    sse_event,
    usage_cost,
)
from evalkit.dialect.reasoning import (
    cache_write_tokens,
    cached_tokens,
    reasoning_in,
    reasoning_tokens,
    split_thinking,
)
from evalkit.error_classes import (
    ErrorClass,
    Severity,  # noqa: F401
    is_model_fatal,  # noqa: F401
    is_retryable,
    is_run_fatal,  # noqa: F401
    severity,  # noqa: F401
)
from evalkit.errors import ConfigError
from evalkit.redact import url_without_credentials
from evalkit.text import join_pairs

if TYPE_CHECKING:
    import openai

DEFAULT_BASE_URL = "https://routerai.ru/api/v1"
KEY_ENV_VARS = ("ROUTERAI_API_KEY", "OPENAI_API_KEY")
MESSAGE_LIMIT = 500


# --------------------------------------------------------------------------------------------
# Endpoint


@dataclass(frozen=True)
class Endpoint:
    """Where requests go and the key that pays for them. The key is never shown (repr, str, manifests)."""

    base_url: str
    api_key: str = field(repr=False)
    simulated: bool = False
    identity: str | None = None  # what its answers depend on, when not its URL (a simulator's seed)

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.safe_url()!r}, api_key='***', simulated={self.simulated})"

    __str__ = __repr__

    @classmethod
    def from_env(
        cls, base_url: str | None = None, api_key_env: str | None = None, *, required: bool = True
    ) -> Endpoint:
        """Base URL from the argument, else `EVALKIT_BASE_URL`, else RouterAI; key from the environment.

        `api_key_env` names the one variable to read instead of ROUTERAI_API_KEY / OPENAI_API_KEY.
        With `required=False` a missing key gives an Endpoint with an empty key (enough for a
        public `GET /models`); otherwise it is a ConfigError.
        """
        from evalkit.run_config import check_env_name

        try:
            check_env_name(api_key_env)
        except ValueError as exc:
            raise ConfigError(str(exc), where="--api-key-env") from None
        url = base_url or os.environ.get("EVALKIT_BASE_URL") or DEFAULT_BASE_URL
        names = (api_key_env,) if api_key_env else KEY_ENV_VARS
        key = next((os.environ[n] for n in names if os.environ.get(n)), None)
        if key is None and not required:
            return cls(base_url=url, api_key="")
        if key is None:
            wanted = api_key_env or "ROUTERAI_API_KEY (or OPENAI_API_KEY)"
            raise ConfigError(
                f"no API key: set {wanted}, or use --sim to run on the bundled simulator",
                where="environment",
            )
        return cls(base_url=url, api_key=key)

    @functools.cached_property  # asked once per sample; urlsplit each time cost ~8 µs
    def cache_id(self) -> str:
        """What identifies this endpoint in response-cache keys: `identity` when given, else the key-free
        URL ("sim" for a simulator, whose port changes every run)."""
        if self.identity is not None:
            return self.identity
        return "sim" if self.simulated else self.safe_url()

    def safe_url(self) -> str:
        """`base_url` without userinfo, query or fragment, and with a key in its path masked: safe to
        write to manifests and logs."""
        return url_without_credentials(self.base_url, self.api_key)


# --------------------------------------------------------------------------------------------
# Records, policy, hooks


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


# --------------------------------------------------------------------------------------------
# Classification of exceptions (router payloads: `evalkit/dialect/`)


class _CallFailed(Exception):
    """An attempt failed in a classified way; carries what is known of that attempt."""

    def __init__(
        self,
        error: ErrorClass,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP-date); else None."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _clean(text: str, secret: str) -> str:
    """Bounded, key-free text for error messages."""
    if secret:
        text = text.replace(secret, "***")
    text = re.sub(r"(?i)bearer\s+\S+", "Bearer ***", text)
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify_exception(exc: BaseException, *, streaming_started: bool) -> _CallFailed:
    """Classify an exception raised by the SDK or the transport during one attempt."""
    import openai

    if isinstance(exc, _CallFailed):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(exc)
    disconnected = any(_is_disconnect(e) for e in _chain(exc))
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
        # an error chunk inside the stream: the SDK raises APIError with the chunk's `error`
        cls, code, message = classify_stream_payload(exc.body if exc.body is not None else exc.message)
        return _CallFailed(cls, f"error in stream: {message}", status=code)
    timed_out = isinstance(exc, openai.APITimeoutError | TimeoutError) and not disconnected
    if timed_out:
        return _CallFailed(ErrorClass.TIMEOUT, "the server did not answer in time (SDK read/connect timeout)")
    kind = ErrorClass.STREAM_ERROR if streaming_started else ErrorClass.CONNECTION
    where = "the stream was cut mid-way" if streaming_started else "connection failed"
    detail = "; ".join(f"{type(e).__name__}: {e}" for e in _chain(exc)[:3])
    return _CallFailed(kind, f"{where} ({detail})")


_DISCONNECT_NAMES = frozenset(
    {
        "ServerDisconnectedError",
        "ClientPayloadError",
        "RemoteProtocolError",
        "ReadError",
        "ConnectError",
        "EndOfStream",
    }
)


def _is_disconnect(exc: BaseException) -> bool:
    """A refused, reset or cut connection, as opposed to a timeout.

    The SDK's aiohttp transport maps every aiohttp connection error to `ConnectTimeout`, so the
    original exception further down the chain is what tells a refused connection from a slow one.
    """
    if isinstance(exc, TimeoutError):
        return False
    return isinstance(exc, OSError) or type(exc).__name__ in _DISCONNECT_NAMES


def _status_failure(exc: openai.APIStatusError) -> _CallFailed:
    status = exc.status_code
    try:
        body_text = exc.response.text
    except Exception:  # the body may be unreadable after a broken stream
        body_text = ""
    cls, _, message = classify_http_error(status, exc.body if exc.body is not None else body_text)
    message = message or body_text or exc.message
    retry_after = parse_retry_after(exc.response.headers)
    return _CallFailed(cls, f"HTTP {status}: {message}", status=status, retry_after_s=retry_after)


# --------------------------------------------------------------------------------------------
# The client


@dataclass
class _Attempt:
    """Mutable state of one attempt while its response streams in."""

    started: float
    clock: Clock = SYSTEM_CLOCK
    parts: list[str] = field(default_factory=list)
    part_times: list[float] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    ttft_reasoning_s: float | None = None
    finish_reason: str | None = None
    generation_id: str | None = None
    usage: Any = None
    provider: str | None = None
    streaming_started: bool = False
    done: bool = False
    http_status: int | None = None

    def content(self, text: str | None) -> None:
        if text:
            self.part_times.append(self.clock.monotonic() - self.started)
            self.parts.append(text)

    def reasoning(self, text: str) -> None:
        if text:
            if self.ttft_reasoning_s is None:
                self.ttft_reasoning_s = self.clock.monotonic() - self.started
            self.thoughts.append(text)

    def answer(self) -> tuple[str | None, str | None, float | None, float | None]:
        """(answer, thinking, time to first answer token, time to first thinking token)."""
        content = "".join(self.parts)
        split = split_thinking(content)
        thinking = join_pairs(
            "".join(self.thoughts) + ("\n" if self.thoughts and split.thinking else "") + split.thinking
        )
        first_thought = self.ttft_reasoning_s
        if split.thinking and self.part_times:
            first_thought = min(first_thought or self.part_times[0], self.part_times[0])
        first_answer = None
        offset = 0
        for text, at in zip(self.parts, self.part_times, strict=True):
            offset += len(text)
            if offset > split.answer_start:
                first_answer = at
                break
        output = join_pairs(split.answer) if self.parts or self.finish_reason else None
        return output, thinking or None, first_answer, first_thought


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
        state = _Attempt(started=self.clock.monotonic(), clock=self.clock)
        try:
            async with self.clock.timeout(deadline_s):
                if self.stream:
                    await self._streamed(model, messages, params, state)
                else:
                    await self._whole(model, messages, params, state)
        except TimeoutError:
            failure = _CallFailed(
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
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], state: _Attempt
    ) -> None:
        """Read the event stream ourselves: the SDK's iterator raises on an error chunk and drops the
        usage (the cost) that the same chunk carries."""
        response = await self._post(model, messages, params)
        state.http_status = response.status_code
        state.streaming_started = True  # from here on, a cut connection is a broken stream
        try:
            if "json" in response.headers.get("content-type", ""):
                # the router answered a streaming request with a plain JSON body (an error, usually)
                _read_body(await response.aread(), state)
                return
            async for data in _sse_data(response):
                if data.strip() == "[DONE]":
                    state.done = True
                    break
                _read_chunk(_json_chunk(data), state)
        finally:
            await response.aclose()
        if state.finish_reason is None and not state.done:
            raise _CallFailed(ErrorClass.STREAM_ERROR, "the stream ended without a finish_reason or [DONE]")

    async def _whole(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], state: _Attempt
    ) -> None:
        response = await self._post(model, messages, params)
        state.http_status = response.status_code
        _read_body(await response.aread(), state)

    def _succeeded(self, state: _Attempt) -> CallRecord:
        record = self._base_record(state)
        if not record.output and not record.reasoning and not record.completion_tokens:
            failure = _CallFailed(
                ErrorClass.EMPTY_RESPONSE, "the response had no content and no completion tokens"
            )
            return self._failed(state, failure)
        if record.finish_reason == ERROR_FINISH_REASON:
            return self._failed(
                state, _CallFailed(ErrorClass.STREAM_ERROR, "the stream ended with finish_reason=error")
            )
        return record

    def _failed(self, state: _Attempt, failure: _CallFailed) -> CallRecord:
        record = self._base_record(state)
        record.error = str(failure.error)
        record.error_message = _clean(failure.message, self.endpoint.api_key)
        record.http_status = failure.status if failure.status is not None else state.http_status
        record.retry_after_s = failure.retry_after_s
        return record

    def _base_record(self, state: _Attempt) -> CallRecord:
        latency = self.clock.monotonic() - state.started
        usage = _usage_fields(state.usage)
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


# --------------------------------------------------------------------------------------------
# Reading responses


async def _sse_data(response: Any) -> AsyncIterator[str]:
    """The `data` of each server-sent event, read in the router's dialect."""
    pending: list[str] = []
    async for line in response.aiter_lines():
        if (data := sse_event(line, pending)) is not None:
            yield data
    if pending:
        yield "\n".join(pending)


def _json_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise _CallFailed(ErrorClass.STREAM_ERROR, f"stream event is not JSON: {data[:300]!r}") from None
    if not isinstance(chunk, dict):
        raise _CallFailed(ErrorClass.STREAM_ERROR, f"stream event is not a JSON object: {data[:300]!r}")
    return chunk


def _read_chunk(chunk: dict[str, Any], state: _Attempt) -> None:
    state.usage = chunk.get("usage") or state.usage
    if (error := error_in_chunk(chunk)) is not None:
        raise _CallFailed(error.error_class, f"error in stream: {error.message}", status=error.code)
    state.generation_id = chunk.get("id") or state.generation_id
    state.provider = chunk.get("provider") or state.provider
    for choice in chunk.get("choices") or []:
        delta = (choice or {}).get("delta") or {}
        state.reasoning(reasoning_in(delta))
        state.content(delta.get("content"))
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
        if (error := error_in_choice(choice)) is not None:
            raise _CallFailed(
                error.error_class, f"error in stream choice: {error.message}", status=error.code
            )


def _read_body(body: bytes, state: _Attempt) -> None:
    """A whole JSON response (non-streaming, or a JSON answer to a streaming request)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise _CallFailed(ErrorClass.UPSTREAM_ERROR, f"response is not JSON: {body[:300]!r}") from None
    if not isinstance(data, dict):
        raise _CallFailed(ErrorClass.UPSTREAM_ERROR, f"response is not a JSON object: {str(data)[:300]}")
    state.usage = data.get("usage") or state.usage
    if (error := error_in_body(data)) is not None:
        raise _CallFailed(error.error_class, f"error in HTTP 200 body: {error.message}", status=error.code)
    state.generation_id = data.get("id") or state.generation_id
    state.provider = data.get("provider") or state.provider
    choices = data.get("choices") or []
    if choices:
        choice = choices[0] or {}
        message = choice.get("message") or {}
        state.reasoning(reasoning_in(message))
        state.content(message.get("content"))
        if not state.parts and "content" in message:
            state.parts.append("")
            state.part_times.append(0.0)
        state.finish_reason = choice.get("finish_reason")
        if (error := error_in_choice(choice)) is not None:
            raise _CallFailed(error.error_class, f"error in choice: {error.message}", status=error.code)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        value = (getattr(obj, "model_extra", None) or {}).get(name)
    return value


def _usage_fields(usage: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": _get(usage, "prompt_tokens"),
        "completion_tokens": _get(usage, "completion_tokens"),
        "cached_tokens": cached_tokens(usage),
        "cache_write_tokens": cache_write_tokens(usage),
        "reasoning_tokens": reasoning_tokens(usage),
        "cost_rub": usage_cost(usage),
    }


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
