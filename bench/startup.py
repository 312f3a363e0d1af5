"""Start-up: `import evalkit`, `evalkit --help`, and `evalkit run` to its first request, with a breakdown.

* `import evalkit` and `evalkit --help`: wall time of a fresh process, median of `--repeats`, minus a
  bare `python -c pass` (the interpreter's own start-up is reported separately). Also checks that
  openai, pandas, matplotlib and datasets are not imported by either.
* `evalkit run builtin_qa -m bench/fixed --base-url ... -n 20 -q` against bench/fastserver.py: the
  server notes (wall clock) when the catalog request and the first chat request arrive; the
  breakdown adds how long the run's imports take (`-X importtime`, top-level packages).

    python bench/startup.py [--repeats 7]
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
import urllib.request
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from throughput import server  # noqa: E402

HEAVY = ("openai", "pandas", "matplotlib", "datasets", "numpy", "scipy", "pyarrow")
EVALKIT = [sys.executable, "-m", "evalkit.cli"]


def wall(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def median_wall(command: list[str], repeats: int) -> tuple[float, list[float]]:
    wall(command)  # warm the page cache and .pyc files
    times = [wall(command) for _ in range(repeats)]
    return statistics.median(times), times


def heavy_imports(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return [m for m in output.stdout.strip().split(",") if m]


def importtime(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Cumulative import time (s) per top-level package, from `python -X importtime`."""
    output = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env
    )
    totals: dict[str, float] = defaultdict(float)
    for line in output.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if not cumulative.isdigit():
            continue
        if not name.startswith(" ") and "." not in name.strip():  # a top-level package
            totals[name.strip()] += int(cumulative) / 1e6
    return dict(sorted(totals.items(), key=lambda kv: -kv[1])[:8])


def first_request(url: str, repeats: int) -> list[dict[str, float]]:
    root = url.removesuffix("/api/v1")
    env = dict(os.environ, ROUTERAI_API_KEY="bench-key")
    rows = []
    for _ in range(repeats + 1):
        with tempfile.TemporaryDirectory(dir=BENCH / "out") as out:
            env["EVALKIT_CACHE_DIR"] = out  # a cold catalog cache: the run asks GET /models every time
            urllib.request.urlopen(urllib.request.Request(root + "/bench/reset", method="POST")).read()
            command = [*EVALKIT, "run", "builtin_qa", "-m", "bench/fixed", "--base-url", url, "-n", "20"]
            started = time.time()
            subprocess.run([*command, "-q", "--out", out], check=True, capture_output=True, env=env)
            ended = time.time()
            stats = json.loads(urllib.request.urlopen(root + "/bench/stats").read())
        rows.append(
            {
                "to_catalog_request_s": stats["first_models_at"] - started,
                "to_first_chat_request_s": stats["first_chat_at"] - started,
                "whole_run_s": ended - started,
            }
        )
    return rows[1:]  # the first one warms caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    (BENCH / "out").mkdir(exist_ok=True)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}, median of {args.repeats}"
    )
    bare, _ = median_wall([sys.executable, "-c", "pass"], args.repeats)
    imp, imp_runs = median_wall([sys.executable, "-c", "import evalkit"], args.repeats)
    api, api_runs = median_wall(
        [sys.executable, "-c", "import evalkit; evalkit.run; evalkit.Task"], args.repeats
    )
    hlp, hlp_runs = median_wall([*EVALKIT, "--help"], args.repeats)
    print("| measurement | median s | runs s | target |")
    print("|---|---|---|---|")
    print(f"| bare `python -c pass` | {bare:.3f} | | |")
    print(
        f"| `import evalkit` (minus bare python) | {imp - bare:.3f} | {', '.join(f'{t - bare:.3f}' for t in imp_runs)} | < 0.3 |"
    )
    print(
        f"| `import evalkit; evalkit.run; evalkit.Task` (minus bare python) | {api - bare:.3f} | "
        f"{', '.join(f'{t - bare:.3f}' for t in api_runs)} | |"
    )
    print(
        f"| `evalkit --help` (whole process) | {hlp:.3f} | {', '.join(f'{t:.3f}' for t in hlp_runs)} | < 0.5 |"
    )
    with server(0) as (url, _):
        runs = first_request(url, args.repeats)
    for key, label in (
        ("to_catalog_request_s", "`evalkit run` start → catalog request (`GET /models`)"),
        ("to_first_chat_request_s", "`evalkit run` start → first chat request"),
        ("whole_run_s", "`evalkit run` of 20 samples, whole process"),
    ):
        values = [r[key] for r in runs]
        target = "< 2" if key == "to_first_chat_request_s" else ""
        print(
            f"| {label} | {statistics.median(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} | {target} |"
        )
    print()
    print(f"heavy modules after `import evalkit`: {heavy_imports('import evalkit') or 'none'}")
    print(f"heavy modules after `evalkit --help`: {heavy_imports('import evalkit.cli') or 'none'}")
    env = dict(os.environ, ROUTERAI_API_KEY="bench-key")
    with server(0) as (url, _), tempfile.TemporaryDirectory(dir=BENCH / "out") as out:
        command = [
            *EVALKIT,
            "run",
            "builtin_qa",
            "-m",
            "bench/fixed",
            "--base-url",
            url,
            "-n",
            "20",
            "-q",
            "--out",
            out,
        ]
        totals = importtime(command, env)
    print(
        "import time of `evalkit run` by top-level package (s): "
        + ", ".join(f"{k} {v:.3f}" for k, v in totals.items())
    )


if __name__ == "__main__":
    main()
