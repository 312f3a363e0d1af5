"""One model call through the official `openai` SDK: streaming, TTFT, usage, cost, error classes.

(Stub written by the core; the client owner completes it. The names below are the contract.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class CallRecord:
    """What one call (after its retries) produced. Times in seconds, money in ₽."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
