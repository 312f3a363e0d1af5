"""Memory growth: peak RSS of a whole evalkit run at 2,000, 10,000 and 100,000 samples.

Each run is its own process (`bench/drivers.py`) against bench/fastserver.py (0 ms latency, its own
process), streaming, concurrency 64, journal and cache on. The raw AsyncOpenAI loop runs the same
counts as a reference. MB per 1000 samples is the slope of peak RSS between the smallest and the
largest run. The 100k evalkit run is kept in bench/out/resume-100k for bench/resume.py.

    python bench/memory.py [--sizes 2000 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from throughput import server  # noqa: E402

KEPT = BENCH / "out" / "resume-100k"
RESUME_PORT = 18555  # a resumed run keeps its saved base URL, so the kept run must be served on a fixed port


def run(harness: str, url: str, n: int, keep: bool) -> dict:
    command = [
        sys.executable,
        str(BENCH / "drivers.py"),
        harness,
        "--url",
        url,
        "-n",
        str(n),
        "-c",
        "64",
        "--stream",
    ]
    if harness == "evalkit":
        command += ["--tmp", str(BENCH / "out")]
        if keep:
            shutil.rmtree(KEPT, ignore_errors=True)
            command += ["--out", str(KEPT), "--keep"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 100000])
    parser.add_argument("--harness", nargs="+", default=["evalkit", "raw"])
    args = parser.parse_args()
    (BENCH / "out").mkdir(exist_ok=True)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}; c=64, streaming, 0 ms"
    )
    print("| harness | samples | peak RSS MB | RSS before the run MB | wall s | samples/s | errors |")
    print("|---|---|---|---|---|---|---|")
    peaks: dict[str, list[tuple[int, float]]] = {}
    with server(0, port=RESUME_PORT) as (url, _):
        for n in args.sizes:
            for harness in args.harness:
                row = run(harness, url, n, keep=harness == "evalkit" and n == max(args.sizes))
                peaks.setdefault(harness, []).append((n, row["peak_rss_mb"]))
                print(
                    f"| {row['harness']} | {n} | {row['peak_rss_mb']:.0f} | {row['base_rss_mb']:.0f} | "
                    f"{row['wall_s']:.1f} | {row['samples_per_s']:.0f} | {row['errors']} |",
                    flush=True,
                )
    for harness, points in peaks.items():
        (n0, m0), (n1, m1) = points[0], points[-1]
        print(f"{harness}: {1000 * (m1 - m0) / (n1 - n0):.2f} MB per 1000 extra samples ({n0} → {n1})")


if __name__ == "__main__":
    main()
