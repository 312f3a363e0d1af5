"""Recognisers of the router dialect: what RouterAI's answers mean, as the client and the catalog read them.

Errors inside HTTP 200 bodies and streams, errors as strings holding JSON, HTTP statuses, SSE comment
lines, `usage.cost` in ₽, prices in ₽ per token, and the `{"data": ...}` wrapping of `/credits` and
`/generation`. `evalkit/client/dialect/quirks.py` names, for each quirk, the functions here that read it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from evalkit.client.errors import ErrorClass
from evalkit.common.errors import ConfigError

STREAM_OPTIONS: dict[str, Any] = {"include_usage": True}
"""Asks for the usage (and its ₽ cost) in the stream's last chunk."""
PROCESSING_COMMENT = ": PROCESSING"
"""The SSE comment line RouterAI sends while a stream waits for its first token (the simulator too)."""
ERROR_FINISH_REASON = "error"
"""The finish_reason of a stream that an upstream error ended."""


class RouterError(NamedTuple):
    """What an error payload means: its class, the numeric code found in it (if any), its text."""

    error_class: ErrorClass
    code: int | None
    message: str


_MODEL_NOT_FOUND = re.compile(
    r"model\b.*\b(not found|does not exist|not exist|unknown|invalid|not a valid|not available)"
    r"|no endpoints found|unknown model|invalid model",
    re.IGNORECASE | re.DOTALL,
)


def parse_error_payload(payload: Any) -> tuple[int | str | None, str]:
    """(code, message) from a router error payload: a dict, a string, or a string holding JSON."""
    if isinstance(payload, str):
        text = payload.strip()
        if text[:1] in "{[":
            try:
                return parse_error_payload(json.loads(text))
            except ValueError:
                pass
        return None, payload
    if isinstance(payload, dict):
        if "error" in payload and payload["error"]:
            return parse_error_payload(payload["error"])
        code = payload.get("code", payload.get("status"))
        message = payload.get("message")
        if isinstance(message, str) and message.strip()[:1] == "{":
            inner_code, inner_message = parse_error_payload(message)
            code, message = (inner_code if inner_code is not None else code), inner_message
        raw = (
            (payload.get("metadata") or {}).get("raw") if isinstance(payload.get("metadata"), dict) else None
        )
        text = str(message) if message is not None else json.dumps(payload, ensure_ascii=False)
        if raw:
            text = f"{text} ({raw})"
        return code, text
    return None, "" if payload is None else str(payload)


_STRING_CODES: tuple[tuple[str, ErrorClass], ...] = (
    ("model_not_found", ErrorClass.MODEL_NOT_FOUND),
    ("insufficient", ErrorClass.OUT_OF_CREDIT),
    ("quota", ErrorClass.OUT_OF_CREDIT),
    ("credit", ErrorClass.OUT_OF_CREDIT),
    ("api_key", ErrorClass.AUTH),
    ("auth", ErrorClass.AUTH),
    ("rate", ErrorClass.RATE_LIMIT),
    ("timeout", ErrorClass.TIMEOUT),
    ("context_length", ErrorClass.BAD_REQUEST),
    ("invalid", ErrorClass.BAD_REQUEST),
    ("server", ErrorClass.UPSTREAM_ERROR),
    ("overloaded", ErrorClass.UPSTREAM_ERROR),
)

_FIXED_STATUS: dict[int, ErrorClass] = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.AUTH,
    402: ErrorClass.OUT_OF_CREDIT,
    403: ErrorClass.FORBIDDEN,
    404: ErrorClass.NOT_FOUND,
    408: ErrorClass.TIMEOUT,
    413: ErrorClass.BAD_REQUEST,
    422: ErrorClass.BAD_REQUEST,
    429: ErrorClass.RATE_LIMIT,
}


def classify_status(status: int | None, message: str = "", *, in_body: bool = False) -> ErrorClass:
    """The error class of an HTTP status (or a code the router put inside a 200 body / stream)."""
    if status is None:
        return ErrorClass.UPSTREAM_ERROR if in_body else ErrorClass.HTTP_ERROR
    if status in (400, 404, 422) and _MODEL_NOT_FOUND.search(message):
        return ErrorClass.MODEL_NOT_FOUND
    if status in _FIXED_STATUS:
        return _FIXED_STATUS[status]
    if status >= 500:
        return ErrorClass.UPSTREAM_ERROR if in_body else ErrorClass.SERVER_ERROR
    return ErrorClass.HTTP_ERROR


def classify_payload(payload: Any, *, status: int | None = None) -> RouterError:
    """What an error payload found in a 200 body or a stream chunk means."""
    code, message = parse_error_payload(payload)
    numeric = as_int(code)
    if numeric is not None:
        return RouterError(classify_status(numeric, message, in_body=True), numeric, message)
    if _MODEL_NOT_FOUND.search(message):
        return RouterError(ErrorClass.MODEL_NOT_FOUND, status, message)
    if isinstance(code, str):
        lowered = code.lower()
        for needle, cls in _STRING_CODES:
            if needle in lowered:
                return RouterError(cls, status, message)
    return RouterError(ErrorClass.UPSTREAM_ERROR, status, message)


def classify_http_error(status: int, payload: Any) -> RouterError:
    """An HTTP error status and its body. A 400 whose body holds 401, 402 or 429 is that error:
    the router wraps some upstream errors that way."""
    code, message = parse_error_payload(payload)
    cls = classify_status(status, message)
    inner = as_int(code)
    if cls is ErrorClass.BAD_REQUEST and inner in (401, 402, 429):
        cls = classify_status(inner, message)
    return RouterError(cls, inner, message)


def classify_stream_payload(payload: Any) -> RouterError:
    """An error event inside a stream; one without a code is a broken stream (retryable)."""
    found = classify_payload(payload)
    if found.error_class is ErrorClass.UPSTREAM_ERROR and found.code is None:
        return found._replace(error_class=ErrorClass.STREAM_ERROR)
    return found


def error_in_body(data: Mapping[str, Any]) -> RouterError | None:
    """The error a whole JSON reply carries instead of a completion (RouterAI sends them with HTTP 200)."""
    return classify_payload(data["error"]) if data.get("error") else None


def error_in_chunk(chunk: Mapping[str, Any]) -> RouterError | None:
    """The error a stream chunk carries at its top level."""
    return classify_stream_payload(chunk["error"]) if chunk.get("error") else None


def error_in_choice(choice: Mapping[str, Any]) -> RouterError | None:
    """The error one choice (of a reply or a chunk) carries."""
    return classify_payload(choice["error"]) if choice.get("error") else None


def as_int(code: Any) -> int | None:
    """A numeric error code (an int, or digits in a string); else None."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None


def sse_event(line: str, pending: list[str]) -> str | None:
    """Feed one line of an event stream; returns the data of the event a blank line completes.

    Comment lines (`: PROCESSING`, sent while the model has not started) and fields other than
    `data` carry nothing evalkit uses and are skipped.
    """
    if not line:
        if pending:
            data = "\n".join(pending)
            pending.clear()
            return data
        return None
    name, _, value = line.partition(":")
    if name == "data":
        pending.append(value[1:] if value.startswith(" ") else value)
    return None


def usage_cost(usage: Any) -> float | None:
    """`usage.cost`, the ₽ the router billed for the call; None when absent, not a number, or negative
    (a refund is no bill: taken at its word it would give money back to the budget)."""
    cost = usage.get("cost") if isinstance(usage, Mapping) else None
    if isinstance(cost, bool) or not isinstance(cost, int | float | str):
        return None
    try:
        value = float(cost)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def usage_tokens(usage: Any) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) of a usage; None unless both are non-negative integers."""
    if not isinstance(usage, Mapping):
        return None
    counts = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return counts[0], counts[1]
    return None


def parse_price(value: Any, where: str) -> float:
    """One `/models` price in ₽ per unit. RouterAI sends numbers; numeric strings (OpenRouter's
    form) are read too, and -1 ("variable pricing") counts as unknown, 0."""
    if value in (None, ""):
        return 0.0
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"price {value!r} is not a number", where=where) from None
    return max(price, 0.0)


def unwrap_data(payload: Any) -> dict[str, Any]:
    """The record of `/credits` and `/generation`, which RouterAI wraps as `{"data": {...}}`."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        return payload["data"]
    return payload if isinstance(payload, dict) else {"value": payload}
