"""The client against the project's RouterAI simulator with every kind of injected fault."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from evalkit.client import CallHooks, CallRecord, Client, Endpoint, RetryPolicy

FAULTS = (
    "rate_limit=0.1,server_error=0.1,error_in_200=0.1,error_in_stream=0.1,drop_stream=0.1,hang=0.03,"
    "hang_s=3,retry_after_s=0.05"
)
RETRYABLE = {"rate_limit", "server_error", "upstream_error", "stream_error", "connection", "timeout"}


def run_calls(stream: bool, n: int = 60) -> tuple[list[CallRecord], Counter[str | None]]:
    sim = pytest.importorskip("evalkit.sim")
    per_attempt: Counter[str | None] = Counter()

    async def after(record: CallRecord, attempt: int) -> None:
        per_attempt[record.error] += 1

    async def scenario() -> list[CallRecord]:
        with sim.serve(faults=FAULTS, latency_scale=0, seed=3) as server:
            endpoint = Endpoint(server.base_url, server.api_key or "sim", simulated=True)
            policy = RetryPolicy(max_attempts=8, base_delay_s=0.01, max_delay_s=0.1)
            async with Client(endpoint, stream=stream, deadline_s=1.0, retry=policy) as client:
                calls = [
                    client.call(
                        "sim/small-fast",
                        [{"role": "user", "content": f"question {i}"}],
                        {"max_tokens": 32},
                        hooks=CallHooks(after_attempt=after),
                    )
                    for i in range(n)
                ]
                return await asyncio.gather(*calls)

    return asyncio.run(scenario()), per_attempt


@pytest.mark.parametrize("stream", [True, False])
def test_faults_are_classified_retried_and_never_scored(stream: bool) -> None:
    records, per_attempt = run_calls(stream)
    failed_kinds = {kind for kind in per_attempt if kind is not None}
    assert failed_kinds, "the simulator injected no fault: the test would prove nothing"
    assert failed_kinds <= RETRYABLE, failed_kinds
    assert sum(per_attempt.values()) == sum(r.attempts for r in records)
    for record in records:
        if record.error is None:
            assert record.output and "error" not in record.output.lower()
            assert record.cost_rub is not None and record.cost_rub > 0
            assert record.prompt_tokens and record.completion_tokens
            assert (record.ttft_s is not None) == stream
        else:
            assert record.error in RETRYABLE and record.attempts == 8
    assert sum(r.error is None for r in records) >= len(records) - 1
