"""`evalkit sim`: run the simulator in the foreground until SIGINT/SIGTERM.

The base URL is the first line of stdout (flushed at once), so scripts can start it and read it:

    evalkit sim --port 0 --tasks tasks/mgsm.yaml --faults rate_limit=0.1,drop_stream=0.01
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.common.errors import EvalkitError
from evalkit.sim import KEY_ENV
from evalkit.sim.profiles import DEFAULT_MODELS, JUDGE_MODELS

if TYPE_CHECKING:
    from evalkit.sim.app import SimApp

"""How a parent hands the accepted key to a simulator process (never on the command line)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `evalkit sim`."""
    ids = ", ".join(model.id for model in (*DEFAULT_MODELS, *JUDGE_MODELS))
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--models", default=None, help=f"comma-separated model ids to serve (default all: {ids})"
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="injected failures, e.g. rate_limit=0.1,server_error=0.02,error_in_200=0.01,error_in_stream=0.01,"
        "drop_stream=0.01,hang=0.01,hang_s=30,credits=100 (rates are probabilities per request; credits in ₽)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for answers, latencies and faults")
    parser.add_argument(
        "--tasks", nargs="*", default=[], help="task names or YAML paths whose samples to answer"
    )
    parser.add_argument(
        "--samples-per-task", type=int, default=None, help="index only this many samples per task"
    )
    parser.add_argument(
        "--latency-scale", type=float, default=1.0, help="multiply simulated latency (0: none)"
    )
    parser.add_argument(
        "--request-log", type=Path, default=None, help="append one JSON line per chat request"
    )
    parser.add_argument(
        "--api-key", default=None, help=f"the only key accepted (default: ${KEY_ENV} if set, else any key)"
    )
    parser.add_argument("--spec", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--watch-stdin", action="store_true", help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit status (2 for bad options or tasks)."""
    try:
        sim = _build(args)
    except EvalkitError as exc:
        print(f"evalkit sim: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        asyncio.run(_serve(sim, args))
    except OSError as exc:
        print(f"evalkit sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


def _build(args: argparse.Namespace) -> SimApp:
    from evalkit.sim.app import SimApp, SimConfig
    from evalkit.sim.faults import Faults
    from evalkit.sim.index import SampleIndex, TaskSpec
    from evalkit.sim.profiles import SimModel, resolve_models
    from evalkit.sim.server import load_spec

    tasks: list[TaskSpec] = list(args.tasks)
    models: list[SimModel | str] | None = args.models.split(",") if args.models else None
    if args.spec is not None:
        spec_tasks, spec_models = load_spec(args.spec)
        tasks += spec_tasks
        models = [*spec_models, *(models or [])]
    if args.latency_scale < 0:
        raise EvalkitError("must be >= 0", where="--latency-scale")
    config = SimConfig(
        models=resolve_models(models),
        faults=Faults.parse(args.faults),
        seed=args.seed,
        api_key=args.api_key or os.environ.get(KEY_ENV) or None,
        latency_scale=args.latency_scale,
        request_log=args.request_log,
    )
    return SimApp(config, SampleIndex.build(tasks, args.samples_per_task))


async def _serve(sim: SimApp, args: argparse.Namespace) -> None:
    from evalkit.sim.server import run_until_stopped

    loop = asyncio.get_running_loop()

    def ready(url: str, stop: asyncio.Event) -> None:
        print(url, flush=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if args.watch_stdin:  # a parent process owns us: exit when it goes away
            threading.Thread(target=_wait_stdin_eof, args=(loop, stop), daemon=True).start()

    await run_until_stopped(sim, args.host, args.port, on_ready=ready)


def _wait_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    while sys.stdin.readline():
        pass
    loop.call_soon_threadsafe(stop.set)


def run_cli(argv: list[str] | None = None) -> int:
    """`python -m evalkit.sim`."""
    parser = argparse.ArgumentParser(prog="evalkit sim", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return main(parser.parse_args(argv))
