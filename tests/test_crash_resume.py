"""Crash and resume: SIGKILL at random moments, SIGINT, and a results file cut mid-line.

The simulator runs in its own process (it survives the kill) and logs every chat request with the
sha256 of its body, so the tests can tell which requests were sent again after a resume.

The killed runs are the CLI's own `main([...])` in a child forked from a fork server that holds the
imports (`cli_process`): the same code path as the `evalkit` command without paying ~3 s of
interpreter start and imports a dozen times (the SIGINT test runs the real `evalkit` executable).
"""

from __future__ import annotations

import collections
import itertools
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    KEY,
    MODEL,
    cli_command,
    cli_env,
    cli_process,
    comparable,
    journal_lines,
    request_log,
    wait_until_held_with_samples,
    write_task,
)

import evalkit
from evalkit import sim
from evalkit.runner.journal import read_manifest
from evalkit.task.spec import load_task

N_SAMPLES = 48
CONCURRENCY = 8
LATENCY_SCALE = 0.8  # ~0.2 s per request: the run sends for about a second
# Where the kills land, spread by stratifying a seeded draw: 3 in start-up (early, middle and late in
# the first 0.8 s) and 9 after a number of journal lines drawn from each ninth of 2..71 in turn, so the
# kills cover the whole run, cache on and off alike, however the seed falls.
START_UP_KILLS = 3
MID_RUN_KILLS = 9
KILL_CYCLES = START_UP_KILLS + MID_RUN_KILLS
FIRST_LINES, LAST_LINES = 2, 3 * N_SAMPLES // 2 - 1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A task file, a slow simulator (for runs to kill) and an instant one (for resumes and reference
    runs); both log every chat request, so a request sent again is seen wherever it went."""
    root = tmp_path_factory.mktemp("crash")
    task = write_task(root / "task", N_SAMPLES)
    log, fast_log = root / "requests.jsonl", root / "fast-requests.jsonl"
    load_task(task).load_samples()

    with (
        sim.serve(tasks=[str(task)], latency_scale=LATENCY_SCALE, request_log=log, process=True) as slow,
        sim.serve(tasks=[str(task)], latency_scale=0, request_log=fast_log, process=True) as fast,
    ):
        World = collections.namedtuple("World", "root task log fast_log slow fast")
        yield World(root, task, log, fast_log, slow, fast)


def _cli_args(world: Any, out: Path, run_id: str, seed: int, *extra: str, server: Any = None) -> list[str]:
    base_url = (server or world.slow).base_url
    return [
        "run", str(world.task), "--model", MODEL, "--base-url", base_url, "--out", str(out),
        "--run-id", run_id, "--seed", str(seed), "-c", str(CONCURRENCY), "-q", *extra,
    ]  # fmt: skip


def _reference(world: Any, seed: int, monkeypatch: pytest.MonkeyPatch, out: Path) -> dict:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    result = evalkit.run(
        [str(world.task)], [MODEL], base_url=world.fast.base_url, out=str(out), seed=seed,
        concurrency=CONCURRENCY, cache=False, progress=False,
    )  # fmt: skip
    assert result.status == "completed"
    return comparable(result.df)


def _kill_at_random(
    argv: list[str],
    run_dir: Path,
    delay_s: float = 0.0,
    *,
    from_start: bool = False,
    after_lines: int | None = None,
) -> int:
    """Start the CLI in a child and SIGKILL it: once its journal holds `after_lines` complete lines (a
    moment defined by the run's progress; with the simulator's gate closed the run cannot finish
    first), or `delay_s` after the fork with `from_start`, or `delay_s` after its run directory
    appears. Returns the exit code (-9 when killed)."""
    child = cli_process(argv)
    started = time.monotonic()
    if after_lines is not None:
        while child.is_alive() and len(journal_lines(run_dir)) < after_lines:
            assert time.monotonic() - started < 120, "the run never got that far"
            time.sleep(0.002)
        delay_s = 0.0
    while not from_start and child.is_alive() and not (run_dir / "manifest.json").exists():
        assert time.monotonic() - started < 60, "the run never started"
        time.sleep(0.005)
    child.join(delay_s)
    if child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    return child.exitcode


def _recorded_bodies(run_dir: Path, log: list[dict[str, Any]]) -> set[str]:
    """sha256 of the request bodies whose responses the journal holds."""
    body_of = {entry["generation_id"]: entry["body_sha256"] for entry in log if entry["generation_id"]}
    recorded = set()
    for line in journal_lines(run_dir):
        if line["kind"] == "response":
            recorded.add(body_of[line["call"]["generation_id"]])
    return recorded


def _resume(world: Any, out: Path, run_id: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Resume on the instant simulator (the same answers as the slow one: same seed, same task)."""
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    if not (out / run_id / "manifest.json").exists():
        # killed before the run was created: nothing was sent, so the user just starts it again
        assert journal_lines(out / run_id) == []
        return None
    return evalkit.run([], [], base_url=world.fast.base_url, out=str(out), resume=run_id, progress=False)


def _kill_moments(rng: random.Random) -> list[tuple[str, float]]:
    """KILL_CYCLES moments, ("start-up", seconds after the fork) or ("lines", journal lines written),
    each drawn within its own stratum; the start-up kills are cycles 0, 5 and 10 (cache on, off, on)."""
    window = 0.8
    start_up = [rng.uniform(window * i / START_UP_KILLS, window * (i + 1) / START_UP_KILLS)
                for i in range(START_UP_KILLS)]  # fmt: skip
    span = LAST_LINES + 1 - FIRST_LINES
    edges = [FIRST_LINES + span * i // MID_RUN_KILLS for i in range(MID_RUN_KILLS + 1)]
    moments: list[tuple[str, float]] = [
        ("lines", rng.randrange(lo, hi)) for lo, hi in itertools.pairwise(edges)
    ]
    for i, delay in enumerate(start_up):
        moments.insert(5 * i, ("start-up", delay))
    return moments


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20240917)
    landed = collections.Counter()
    for cycle, (moment, at) in enumerate(_kill_moments(rng)):
        seed = rng.randrange(1_000_000)
        out, run_id = tmp_path / f"cycle{cycle}", f"kill{cycle}"
        extra = ("--no-cache",) if cycle % 2 else ()  # odd cycles: the journal alone prevents re-sends
        log_start, fast_log_start = len(request_log(world.log)), len(request_log(world.fast_log))
        argv = _cli_args(world, out, run_id, seed, *extra)
        # a start-up kill may land before the run exists; the others after a number of journal lines
        # (of 2 per sample), while the run sends and records
        if moment == "start-up":
            _kill_at_random(argv, out / run_id, at, from_start=True)
        else:
            after_lines = int(at)
            # the gate lets through enough requests to write `after_lines` lines but never all 48:
            # the run cannot finish before the kill, however slowly the poller gets to look
            world.slow.hold_after(min(after_lines, N_SAMPLES - 1))
            try:
                _kill_at_random(argv, out / run_id, after_lines=after_lines)
            finally:
                world.slow.release()
        lines = journal_lines(out / run_id)
        scored = sum(1 for line in lines if line["kind"] == "sample")
        landed["mid-run" if 0 < scored < N_SAMPLES else "edge"] += 1
        landed["response-not-yet-scored"] += any(
            line["kind"] == "response" and not any(
                o["kind"] == "sample" and o["key"] == line["key"] for o in lines
            ) for line in lines
        )  # fmt: skip
        recorded = _recorded_bodies(out / run_id, request_log(world.log)[log_start:])
        resumed = _resume(world, out, run_id, monkeypatch)
        if resumed is None:  # started again from scratch, on the instant simulator
            code = _kill_at_random(
                _cli_args(world, out, run_id, seed, *extra, server=world.fast), out / run_id, 60
            )
            assert code == 0
            resumed_df = evalkit.load_results(out / run_id)
        else:
            assert resumed.status == "completed", resumed.message
            resumed_df = resumed.df
        sent = collections.Counter(
            e["body_sha256"]
            for e in request_log(world.log)[log_start:] + request_log(world.fast_log)[fast_log_start:]
        )  # read before the reference run, which sends everything to the instant simulator
        assert comparable(resumed_df) == _reference(world, seed, monkeypatch, tmp_path / f"ref{cycle}")
        samples = [tuple(line["key"]) for line in journal_lines(out / run_id) if line["kind"] == "sample"]
        assert len(samples) == len(set(samples)) == N_SAMPLES, "a sample was recorded twice or lost"
        resent = [body for body in recorded if sent[body] != 1]
        assert not resent, f"cycle {cycle}: {len(resent)} recorded responses were requested again"
    assert landed["mid-run"] >= KILL_CYCLES // 2, landed  # the kills really hit running runs


@pytest.mark.slow
def test_sigint_stops_cleanly_flushes_and_says_how_to_resume(world: Any, tmp_path: Path) -> None:
    out, run_id = tmp_path / "out", "ctrl-c"
    world.slow.hold_after(8)  # the 9th request on waits: the run cannot end before the signal
    try:
        process = subprocess.Popen(
            cli_command(*_cli_args(world, out, run_id, 1)),
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until_held_with_samples(world.slow, out / run_id, 8, alive=lambda: process.poll() is None)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        world.slow.release()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert f"evalkit run --resume {run_id} --out {out}" in stdout + stderr
    manifest = read_manifest(out / run_id)
    assert manifest["status"] == "interrupted" and "--resume" in manifest["message"]
    raw = (out / run_id / "samples.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "the journal was left with a partial line"
    kept = [line for line in journal_lines(out / run_id) if line["kind"] == "sample"]
    assert len(kept) == 8  # exactly the requests the gate let through
    assert manifest["totals"]["done"] == len(kept)
    resumed = subprocess.run(
        cli_command("run", "--resume", run_id, "--out", str(out), "--base-url", world.fast.base_url, "-q"),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len(evalkit.load_results(out / run_id)) == N_SAMPLES


def test_a_results_file_cut_mid_line_is_recovered_on_resume(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    run = dict(base_url=world.fast.base_url, out=str(tmp_path), progress=False, cache=False)
    first = evalkit.run([str(world.task)], [MODEL], run_id="cut", **run)
    path = first.path / "samples.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    last_response = max(i for i, line in enumerate(lines) if b'"kind":"response"' in line)
    cut_key = journal_lines(first.path)[last_response]["key"]
    # power loss mid-line: the last response line is half written and nothing after it survived
    path.write_bytes(b"".join(lines[:last_response]) + lines[last_response][:60])
    log_before = world.fast.stats()["requests"]
    resumed = evalkit.run([], [], resume="cut", **run)
    assert resumed.status == "completed"
    after = path.read_bytes()
    assert all(line.endswith(b"}\n") for line in after.splitlines(keepends=True))
    samples = [tuple(line["key"]) for line in journal_lines(first.path) if line["kind"] == "sample"]
    assert len(samples) == len(set(samples)) == N_SAMPLES
    assert tuple(cut_key) in samples
    assert world.fast.stats()["requests"] - log_before == 1  # only the sample whose response was cut
    assert resumed.counts["done"] == N_SAMPLES
    assert comparable(resumed.df) == comparable(first.df)


class _Sink:
    def __init__(self) -> None:
        self.closed: Any = None

    def update(self, snapshot: Any) -> None:
        pass

    def close(self, snapshot: Any) -> None:
        self.closed = snapshot


def test_an_interrupted_jupyter_kernel_stops_the_run_cleanly(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jupyter's "interrupt kernel" raises KeyboardInterrupt in the main thread while `run` waits for
    the run on its private loop; `_thread.interrupt_main` does the same here."""
    import _thread
    import asyncio
    import threading

    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    sink, run_dir = _Sink(), tmp_path / "nb"

    def interrupt_when_some_are_recorded() -> None:
        try:
            wait_until_held_with_samples(world.slow, run_dir, 4, alive=lambda: True)
        except AssertionError:
            world.slow.release()  # let the run finish: "DID NOT RAISE" then fails the test
            raise
        _thread.interrupt_main()

    async def cell() -> Any:  # a notebook cell: the kernel's loop is running
        return evalkit.run(
            [str(world.task)], [MODEL], base_url=world.slow.base_url, out=str(tmp_path), run_id="nb",
            concurrency=2, progress=sink,
        )  # fmt: skip

    world.slow.hold_after(4)  # the 5th request on waits: the run cannot end before the interrupt
    interrupter = threading.Thread(target=interrupt_when_some_are_recorded, daemon=True)
    interrupter.start()
    kernel_loop = asyncio.new_event_loop()  # like ipykernel's: no SIGINT handler of asyncio's own
    try:
        with pytest.raises(KeyboardInterrupt):
            kernel_loop.run_until_complete(cell())
    finally:
        world.slow.release()
        kernel_loop.close()
    interrupter.join(10)
    assert sink.closed is not None and sink.closed.status == "interrupted"
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "interrupted"
    assert "resume='nb'" in capsys.readouterr().err
    kept = journal_lines(run_dir)
    assert (run_dir / "samples.jsonl").read_bytes().endswith(b"\n")
    assert sum(line["kind"] == "sample" for line in kept) == 4  # exactly what the gate let through
    resumed = evalkit.run(
        [], [], base_url=world.fast.base_url, out=str(tmp_path), resume="nb", progress=False
    )
    assert resumed.status == "completed" and len(resumed.df) == N_SAMPLES
