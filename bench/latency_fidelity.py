"""Latency fidelity: the TTFT and latency evalkit records vs the latencies the server injected.

Servers (each in its own process), all with a constant latency (no jitter):

* `sim`: the evalkit simulator with a fixed profile: TTFT 300 ms, then 100 tokens/s, so the injected
  total is 300 ms + completion_tokens / 100 (completion_tokens as the run recorded them);
* `fast`: bench/fastserver.py: first token at 100 ms, last byte at 300 ms.

For each server and concurrency (1 and 64) an `evalkit.run` with streaming, journal and cache on
records `ttft_s` and `latency_s`; error = recorded − injected. As a reference, a raw AsyncOpenAI
streaming loop on the same server measures the same two times itself (its error is the floor set by
the server's timer lateness, loopback and the SDK).

    python bench/latency_fidelity.py [-n 640]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from throughput import server as fast_server  # noqa: E402

import evalkit  # noqa: E402
from evalkit.sim import Latency, SimModel  # noqa: E402

SIM_TTFT_S, SIM_TOKENS_PER_S = 0.3, 100.0
FAST_TTFT_S, FAST_TOTAL_S = 0.1, 0.3
FIXED = SimModel(
    id="bench/fixed",
    name="Bench: fixed latency",
    context_length=100_000,
    prompt_price=18e-6,
    completion_price=59e-6,
    latency=Latency(
        ttft_s=SIM_TTFT_S, per_prompt_token_s=0, per_image_s=0, tokens_per_s=SIM_TOKENS_PER_S, jitter=0
    ),
)


def task(n: int) -> evalkit.Task:
    samples = [evalkit.Sample(id=str(i), input=f"What is {i} plus {i}?", target=str(2 * i)) for i in range(n)]
    return evalkit.Task(name="fidelity", family="qa", samples=samples, scorer="numeric")


def truth(server: str, completion_tokens: float) -> tuple[float, float]:
    """(injected TTFT, injected total latency) in seconds."""
    if server == "sim":
        return SIM_TTFT_S, SIM_TTFT_S + completion_tokens / SIM_TOKENS_PER_S
    return FAST_TTFT_S, FAST_TOTAL_S


def evalkit_errors(server: str, url: str, n: int, c: int) -> list[tuple[float, float]]:
    """(TTFT error, latency error) in ms for every sample of one evalkit run."""
    with tempfile.TemporaryDirectory(dir=BENCH / "out") as out:
        result = evalkit.run(
            [task(n)], ["bench/fixed"], base_url=url, out=out, concurrency=c, progress=False, stream=True
        )
        df = result.df
    assert df["error"].isna().all(), df["error"].value_counts()
    errors = []
    for row in df.itertuples():
        ttft, total = truth(server, row.completion_tokens)
        errors.append(((row.ttft_s - ttft) * 1000, (row.latency_s - total) * 1000))
    return errors


async def raw_errors(server: str, url: str, n: int, c: int) -> list[tuple[float, float]]:
    """The same two times measured by a hand-written streaming loop (time to first content delta)."""
    import openai

    client = openai.AsyncOpenAI(
        base_url=url,
        api_key=os.environ["ROUTERAI_API_KEY"],
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(),
    )
    queue, errors = iter(range(n)), []

    async def worker() -> None:
        for i in queue:
            started, first, tokens = time.monotonic(), None, 0
            stream = await client.chat.completions.create(
                model="bench/fixed",
                messages=[{"role": "user", "content": f"What is {i} plus {i}?"}],
                stream=True,
                stream_options={"include_usage": True},
                temperature=0.0,
                max_tokens=512,
            )
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.monotonic() - started
                if chunk.usage:
                    tokens = chunk.usage.completion_tokens
            total = time.monotonic() - started
            ttft_truth, total_truth = truth(server, tokens)
            errors.append((((first or 0) - ttft_truth) * 1000, (total - total_truth) * 1000))

    await asyncio.gather(*(worker() for _ in range(c)))
    await client.close()
    return errors


def stats(values: list[float]) -> str:
    ordered = sorted(abs(v) for v in values)
    signed = statistics.median(values)
    return f"{ordered[len(ordered) // 2]:.1f} | {ordered[int(0.95 * len(ordered))]:.1f} | {signed:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=640, help="samples per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    os.environ["ROUTERAI_API_KEY"] = "bench-key"
    (BENCH / "out").mkdir(exist_ok=True)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}, streaming, n={args.n}"
    )
    print(
        "| server | c | harness | TTFT \\|err\\| median ms | p95 ms | signed median ms | latency \\|err\\| median ms | p95 ms | signed median ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for server_name in ("sim", "fast"):
        for c in args.concurrency:
            n = args.n if c > 1 else max(20, args.n // 16)
            for harness in ("evalkit", "raw"):
                if server_name == "sim":
                    with evalkit.sim.serve(models=[FIXED], latency_scale=1.0, process=True) as sim:
                        errors = measure(harness, server_name, sim.base_url, n, c)
                else:
                    with fast_server(FAST_TOTAL_S * 1000, ttft_ms=FAST_TTFT_S * 1000) as (url, _):
                        errors = measure(harness, server_name, url, n, c)
                ttft, total = [e[0] for e in errors], [e[1] for e in errors]
                print(f"| {server_name} | {c} | {harness} | {stats(ttft)} | {stats(total)} |", flush=True)


def measure(harness: str, server_name: str, url: str, n: int, c: int) -> list[tuple[float, float]]:
    if harness == "evalkit":
        return evalkit_errors(server_name, url, n, c)
    return asyncio.run(raw_errors(server_name, url, n, c))


if __name__ == "__main__":
    main()
