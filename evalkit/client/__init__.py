"""The router client: where requests go, one call with its retries, and what the router says.

The flow, each module importing only those before it:
`errors` (error classes) → `dialect/` (the router's quirks, price cards) → `endpoint` →
`failures` (exceptions classified) → `sse` (reading a response) → `call` (`Client.call`) →
`catalog` (`GET /models`, cached, bundled fallback). `tokens`, `endpoints` (the run's endpoint
resolver) and `variants` (`model@effort=...`) sit beside them.
"""

from evalkit.client.call import CallHooks, CallRecord, Client, RetryPolicy
from evalkit.client.catalog import Catalog, CostEstimate, ModelInfo, PriceCard, load_catalog
from evalkit.client.endpoint import DEFAULT_BASE_URL, KEY_ENV_VARS, Endpoint
from evalkit.client.errors import (
    ErrorClass,
    Severity,
    is_model_fatal,
    is_retryable,
    is_run_fatal,
    may_be_billed,
    severity,
)
from evalkit.client.failures import classify_exception, parse_retry_after

__all__ = [
    "DEFAULT_BASE_URL",
    "KEY_ENV_VARS",
    "CallHooks",
    "CallRecord",
    "Catalog",
    "Client",
    "CostEstimate",
    "Endpoint",
    "ErrorClass",
    "ModelInfo",
    "PriceCard",
    "RetryPolicy",
    "Severity",
    "classify_exception",
    "is_model_fatal",
    "is_retryable",
    "is_run_fatal",
    "load_catalog",
    "may_be_billed",
    "parse_retry_after",
    "severity",
]
