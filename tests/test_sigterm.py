"""SIGTERM (`timeout`, `docker stop`, a batch scheduler) stops a run as Ctrl-C does, even when the
command was started with SIGINT ignored (a background job of a script). It used to kill the process
outright, leaving the manifest `running` and printing no way to resume."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from reliability_helpers import cli_command, cli_env, journal_lines, wait_until_held_with_samples

from evalkit import sim
from evalkit.runner.journal import read_manifest

N = 120


def _samples(run_dir: Path) -> list[tuple[str, ...]]:
    return [tuple(map(str, line["key"])) for line in journal_lines(run_dir) if line["kind"] == "sample"]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_stops_the_run_cleanly_and_the_resume_pays_nothing_twice(tmp_path: Path, sigint: str) -> None:
    run_dir = tmp_path / "term"
    with sim.serve(tasks=["builtin_qa"], latency_scale=0.1, process=True) as server:
        common = ["--base-url", server.base_url, "--out", str(tmp_path), "--no-cache", "-q"]
        server.hold_after(8)  # the 9th request on waits: the run cannot end before the signal
        try:
            process = subprocess.Popen(
                cli_command("run", "builtin_qa", "-m", "sim/small-fast", "-n", str(N), "-c", "1")
                + ["--run-id", "term", *common],
                env=cli_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=_ignore_sigint if sigint == "ignored" else None,
            )
            wait_until_held_with_samples(server, run_dir, 8, alive=lambda: process.poll() is None)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            server.release()
        _check_stopped_and_resumed(process.returncode, stdout, stderr, run_dir, tmp_path, common)


def _check_stopped_and_resumed(
    code: int, stdout: str, stderr: str, run_dir: Path, tmp_path: Path, common: list[str]
) -> None:
    assert code == 128 + signal.SIGTERM
    assert "Traceback" not in stderr
    assert f"evalkit run --resume term --out {tmp_path}" in stdout + stderr
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "interrupted" and "--resume" in manifest["message"]
    assert (run_dir / "samples.jsonl").read_bytes().endswith(b"\n")
    kept = _samples(run_dir)
    assert len(kept) == 8 and manifest["totals"]["done"] == len(kept)
    answered = {tuple(map(str, line["key"])) for line in journal_lines(run_dir) if line["kind"] == "response"}
    resumed = subprocess.run(
        cli_command("run", "--resume", "term", "-c", "8", *common),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    samples = _samples(run_dir)
    assert len(samples) == len(set(samples)) == N
    assert read_manifest(run_dir)["invocations"][-1]["sent"] == N - len(answered)  # nothing asked twice
