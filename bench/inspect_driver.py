"""The same workload as `drivers.py`, run by inspect_ai (in its own venv; never a core dependency).

    bench/.venv-inspect/bin/python bench/inspect_driver.py --url http://127.0.0.1:PORT/api/v1 -n 2000 -c 64

One task of n samples, `generate()` then `match()` against "42", through inspect's generic
OpenAI-compatible provider (`openai-api/<service>/<model>`), display off, retries off, eval logs in a
temporary folder. Prints one JSON line with the fields of `drivers.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time

MODEL = "bench/fixed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=64)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    os.environ["BENCH_API_KEY"] = "bench-key"
    os.environ["BENCH_BASE_URL"] = args.url
    import inspect_ai
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    task = Task(
        dataset=[
            Sample(id=i, input=f"Question {i}: what is six times seven? Answer with a number.", target="42")
            for i in range(args.n)
        ],
        solver=generate(),
        scorer=match(numeric=True),
    )
    logs = tempfile.mkdtemp(prefix="inspect-bench-")
    with open("/proc/self/statm") as file:
        base_mb = int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    [log] = eval(
        task,
        model=f"openai-api/bench/{MODEL}",
        model_args={"stream": args.stream},
        max_connections=args.c,
        max_samples=args.c,
        max_retries=0,
        display="none",
        log_dir=logs,
        fail_on_error=False,
    )
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage0.ru_utime - usage0.ru_stime
    errors = sum(1 for s in log.samples or [] if s.error) + (args.n - len(log.samples or []))
    shutil.rmtree(logs, ignore_errors=True)
    row = {
        "harness": f"inspect_ai-{inspect_ai.__version__}",
        "n": args.n,
        "concurrency": args.c,
        "stream": args.stream,
        "wall_s": round(wall, 4),
        "samples_per_s": round(args.n / wall, 1),
        "cpu_ms_per_sample": round(cpu * 1000 / args.n, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "base_rss_mb": round(base_mb, 1),
        "errors": errors,
        "status": log.status,
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
