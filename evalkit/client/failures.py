"""Why an attempt failed: an exception from the SDK or the transport, classified into an error class.

The router's payloads (errors inside HTTP 200 bodies and streams) are read by the dialect
(`evalkit/client/dialect/`); this module maps what the SDK raises, and the `Retry-After` headers.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import TYPE_CHECKING, Any

from evalkit.client.dialect.recognise import classify_http_error, classify_stream_payload
from evalkit.client.errors import ErrorClass

if TYPE_CHECKING:
    import openai

MESSAGE_LIMIT = 500


class CallFailed(Exception):
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


def clean_message(text: str, secret: str) -> str:
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


def classify_exception(exc: BaseException, *, streaming_started: bool) -> CallFailed:
    """Classify an exception raised by the SDK or the transport during one attempt."""
    import openai

    if isinstance(exc, CallFailed):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(exc)
    disconnected = any(_is_disconnect(e) for e in _chain(exc))
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
        # an error chunk inside the stream: the SDK raises APIError with the chunk's `error`
        cls, code, message = classify_stream_payload(exc.body if exc.body is not None else exc.message)
        return CallFailed(cls, f"error in stream: {message}", status=code)
    timed_out = isinstance(exc, openai.APITimeoutError | TimeoutError) and not disconnected
    if timed_out:
        return CallFailed(ErrorClass.TIMEOUT, "the server did not answer in time (SDK read/connect timeout)")
    kind = ErrorClass.STREAM_ERROR if streaming_started else ErrorClass.CONNECTION
    where = "the stream was cut mid-way" if streaming_started else "connection failed"
    detail = "; ".join(f"{type(e).__name__}: {e}" for e in _chain(exc)[:3])
    return CallFailed(kind, f"{where} ({detail})")


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


def _status_failure(exc: openai.APIStatusError) -> CallFailed:
    status = exc.status_code
    try:
        body_text = exc.response.text
    except Exception:  # the body may be unreadable after a broken stream
        body_text = ""
    cls, _, message = classify_http_error(status, exc.body if exc.body is not None else body_text)
    message = message or body_text or exc.message
    retry_after = parse_retry_after(exc.response.headers)
    return CallFailed(cls, f"HTTP {status}: {message}", status=status, retry_after_s=retry_after)
