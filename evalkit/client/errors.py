"""What can go wrong with a model call: the error classes results store, and what each means for the schedule."""

from __future__ import annotations

import enum


class ErrorClass(enum.StrEnum):
    """Short names of what went wrong with a call; the value is what results store."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    UPSTREAM_ERROR = "upstream_error"
    STREAM_ERROR = "stream_error"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    EMPTY_RESPONSE = "empty_response"
    BAD_REQUEST = "bad_request"
    FORBIDDEN = "forbidden"
    HTTP_ERROR = "http_error"
    MODEL_NOT_FOUND = "model_not_found"
    NOT_FOUND = "not_found"
    AUTH = "auth"
    OUT_OF_CREDIT = "out_of_credit"
    CANCELLED = "cancelled"


class Severity(enum.StrEnum):
    """What an error class means for the schedule."""

    RETRYABLE = "retryable"  # back off and try the same sample again
    SAMPLE = "sample"  # give up on this sample, go on with others
    MODEL = "model"  # every further call to this model will fail the same way
    RUN = "run"  # every further call will fail: stop the run cleanly


_SEVERITY: dict[ErrorClass, Severity] = {
    ErrorClass.RATE_LIMIT: Severity.RETRYABLE,
    ErrorClass.SERVER_ERROR: Severity.RETRYABLE,
    ErrorClass.UPSTREAM_ERROR: Severity.RETRYABLE,
    ErrorClass.STREAM_ERROR: Severity.RETRYABLE,
    ErrorClass.CONNECTION: Severity.RETRYABLE,
    ErrorClass.TIMEOUT: Severity.RETRYABLE,
    ErrorClass.EMPTY_RESPONSE: Severity.RETRYABLE,
    ErrorClass.BAD_REQUEST: Severity.SAMPLE,
    ErrorClass.FORBIDDEN: Severity.SAMPLE,
    ErrorClass.HTTP_ERROR: Severity.SAMPLE,
    ErrorClass.CANCELLED: Severity.SAMPLE,
    ErrorClass.MODEL_NOT_FOUND: Severity.MODEL,
    ErrorClass.NOT_FOUND: Severity.RUN,
    ErrorClass.AUTH: Severity.RUN,
    ErrorClass.OUT_OF_CREDIT: Severity.RUN,
}


def severity(error_class: str) -> Severity:
    """The severity of an error class (unknown names count as fatal for the sample)."""
    try:
        return _SEVERITY[ErrorClass(error_class)]
    except ValueError:
        return Severity.SAMPLE


# The request reached the router and a generation may have run, yet a failure of these classes
# brings no `usage.cost` back: the router may still bill it.
_MAY_BE_BILLED = {
    ErrorClass.STREAM_ERROR,
    ErrorClass.TIMEOUT,
    ErrorClass.EMPTY_RESPONSE,
    ErrorClass.CANCELLED,
}


def may_be_billed(error_class: str | None) -> bool:
    """True when a failed attempt of this class may have been billed although no cost came back
    (a stream cut mid-way, a timeout after the request was sent)."""
    return error_class in _MAY_BE_BILLED


def is_retryable(error_class: str | None) -> bool:
    """True when another attempt at the same sample may succeed."""
    return error_class is not None and severity(error_class) is Severity.RETRYABLE


def is_model_fatal(error_class: str | None) -> bool:
    """True when no further call to this model can succeed (also true for run-fatal classes)."""
    return error_class is not None and severity(error_class) in (Severity.MODEL, Severity.RUN)


def is_run_fatal(error_class: str | None) -> bool:
    """True when no further call at all can succeed (bad key, no credit, wrong URL): stop the run."""
    return error_class is not None and severity(error_class) is Severity.RUN
