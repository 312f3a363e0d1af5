"""The router client: where requests go, one call with its retries, and what the router says.

The flow, each module importing only those before it:
`errors` (error classes) → `dialect/` (the router's quirks, price cards) → `endpoint` →
`failures` (exceptions classified) → `sse` (reading a response) → `call` (`Client.call`) →
`catalog` (`GET /models`, cached, bundled fallback). `tokens`, `endpoints` (the run's endpoint
resolver) and `variants` (`model@effort=...`) sit beside them.

The names below are loaded on first use, so importing one module of the package (the error
classes, the token estimate) does not import the SDK client and the catalog with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CallHooks": "evalkit.client.call:CallHooks",
    "CallRecord": "evalkit.client.call:CallRecord",
    "Client": "evalkit.client.call:Client",
    "RetryPolicy": "evalkit.client.call:RetryPolicy",
    "Catalog": "evalkit.client.catalog:Catalog",
    "load_catalog": "evalkit.client.catalog:load_catalog",
    "CostEstimate": "evalkit.client.dialect.pricing:CostEstimate",
    "ModelInfo": "evalkit.client.dialect.pricing:ModelInfo",
    "PriceCard": "evalkit.client.dialect.pricing:PriceCard",
    "DEFAULT_BASE_URL": "evalkit.client.endpoint:DEFAULT_BASE_URL",
    "Endpoint": "evalkit.client.endpoint:Endpoint",
    "KEY_ENV_VARS": "evalkit.client.endpoint:KEY_ENV_VARS",
    "ErrorClass": "evalkit.client.errors:ErrorClass",
    "Severity": "evalkit.client.errors:Severity",
    "is_model_fatal": "evalkit.client.errors:is_model_fatal",
    "is_retryable": "evalkit.client.errors:is_retryable",
    "is_run_fatal": "evalkit.client.errors:is_run_fatal",
    "may_be_billed": "evalkit.client.errors:may_be_billed",
    "severity": "evalkit.client.errors:severity",
    "classify_exception": "evalkit.client.failures:classify_exception",
    "parse_retry_after": "evalkit.client.failures:parse_retry_after",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # names for type checkers and IDEs; runtime goes through __getattr__
    from evalkit.client.call import CallHooks, CallRecord, Client, RetryPolicy  # noqa: F401
    from evalkit.client.catalog import Catalog, load_catalog  # noqa: F401
    from evalkit.client.dialect.pricing import CostEstimate, ModelInfo, PriceCard  # noqa: F401
    from evalkit.client.endpoint import DEFAULT_BASE_URL, KEY_ENV_VARS, Endpoint  # noqa: F401
    from evalkit.client.errors import (  # noqa: F401
        ErrorClass,
        Severity,
        is_model_fatal,
        is_retryable,
        is_run_fatal,
        may_be_billed,
        severity,
    )
    from evalkit.client.failures import classify_exception, parse_retry_after  # noqa: F401


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'evalkit.client' has no attribute {name!r}")
    from evalkit.common.lazy import load

    value = load(target)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
