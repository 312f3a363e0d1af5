"""One timed run of one harness against a running server; prints one JSON line.

Each run is its own process, so peak RSS (`ru_maxrss`) and CPU time are that harness's alone.

    python bench/drivers.py raw     --url http://127.0.0.1:PORT/api/v1 -n 2000 -c 64 [--stream]
    python bench/drivers.py evalkit --url ... -n 2000 -c 64 [--stream] [--out bench/out/x]

Fields: harness, n, concurrency, stream, wall_s, samples_per_s, cpu_ms_per_sample, peak_rss_mb,
base_rss_mb (after imports and building the samples, before the run), errors.
The evalkit run has every piece of bookkeeping on: journal (fsynced), response cache, cost, streaming TTFT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "bench/fixed"
KEY = "bench-key"


def prompt(i: int) -> str:
    return f"Question {i}: what is six times seven? Answer with a number."


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(harness: str, args: argparse.Namespace, body: Callable[[], Any]) -> dict[str, Any]:
    """Time `body` (wall and CPU) and report it as one result row."""
    base = current_rss_mb()
    cpu0, wall0 = cpu_s(), time.perf_counter()
    errors = body()
    wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    return {
        "harness": harness,
        "n": args.n,
        "concurrency": args.c,
        "stream": args.stream,
        "wall_s": round(wall, 4),
        "samples_per_s": round(args.n / wall, 1),
        "cpu_ms_per_sample": round(cpu * 1000 / args.n, 3),
        "peak_rss_mb": round(rss_mb(), 1),
        "base_rss_mb": round(base, 1),
        "errors": errors,
    }


# --------------------------------------------------------------------------------------------
# raw AsyncOpenAI loop: what a user would write by hand


async def raw_loop(args: argparse.Namespace) -> int:
    import openai

    http_client = openai.DefaultAioHttpClient() if args.transport == "aiohttp" else None
    client = openai.AsyncOpenAI(base_url=args.url, api_key=KEY, max_retries=0, http_client=http_client)
    queue = iter(range(args.n))
    errors = 0

    async def one(i: int) -> None:
        messages = [{"role": "user", "content": prompt(i)}]
        params = {"temperature": 0.0, "max_tokens": 512}  # what evalkit sends for a default task
        if args.stream:
            stream = await client.chat.completions.create(
                model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}, **params
            )
            parts = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
            assert "42" in "".join(parts)
        else:
            response = await client.chat.completions.create(model=MODEL, messages=messages, **params)
            assert "42" in (response.choices[0].message.content or "")

    async def worker() -> None:
        nonlocal errors
        for i in queue:
            try:
                await one(i)
            except Exception:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(args.c)))
    await client.close()
    return errors


def run_raw(args: argparse.Namespace) -> dict[str, Any]:
    import openai  # noqa: F401 - imported before timing, as evalkit's client is

    return measure(f"raw-{args.transport}", args, lambda: asyncio.run(raw_loop(args)))


# --------------------------------------------------------------------------------------------
# evalkit.run with journal, cache, cost and streaming TTFT on


def run_evalkit(args: argparse.Namespace) -> dict[str, Any]:
    import openai  # noqa: F401 - imports are start-up cost (bench/startup.py), not per-sample cost

    import evalkit
    import evalkit.client  # noqa: F401
    import evalkit.client.catalog  # noqa: F401
    import evalkit.runner.cache  # noqa: F401
    import evalkit.runner.manifest  # noqa: F401
    import evalkit.runner.scheduler  # noqa: F401

    os.environ["ROUTERAI_API_KEY"] = KEY
    task = evalkit.Task(
        name="bench",
        samples=[evalkit.Sample(id=str(i), input=prompt(i), target="42") for i in range(args.n)],
        scorer="numeric",
    )
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="evalkit-bench-", dir=args.tmp))
    holder: dict[str, Any] = {}

    def body() -> int:
        result = evalkit.run(
            [task],
            [MODEL],
            base_url=args.url,
            out=str(out),
            concurrency=args.c,
            progress=False,
            cache=True,
            stream=args.stream,
            transport=args.transport,
            run_id="bench",
        )
        holder["result"] = result
        return int(result.counts.get("errors", 0)) + (args.n - int(result.counts.get("done", 0)))

    row = measure(f"evalkit-{args.transport}", args, body)
    row["run_dir"] = str(out / "bench")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("harness", choices=["raw", "evalkit"])
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=64)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--transport", default="aiohttp", choices=["aiohttp", "httpx"])
    parser.add_argument("--out", help="evalkit results folder (default: a fresh temporary one)")
    parser.add_argument("--tmp", default=None, help="where temporary results folders go")
    parser.add_argument("--keep", action="store_true", help="keep the evalkit results folder")
    args = parser.parse_args()
    row = run_raw(args) if args.harness == "raw" else run_evalkit(args)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
