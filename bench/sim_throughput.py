"""Simulator throughput and latency-injection accuracy.

The simulator runs in its own process (`evalkit.sim.serve(process=True)`). Throughput is driven by
`wrk` (C, one thread; `apt-get install wrk`) cycling through 2,000 distinct bodies, because a Python
client saturates its own core before the server; without wrk, a raw aiohttp client loop is used.
Latency accuracy always uses the aiohttp loop (it needs per-request timings).

1. Throughput: non-streaming chat requests at latency_scale=0 (answers for indexed samples), for
   `--seconds` per round, `--rounds` rounds; reports requests/s per round and the median.
2. Streaming throughput, the same way.
3. Latency accuracy: a model with a fixed 500 ms time to first token and no jitter, 256 requests in
   flight; reports observed minus intended latency (client-side wall time) in ms.

    python bench/sim_throughput.py [--seconds 5] [--rounds 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

import aiohttp

import evalkit
from evalkit.sim import Latency, SimModel, serve
from evalkit.sim.profiles import SMALL_FAST
from evalkit.task.spec import Sample, Task

TASK = Task(
    name="bench",
    family="qa",
    scorer="numeric",
    samples=[Sample(id=str(i), input=f"What is {i} plus {i}?", target=str(2 * i)) for i in range(2000)],
)
FIXED = SimModel(
    id="bench/fixed-500ms",
    name="Bench: fixed 500 ms",
    context_length=100_000,
    prompt_price=1e-6,
    completion_price=1e-6,
    latency=Latency(ttft_s=0.5, per_prompt_token_s=0, per_image_s=0, tokens_per_s=1e9, jitter=0),
)
# The same with the default profiles' jitter (lognormal, sigma 0.2): requests no longer move in lockstep.
JITTERED = FIXED.model_copy(
    update={"id": "bench/jittered-500ms", "latency": FIXED.latency.model_copy(update={"jitter": 0.2})}
)


def bodies(model: str, stream: bool, n: int = 2000) -> list[bytes]:
    return [
        json.dumps(
            {
                "model": model,
                "messages": [{"role": "user", "content": f"What is {i} plus {i}?"}],
                "seed": i % 7,
                "stream": stream,
            }
        ).encode()
        for i in range(n)
    ]


async def load(url: str, payloads: list[bytes], concurrency: int, seconds: float) -> tuple[int, list[float]]:
    """Requests completed in `seconds` and their latencies (s)."""
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url, data=payloads[i % len(payloads)]) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)
                i += concurrency

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return len(latencies), latencies


def throughput(base_url: str, stream: bool, args: argparse.Namespace) -> list[float]:
    url = base_url + "/chat/completions"
    payloads = bodies(SMALL_FAST.id, stream)
    if shutil.which("wrk"):
        return [wrk(url, payloads, args.concurrency, s) for s in [1.0] + [args.seconds] * args.rounds][1:]
    asyncio.run(load(url, payloads, args.concurrency, 1.0))  # warm-up
    rates = []
    for _ in range(args.rounds):
        done, _ = asyncio.run(load(url, payloads, args.concurrency, args.seconds))
        rates.append(done / args.seconds)
    return rates


def wrk(url: str, payloads: list[bytes], concurrency: int, seconds: float) -> float:
    """Requests/s that wrk measured (non-2xx responses make the run fail)."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += ['wrk.headers["Authorization"] = "Bearer bench"', "bodies = {"]
    lines += [f"  {json.dumps(body.decode())}," for body in payloads]
    lines += ["}", "i = 0", "request = function()", "  i = i + 1"]
    lines += ["  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])", "end"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write("\n".join(lines))
        script.flush()
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-s", script.name, url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"the simulator answered with errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def latency_accuracy(server: Any, args: argparse.Namespace, model: SimModel) -> dict[str, Any]:
    """Lateness of injected 500 ms latencies with 256 requests in flight: as the server measured it
    (wake-up minus deadline) and as a Python client saw it (wall time minus 500 ms)."""
    url = server.base_url + "/chat/completions"
    payloads = bodies(model.id, stream=False)
    if shutil.which("wrk"):
        rps = wrk(url, payloads, 256, args.seconds)
    done, latencies = asyncio.run(load(url, payloads, 256, args.seconds))
    client_ms = sorted((latency - 0.5) * 1000 for latency in latencies)
    return {
        "server_lateness_ms": server.stats()["latency_lateness_ms"],
        "wrk_rps": rps if shutil.which("wrk") else None,
        "client_rps": done / args.seconds,
        "client_extra_ms_p50": statistics.median(client_ms),
        "client_extra_ms_p95": client_ms[int(0.95 * len(client_ms))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"# load generator: {'wrk' if shutil.which('wrk') else 'aiohttp client'}")
    print(
        f"# python {platform.python_version()}, aiohttp {aiohttp.__version__}, evalkit {evalkit.__version__}"
    )
    with serve(tasks=[TASK], latency_scale=0, process=True) as server:
        for stream in (False, True):
            rates = throughput(server.base_url, stream, args)
            label = "streaming" if stream else "non-streaming"
            print(
                f"{label} rps at concurrency {args.concurrency}: "
                f"rounds {', '.join(f'{r:.0f}' for r in rates)}; median {statistics.median(rates):.0f}"
            )
    for model in (FIXED, JITTERED):
        with serve(tasks=[TASK], models=[model], latency_scale=1.0, process=True) as server:
            result = latency_accuracy(server, args, model)
            print(f"latency injection, {model.id}, 256 in flight: {json.dumps(result)}")


if __name__ == "__main__":
    main()
