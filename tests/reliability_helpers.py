"""Helpers shared by the reliability tests: a task on a local jsonl file, the CLI as a subprocess,
and readers for the journal and the simulator's request log."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-routerai-RELIABILITY-7f3a9c1e5b2d4086"
MODEL = "sim/small-fast"
COMPARED = ["output", "extracted", "score", "error", "cost_rub", "prompt_tokens", "completion_tokens"]


def children(pid: int) -> list[int]:
    """The live children of process `pid` (every thread's)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`: its children, theirs, and so on."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def write_task(directory: Path, n: int, name: str = "arith_local") -> Path:
    """A QA task YAML reading `n` arithmetic questions from a jsonl file next to it."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"q{i:03d}", "question": f"What is {i} + {i * 7}? Finish with 'Answer: <n>'.", "target": 8 * i}
        for i in range(n)
    ]
    data = directory / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task = directory / f"{name}.yaml"
    task.write_text(
        f"name: {name}\nfamily: qa\nsource:\n  path: {data.name}\n  format: json\n"
        "fields:\n  id: id\n  target: target\nprompt:\n  user: '{question}'\n"
        "scorer: numeric\ngeneration:\n  max_tokens: 64\n",
        encoding="utf-8",
    )
    return task


def cli_env(key: str = KEY, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "EVALKIT_BASE_URL")}
    env.update(ROUTERAI_API_KEY=key, PYTHONUNBUFFERED="1", **extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "evalkit.cli", *args]


def run_cli(*args: str, key: str = KEY, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), env=cli_env(key), capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def journal_lines(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of samples.jsonl (a trailing partial line is skipped)."""
    path = run_dir / "samples.jsonl"
    if not path.exists():
        return []
    lines = []
    for raw in path.read_bytes().splitlines(keepends=True):
        if raw.endswith(b"\n"):
            lines.append(json.loads(raw))
    return lines


def request_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def comparable(frame: pd.DataFrame) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """(task, model, sample_id, epoch) -> the values that must not depend on interruptions (no timings)."""
    rows = {}
    for row in frame.to_dict("records"):
        key = (row["task"], row["model"], row["sample_id"], int(row["epoch"]))
        rows[key] = tuple(None if pd.isna(row[c]) else row[c] for c in COMPARED)
    return rows


def wait_until_held_with_samples(server: Any, run_dir: Path, samples: int, alive: Any) -> None:
    """Wait until `samples` samples are recorded and a later request waits at the simulator's gate:
    from then on the run is provably in flight. The bound only catches a hang, it decides nothing."""
    deadline = time.monotonic() + 300
    while True:
        recorded = sum(line["kind"] == "sample" for line in journal_lines(run_dir))
        if recorded >= samples and server.stats()["gate"]["held"] > 0:
            return
        assert alive(), "the run ended while the gate held its requests"
        assert time.monotonic() < deadline, f"only {recorded} samples recorded, nothing held"
        time.sleep(0.02)


# What a CLI run imports, loaded once in the fork server that every `cli_process` child is forked from.
_CLI_IMPORTS = [
    "pandas", "openai", "aiohttp", "rich", "evalkit.cli.commands", "evalkit.cli.display", "evalkit.runner.api",
    "evalkit.runner.scheduler", "evalkit.client.call", "evalkit.client.catalog", "evalkit.results",
    "evalkit.stats", "evalkit.task.spec", "evalkit.sources", "evalkit.sim.command", "evalkit.scorers.numeric",
]  # fmt: skip


def cli_process(argv: list[str], key: str = KEY) -> multiprocessing.Process:
    """The CLI's own `main(argv)` in a started child process, its output discarded: the same code path
    as the `evalkit` command without an interpreter start-up and imports per child. The child is
    forked from a fork server (single-threaded, imports preloaded), never from this test process,
    whose other threads may hold a lock at the fork that the child would then crash or hang on."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_CLI_IMPORTS)  # only before the server's first start
    child = context.Process(target=_cli_main, args=(argv, {**os.environ, "ROUTERAI_API_KEY": key}))
    child.start()
    return child


def _cli_main(argv: list[str], env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)  # the test's environment now, not the fork server's at its start
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child exits below
    from evalkit.cli.commands import main

    os._exit(main(argv))
