"""The Ray executor against the local one on this machine: samples/s of the same run, and code-scoring
throughput per node.

    python bench/ray_executor.py [-n 1000] [--latency-ms 0 200] [--concurrency 32] [--repeats 3]
                                 [--code-samples 40] [--nodes 1 2]

1. Calls: the same `evalkit.run` (journal, cost, streaming on, cache off) against bench/fastserver.py
   in its own process, with `executor="local"` and with `executor="ray"` on a Ray cluster of `--nodes`
   nodes started on this machine (`ray.cluster_utils.Cluster`, one CPU each). Each harness runs in its
   own process; Ray's start-up (connecting, starting the actors) counts in the run's time, since a
   user pays it too; the cluster itself is started before the timer. An 8-sample run before it
   (the last column) shows that fixed cost.
2. Code scoring: `evalkit score RUN` of a recorded `builtin_code` run (`--phase generate`, repeated
   by epochs to `--code-samples`), locally (a thread pool over the sandbox's warm workers) and on
   the cluster (one scorer actor per node reserving one CPU, each with its warm sandbox).
Prints Markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from throughput import header, server  # noqa: E402

CLUSTER_UP = """
import json, os, sys, time
cluster = None
if {executor!r} != "local":
    import ray
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False}})
    for _ in range({nodes} - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    cluster.wait_for_nodes()
"""

CLUSTER_DOWN = """
if cluster is not None:
    ray.shutdown(); cluster.shutdown()
"""

CALLS = """
sys.path.insert(0, {bench!r})
import evalkit
from drivers import MODEL, prompt
tiny = evalkit.Task(name="tiny", samples=[evalkit.Sample(id=str(i), input=prompt(i), target="42") for i in range(8)],
                    scorer="numeric")
started = time.perf_counter()
evalkit.run([tiny], [MODEL], base_url={url!r}, out={out!r}, progress=False, cache=False, executor={executor!r})
tiny_s = time.perf_counter() - started
task = evalkit.Task(name="bench", samples=[evalkit.Sample(id=str(i), input=prompt(i), target="42") for i in range({n})],
                    scorer="numeric")
started = time.perf_counter()
result = evalkit.run([task], [MODEL], base_url={url!r}, out={out!r}, progress=False, cache=False,
                     concurrency={concurrency}, executor={executor!r})
elapsed = time.perf_counter() - started
nodes = (json.load(open(os.path.join({out!r}, result.run_id, "manifest.json"))).get("executor") or {{}}).get("calls_by_node")
print(json.dumps({{"s": elapsed, "samples_per_s": {n} / elapsed, "status": result.status, "nodes": nodes,
                  "tiny_s": tiny_s}}))
"""

SCORE = """
import evalkit
started = time.perf_counter()
result = evalkit.score({run!r}, out={out!r}, executor={executor!r})
elapsed = time.perf_counter() - started
print(json.dumps({{"s": elapsed, "scored": result.counts["scored"], "status": result.status}}))
"""


def on_cluster(body: str, executor: str, nodes: int, **fields: object) -> str:
    """A child's code: `body` between the start and the end of a Ray cluster of `nodes` nodes on this
    machine (no cluster for the local executor). The cluster is up before the body starts its timer."""
    up = CLUSTER_UP.format(executor=executor, nodes=nodes)
    return up + body.format(executor=executor, **fields) + CLUSTER_DOWN


def child(code: str) -> dict:
    # the key is in the environment before a cluster starts: its nodes read it from theirs
    env = os.environ | {"ROUTERAI_API_KEY": "bench-key"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(lines[-1])


def calls(args: argparse.Namespace, work: Path) -> list[str]:
    rows = ["| executor | nodes | latency ms | c | n | samples/s (median) | spread | vs local | calls per node | 8-sample run s |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for latency in args.latency_ms:
        with server(latency) as (url, _):
            grid = [("local", 1), *(("ray", nodes) for nodes in args.nodes)]
            results: dict[tuple[str, int], list[dict]] = {cell: [] for cell in grid}
            for _ in range(args.repeats):  # interleaved: load from elsewhere hits every side alike
                for executor, nodes in grid:
                    out = tempfile.mkdtemp(dir=work)
                    code = on_cluster(CALLS, executor, nodes, bench=str(BENCH), n=args.n, url=url, out=out,
                                      concurrency=args.concurrency)  # fmt: skip
                    results[(executor, nodes)].append(child(code))
            local = statistics.median(r["samples_per_s"] for r in results[("local", 1)])
            for (executor, nodes), runs in results.items():
                rates = [r["samples_per_s"] for r in runs]
                per_node = (
                    "–"
                    if executor == "local"
                    else " / ".join(str(v) for v in (runs[-1]["nodes"] or {}).values())
                )
                rows.append(
                    f"| {executor} | {nodes if executor == 'ray' else '–'} | {latency:g} | {args.concurrency} | "
                    f"{args.n} | {statistics.median(rates):.0f} | {min(rates):.0f}–{max(rates):.0f} | "
                    f"{statistics.median(rates) / local:.0%} | {per_node} | "
                    f"{statistics.median(r['tiny_s'] for r in runs):.2f} |"
                )
    return rows


def scoring(args: argparse.Namespace, work: Path) -> list[str]:
    import evalkit

    out = Path(tempfile.mkdtemp(dir=work, prefix="code-"))
    epochs = max(1, args.code_samples // 10)
    evalkit.run(["builtin_code"], ["sim/small-fast"], sim=True, out=str(out), run_id="gen", limit=10,
                epochs=epochs, phase="generate", progress=False, cache=False, seed=0)  # fmt: skip
    rows = [
        "| executor | nodes × CPUs | samples | s (median) | samples/s | samples/s per node | vs local |",
        "|---|---|---|---|---|---|---|",
    ]
    grid = [("local", 1), *(("ray", nodes) for nodes in args.nodes)]
    times: dict[tuple[str, int], list[float]] = {cell: [] for cell in grid}
    scored = 0
    for repeat in range(args.repeats):  # interleaved, as above
        for executor, nodes in grid:
            run = f"gen-{executor}-{nodes}-{repeat}"
            subprocess.run(["cp", "-r", str(out / "gen"), str(out / run)], check=True)
            result = child(on_cluster(SCORE, executor, nodes, run=run, out=str(out)))
            times[(executor, nodes)].append(result["s"])
            scored = result["scored"]
    local = scored / statistics.median(times[("local", 1)])
    for (executor, nodes), spent in times.items():
        median = statistics.median(spent)
        label = f"{nodes} × 1" if executor == "ray" else f"this process ({os.cpu_count()} CPUs)"
        per_node = scored / median / (nodes if executor == "ray" else 1)
        rows.append(
            f"| {executor} | {label} | {scored} | {median:.2f} | {scored / median:.1f} | {per_node:.1f} | "
            f"{scored / median / local:.0%} |"
        )
    return rows


TREASURY = """
import asyncio, json, time
import ray
from evalkit.runner.ray_executor import _actor_classes
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
treasury_cls, _, _ = _actor_classes(ray)
treasury = treasury_cls.remote(1e9, 0.0, 0.0, {concurrency}, ["e"])
ray.get(treasury.totals.remote())

async def attempt(i):
    await treasury.begin.remote(f"t{{i}}/1", "w", "e", 0.001)
    await treasury.end.remote(f"t{{i}}/1", None, 0.0005, 0.0005, False)

async def main():
    started = time.perf_counter()
    await asyncio.gather(*(attempt(i) for i in range({n})))
    return time.perf_counter() - started

elapsed = asyncio.run(main())
print(json.dumps({{"attempts_per_s": {n} / elapsed}}))
ray.shutdown()
"""


def treasury(args: argparse.Namespace) -> list[str]:
    """The cluster-wide ceiling the one treasury puts on attempts: begin + end round trips per second,
    from one caller with `--concurrency` attempts in flight."""
    rates = [
        child(TREASURY.format(concurrency=args.concurrency, n=2000))["attempts_per_s"]
        for _ in range(args.repeats)
    ]
    return [
        "| treasury: attempts/s (begin + end), one caller, c | median | spread |",
        "|---|---|---|",
        f"| {args.concurrency} | {statistics.median(rates):.0f} | {min(rates):.0f}–{max(rates):.0f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 200])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--code-samples", type=int, default=40)
    parser.add_argument("--skip-calls", action="store_true")
    parser.add_argument("--skip-scoring", action="store_true")
    parser.add_argument("--skip-treasury", action="store_true")
    args = parser.parse_args()
    work = BENCH / "out" / "ray"
    work.mkdir(parents=True, exist_ok=True)
    print(header())
    if not args.skip_calls:
        print("\n".join(calls(args, work)))
    if not args.skip_scoring:
        print()
        print("\n".join(scoring(args, work)))
    if not args.skip_treasury:
        print()
        print("\n".join(treasury(args)))
    print(f"# load average at end {os.getloadavg()[0]:.1f}; {time.strftime('%H:%M')}")


if __name__ == "__main__":
    main()
