"""Client throughput and per-call overhead against the simulator (in its own process, no latency).

    python bench/bench_client.py [--calls 600]

Prints a markdown table: transport × streaming × concurrency → calls/s and median latency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from evalkit import sim
from evalkit.client import Client, Endpoint


async def measure(
    endpoint: Endpoint, transport: str, stream: bool, concurrency: int, calls: int
) -> tuple[float, float]:
    async with Client(endpoint, stream=stream, transport=transport) as client:
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def one(i: int) -> None:
            async with gate:
                record = await client.call(
                    "sim/small-fast", [{"role": "user", "content": f"q{i}"}], {"max_tokens": 32}
                )
                assert record.error is None, record.error_message
                latencies.append(record.latency_s or 0.0)

        await one(-1)  # warm the connection pool
        latencies.clear()
        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return calls / (time.monotonic() - started), statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=600)
    args = parser.parse_args()
    print("| transport | stream | concurrency | calls/s | median latency ms |")
    print("|---|---|---|---|---|")
    with sim.serve(latency_scale=0, process=True) as server:
        endpoint = Endpoint(server.base_url, server.api_key or "sim", simulated=True)
        for transport in ("aiohttp", "httpx"):
            for stream in (True, False):
                for concurrency in (1, 32, 128):
                    calls = args.calls if concurrency > 1 else args.calls // 4
                    rate, median = asyncio.run(measure(endpoint, transport, stream, concurrency, calls))
                    print(f"| {transport} | {stream} | {concurrency} | {rate:.0f} | {median * 1000:.1f} |")


if __name__ == "__main__":
    main()
