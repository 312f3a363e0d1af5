"""Fault injection: which failure (if any) a request meets, drawn deterministically.

A draw depends only on (seed, sha256 of the request body, how many times that body was seen
before), never on arrival order, so a concurrent run meets the same faults every time and a retry of
the same request gets a fresh draw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalkit.common.errors import ConfigError

FaultKind = Literal["rate_limit", "server_error", "error_in_200", "error_in_stream", "drop_stream", "hang"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "rate_limit",
    "server_error",
    "error_in_200",
    "error_in_stream",
    "drop_stream",
    "hang",
)


class Faults(BaseModel):
    """Rates (probability per request) of each injected failure, plus the account's credit.

    rate_limit: HTTP 429; `retry_after_share` of them carry a hint (half `Retry-After` in seconds,
        half `retry-after-ms`), the rest none.
    server_error: HTTP 500, 502 or 503.
    error_in_200: HTTP 200 whose body is `{"error": ...}` (half with the upstream error as a JSON string).
    error_in_stream: an error event after some content (non-streaming requests get an error in a 200).
    drop_stream: the connection closes mid-stream without `[DONE]` (non-streaming: before any response).
    hang: the response is delayed by `hang_s` seconds, then sent normally.
    credits: the initial balance in ₽; a call that would go beyond it gets HTTP 402.
    """

    model_config = ConfigDict(extra="forbid")

    rate_limit: float = Field(0.0, ge=0, le=1)
    server_error: float = Field(0.0, ge=0, le=1)
    error_in_200: float = Field(0.0, ge=0, le=1)
    error_in_stream: float = Field(0.0, ge=0, le=1)
    drop_stream: float = Field(0.0, ge=0, le=1)
    hang: float = Field(0.0, ge=0, le=1)
    hang_s: float = Field(30.0, ge=0)
    retry_after_share: float = Field(0.5, ge=0, le=1)
    retry_after_s: float = Field(1.0, ge=0)
    credits: float = Field(1_000_000.0, ge=0)

    @model_validator(mode="after")
    def _rates_fit(self) -> Faults:
        if sum(getattr(self, kind) for kind in FAULT_KINDS) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        return self

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """Faults from `rate_limit=0.1,drop_stream=0.01,credits=50` (the CLI's `--faults`)."""
        values: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"expected name=value, got {item!r}", where="--faults")
            values[name.strip()] = value.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'faults'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(problems, where="--faults") from None

    @property
    def any_rate(self) -> bool:
        return any(getattr(self, kind) for kind in FAULT_KINDS)

    def to_text(self) -> str:
        """The inverse of `parse`."""
        return ",".join(f"{name}={value!r}" for name, value in self.model_dump().items())


@dataclass(frozen=True, slots=True)
class FaultDraw:
    """The fault a request meets (kind None: none) and the variant details drawn with it."""

    kind: FaultKind | None
    variant: float  # uniform in [0, 1): picks status code, retry hint, string-vs-object body
    cut: float  # uniform in [0, 1): where in the content a stream fault strikes


_NO_FAULT = FaultDraw(None, 0.5, 0.5)


def unit(*parts: object) -> float:
    """A uniform number in (0, 1) determined by `parts`."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


def draw_fault(faults: Faults, seed: int, body_sha256: str, attempt: int) -> FaultDraw:
    """The fault for the `attempt`-th (0-based) arrival of a request body."""
    if not faults.any_rate:
        return _NO_FAULT
    u = unit(seed, "fault", body_sha256, attempt)
    variant = unit(seed, "variant", body_sha256, attempt)
    cut = unit(seed, "cut", body_sha256, attempt)
    threshold = 0.0
    for kind in FAULT_KINDS:
        threshold += getattr(faults, kind)
        if u < threshold:
            return FaultDraw(kind, variant, cut)
    return FaultDraw(None, variant, cut)
