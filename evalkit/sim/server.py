"""Starting and stopping a simulator: in a background thread (own event loop) or in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from evalkit.common.errors import ConfigError
from evalkit.common.identity import identity
from evalkit.sim import KEY_ENV
from evalkit.sim.app import API, SimApp, SimConfig
from evalkit.sim.faults import Faults
from evalkit.sim.index import SampleIndex, TaskSpec
from evalkit.sim.profiles import SimModel, resolve_models
from evalkit.task.spec import Sample, Task

SHUTDOWN_TIMEOUT_S = 0.25
DEFAULT_CLIENT_KEY = "sim-key"


class SimServer:
    """A running simulator. Use as a context manager, or call `close()`.

    base_url: the OpenAI-compatible base URL, e.g. `http://127.0.0.1:PORT/api/v1`.
    api_key: a key the server accepts (the one it was started with, else a placeholder).
    """

    def __init__(self, base_url: str, api_key: str, stopper: _Stopper) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self._stopper = stopper

    def __repr__(self) -> str:
        return f"SimServer(base_url={self.base_url!r})"

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port, thread or process (idempotent)."""
        self._stopper.stop()

    def set_credits(self, balance_rub: float) -> None:
        """Set the account's remaining balance in ₽ (e.g. to restore credit after a 402)."""
        self._admin("POST", "/sim/credits", {"balance": balance_rub})

    def hold_after(self, passes: int) -> None:
        """Let `passes` more chat requests through, then hold every later one until `release()`
        (a test hook: the run is provably in flight while `stats()["gate"]["held"] > 0`)."""
        self._admin("POST", "/sim/gate", {"hold_after": passes})

    def release(self) -> None:
        """Open the gate: held chat requests go on."""
        self._admin("POST", "/sim/gate", {"release": True})

    def stats(self) -> dict[str, Any]:
        """Requests by outcome, ₽ billed, balance left, generations kept, samples indexed, the gate."""
        return self._admin("GET", "/sim/stats")

    def _admin(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        root = self.base_url.removesuffix(API)
        request = urllib.request.Request(
            root + path,
            method=method,
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


class _Stopper:
    def stop(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def serve(
    tasks: Iterable[TaskSpec] | None = None,
    *,
    models: Iterable[SimModel | str] | None = None,
    faults: Faults | str | None = None,
    seed: int = 0,
    port: int = 0,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    latency_scale: float = 1.0,
    request_log: str | Path | None = None,
    samples_per_task: int | None = None,
    process: bool = False,
) -> SimServer:
    """Start a RouterAI-faithful simulator and return its handle (a context manager).

    tasks: Task objects, task YAML paths or names, or already loaded `(task, samples)` pairs; the
        simulator answers their samples (others get a generic reply).
    models: SimModel profiles or ids of the defaults (see `evalkit.sim.profiles`); None serves all defaults.
    faults: injected failures and the credit balance (`Faults` or "rate_limit=0.1,credits=5").
    api_key: the only key accepted; None accepts any.
    latency_scale: multiplies all simulated latencies; 0 answers at once.
    request_log: a JSONL file receiving one line per chat request.
    process: run in a separate process (benchmarks), else in a background thread.
    """
    faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
    if latency_scale < 0:
        raise ConfigError("latency_scale must be >= 0", where="sim")
    catalog = resolve_models(models)
    tasks = list(tasks or [])
    log = Path(request_log) if request_log is not None else None
    if process:
        return _serve_process(
            tasks, catalog, faults, seed, host, port, api_key, latency_scale, log, samples_per_task
        )
    index = SampleIndex.build(tasks, samples_per_task)
    config = SimConfig(catalog, faults, seed, api_key, latency_scale, log)
    return _serve_thread(SimApp(config, index), host, port, api_key)


# ----- in a thread -----


class _ThreadStopper(_Stopper):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, thread: threading.Thread
    ) -> None:
        self._loop, self._stop, self._thread = loop, stop, thread

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may have closed already
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()


def _serve_thread(sim: SimApp, host: str, port: int, api_key: str | None) -> SimServer:
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(run_until_stopped(sim, host, port, on_ready=_ready))
        except BaseException as exc:  # reported to the caller of serve()
            box.setdefault("error", exc)
            ready.set()
        finally:
            loop.close()

    def _ready(url: str, stop: asyncio.Event) -> None:
        box.update(url=url, stop=stop, loop=asyncio.get_running_loop())
        ready.set()

    thread = threading.Thread(target=run, name="evalkit-sim", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:
        thread.join()
        raise ConfigError(f"cannot start the simulator on {host}:{port}: {box['error']}", where="sim")
    stopper = _ThreadStopper(box["loop"], box["stop"], thread)
    return SimServer(box["url"], api_key or DEFAULT_CLIENT_KEY, stopper)


async def run_until_stopped(sim: SimApp, host: str, port: int, on_ready: Any) -> None:
    """Serve `sim` until the `asyncio.Event` passed to `on_ready(base_url, stop_event)` is set."""
    runner = web.AppRunner(
        sim.build(), handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        stop = asyncio.Event()
        on_ready(f"http://{host}:{bound_port}{API}", stop)
        await stop.wait()
    finally:
        await runner.cleanup()


# ----- in a process -----


class _ProcessStopper(_Stopper):
    def __init__(self, process: subprocess.Popen[str], workdir: tempfile.TemporaryDirectory[str]) -> None:
        self._process, self._workdir = process, workdir

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._workdir.cleanup()


def _serve_process(
    tasks: Sequence[TaskSpec],
    catalog: dict[str, SimModel],
    faults: Faults,
    seed: int,
    host: str,
    port: int,
    api_key: str | None,
    latency_scale: float,
    log: Path | None,
    samples_per_task: int | None,
) -> SimServer:
    workdir = tempfile.TemporaryDirectory(prefix="evalkit-sim-")
    spec = Path(workdir.name) / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "tasks": [_task_spec(t) for t in tasks],
                "models": [m.model_dump(mode="json") for m in catalog.values()],
            },
            ensure_ascii=False,
            default=str,
        ),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "evalkit.sim", "--spec", str(spec), "--host", host, "--port", str(port)]
    command += ["--seed", str(seed), "--faults", faults.to_text(), "--latency-scale", str(latency_scale)]
    command += ["--watch-stdin"]
    if log is not None:
        command += ["--request-log", str(log)]
    if samples_per_task is not None:
        command += ["--samples-per-task", str(samples_per_task)]
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if api_key is not None:
        env[KEY_ENV] = api_key
    stderr = (Path(workdir.name) / "stderr.txt").open("w")
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True
    )
    stderr.close()
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    stopper = _ProcessStopper(process, workdir)
    if not first.startswith("http"):
        detail = (Path(workdir.name) / "stderr.txt").read_text()[-2000:].strip()
        stopper.stop()
        raise ConfigError(f"the simulator process did not start: {detail or 'no output'}", where="sim")
    return SimServer(first, api_key or DEFAULT_CLIENT_KEY, stopper)


def _task_spec(spec: TaskSpec) -> Any:
    """A task as JSON for the child process: names and paths as they are, objects dumped."""
    if isinstance(spec, (str, Path)):
        return str(spec)
    task, samples = spec if isinstance(spec, tuple) else (spec, None)
    dumped = task.model_dump(mode="json", exclude={"samples", "scorer"})
    # a Python scorer goes by its identity: the simulator answers generically, as in process
    dumped["scorer"] = {"name": identity(task.scorer)} if callable(task.scorer) else task.scorer.model_dump()
    rows = samples if samples is not None else task.samples
    if rows is not None:
        dumped["samples"] = [_sample_json(s) for s in rows]
        dumped["source"] = None
    return dumped


def _sample_json(sample: Sample) -> dict[str, Any]:
    fields = {k: v for k, v in sample.fields.items() if _jsonable(v)}
    metadata = {k: v for k, v in sample.metadata.items() if _jsonable(v)}
    update = {"images": [], "fields": fields, "metadata": metadata}
    return sample.model_copy(update=update).model_dump(mode="json")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def load_spec(path: Path) -> tuple[list[TaskSpec], list[SimModel]]:
    """Read what `_serve_process` wrote: task specs and model profiles."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    tasks: list[TaskSpec] = [t if isinstance(t, str) else Task.model_validate(t) for t in raw["tasks"]]
    return tasks, [SimModel.model_validate(m) for m in raw["models"]]
