"""Resume cost: finish a 100k-sample run that is 99% done.

Takes the finished 100k run that bench/memory.py keeps in bench/out/resume-100k (or makes one), and
turns it into a run killed at 99%: the last 1% of samples lose their journal lines and their cache
entries (as if their requests had never been answered). Then, in a fresh process each (as
`evalkit run --resume` would be), it times:

* `evalkit.run(..., resume=...)` end to end against bench/fastserver.py (0 ms latency, c=64, streaming);
* the part that does not depend on the missing samples: reading the journal state;
* a fresh run of just the missing 1% for comparison (the unavoidable work).

    python bench/resume.py [--samples 100000] [--missing 0.01] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from memory import KEPT, RESUME_PORT  # noqa: E402
from throughput import server  # noqa: E402

WORK = BENCH / "out" / "resume-work"

RESUME = """
import json, os, resource, sys, time
sys.path.insert(0, {bench!r})
started = time.perf_counter()
import evalkit
from drivers import MODEL, prompt
os.environ["ROUTERAI_API_KEY"] = "bench-key"
n = {n}
task = evalkit.Task(name="bench", samples=[evalkit.Sample(id=str(i), input=prompt(i), target="42") for i in range(n)], scorer="numeric")
built = time.perf_counter()
result = evalkit.run([task], [MODEL], base_url={url!r}, out={out!r}, resume="bench", progress=False)
done = time.perf_counter()
print(json.dumps({{"total_s": done - started, "resume_s": done - built, "build_task_s": built - started,
                  "status": result.status, "counts": result.counts,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

READ_STATE = """
import json, time
from pathlib import Path
from evalkit.runner.journal import Journal
started = time.perf_counter()
state = Journal.open_existing(Path({run!r})).read_state()
print(json.dumps({{"read_state_s": time.perf_counter() - started, "done": len(state.done)}}))
"""


def ensure_full_run(url: str, n: int) -> None:
    manifest = KEPT / "bench" / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text())["totals"]["done"] == n:
        return
    shutil.rmtree(KEPT, ignore_errors=True)
    command = [sys.executable, str(BENCH / "drivers.py"), "evalkit", "--url", url, "-n", str(n), "-c", "64"]
    subprocess.run(command + ["--stream", "--out", str(KEPT), "--keep"], check=True, capture_output=True)


def cut(n: int, missing: int) -> None:
    """A copy of the full run with the journal lines and cache entries of the last `missing` samples removed."""
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(KEPT, WORK)
    gone = {str(i) for i in range(n - missing, n)}
    journal = WORK / "bench" / "samples.jsonl"
    kept_lines, requests = [], []
    for line in journal.read_bytes().splitlines(keepends=True):
        record = json.loads(line)
        if record["key"][2] in gone:
            requests.append(record["request"])
        else:
            kept_lines.append(line)
    journal.write_bytes(b"".join(kept_lines))
    with sqlite3.connect(WORK / "cache.sqlite") as db:
        db.executemany("DELETE FROM responses WHERE key = ?", [(r,) for r in set(requests)])
    manifest = WORK / "bench" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["status"] = "interrupted"
    manifest.write_text(json.dumps(data))


def python(code: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=BENCH
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def fresh(url: str, missing: int) -> dict:
    command = [
        sys.executable,
        str(BENCH / "drivers.py"),
        "evalkit",
        "--url",
        url,
        "-n",
        str(missing),
        "-c",
        "64",
    ]
    output = subprocess.run(
        command + ["--stream", "--tmp", str(BENCH / "out")], capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--missing", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    missing = round(args.samples * args.missing)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}; {args.samples} samples, {missing} missing"
    )
    rows: dict[str, list[float]] = {}
    with server(0, port=RESUME_PORT) as (url, _):
        ensure_full_run(url, args.samples)
        for _ in range(args.repeats):
            cut(args.samples, missing)
            state = python(READ_STATE.format(run=str(WORK / "bench")))
            resumed = python(RESUME.format(bench=str(BENCH), n=args.samples, url=url, out=str(WORK)))
            assert resumed["status"] == "completed" and resumed["counts"]["sent"] == missing, resumed
            baseline = fresh(url, missing)
            for name, value in (
                (f"read journal state ({args.samples - missing} samples)", state["read_state_s"]),
                (f"build the {args.samples}-sample Task", resumed["build_task_s"]),
                ("evalkit.run(resume=...) to completion", resumed["resume_s"]),
                (f"fresh run of {missing} samples (the unavoidable part)", baseline["wall_s"]),
                ("resume peak RSS MB", resumed["peak_rss_mb"]),
            ):
                rows.setdefault(name, []).append(value)
    print("| step | median | runs |")
    print("|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
