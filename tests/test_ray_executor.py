"""The Ray executor on a two-node Ray cluster on this machine, with the simulator as the router:
the same results as the local executor, one ₽ ceiling across nodes under faults, a node killed mid-run
(each sample exactly once, no journaled response sent again), a run moved between Ray and local by
resume, shards on Ray merged into one run, and the score phase's code sandbox on the nodes.

One module-scoped cluster (its start-up is slow; CPU counts are tiny: the machine is shared)."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit import sim
from evalkit.runner.journal import iter_records, read_manifest
from tests.reliability_helpers import comparable, descendants, journal_lines, request_log, write_task
from tests.userdata import cli

if os.environ.get("CI"):  # CI (.ci/run) must prove these ran: a missing Ray fails there, never skips
    import ray
else:
    ray = pytest.importorskip("ray")

KEY_ENV = "EVALKIT_RAY_TEST_KEY"  # the nodes read the key from their own environment
MODELS = ["sim/small-fast", "meta-llama/llama-4-scout"]


@pytest.fixture(scope="module")
def cluster() -> Any:
    from ray.cluster_utils import Cluster

    os.environ[KEY_ENV] = "sk-ray-test-not-a-real-key"  # before the nodes start: they inherit it
    fast_failure_detection = {"health_check_period_ms": 500, "health_check_failure_threshold": 2}
    head = {"num_cpus": 1, "include_dashboard": False, "_system_config": fast_failure_detection}
    started = Cluster(initialize_head=True, head_node_args=head)
    started.add_node(num_cpus=1)
    ray.init(address=started.address, log_to_driver=False, logging_level="WARNING")
    started.wait_for_nodes()
    yield started
    ray.shutdown()
    started.shutdown()
    os.environ.pop(KEY_ENV, None)


def _run(task: Path, server: Any, out: Path, run_id: str, **options: Any) -> Any:
    options = {"concurrency": 4, "cache": False, "progress": False} | options
    return evalkit.run([str(task)], MODELS, base_url=server.base_url, api_key_env=KEY_ENV, out=str(out),
                       run_id=run_id, **options)  # fmt: skip


def test_same_results_as_the_local_executor(cluster: Any, tmp_path: Path) -> None:
    task = write_task(tmp_path, 8)
    out = tmp_path / "results"
    with sim.serve(tasks=[str(task)], latency_scale=0) as server:
        local = _run(task, server, out, "local")
        on_ray = _run(task, server, out, "ray", executor="ray")
        # a run cut in shards on the cluster, merged, is the same run
        for i in (1, 2):
            _run(task, server, out, f"part-{i}", executor="ray", shard=f"{i}/2")
    assert on_ray.status == local.status == "completed"
    assert comparable(on_ray.df) == comparable(local.df) and len(on_ray.df) == 16
    calls = read_manifest(out / "ray")["executor"]["calls_by_node"]
    assert len(calls) == 2 and sum(calls.values()) == 16  # both nodes called the router
    merged = evalkit.merge(["part-1", "part-2"], into="merged", out=str(out))
    assert comparable(merged.df) == comparable(local.df)
    totals = [read_manifest(out / name)["totals"] for name in ("local", "ray", "merged")]
    assert (
        totals[0]["spent_rub"]
        == pytest.approx(totals[1]["spent_rub"])
        == pytest.approx(totals[2]["spent_rub"])
    )
    assert totals[0]["sent"] == totals[1]["sent"] == totals[2]["sent"] == 16


def test_the_budget_holds_across_nodes_under_faults_and_the_run_resumes_locally(
    cluster: Any, tmp_path: Path
) -> None:
    task = write_task(tmp_path, 30)
    out = tmp_path / "results"
    log = tmp_path / "requests.jsonl"
    faults = "rate_limit=0.15,drop_stream=0.15,server_error=0.1"
    with sim.serve(tasks=[str(task)], latency_scale=0, faults=faults, request_log=log) as server:
        budget = 0.05
        stopped = _run(task, server, out, "capped", executor="ray", budget_rub=budget, retry_base_delay_s=0)
        billed = server.stats()["billed_rub"]
        manifest = read_manifest(out / "capped")
        assert stopped.status == "budget_exhausted", stopped.message
        assert 0 < billed <= budget  # what the router billed, across both nodes, under the ceiling
        assert manifest["totals"]["spent_rub"] + manifest["totals"]["unconfirmed_rub"] <= budget + 1e-12
        recorded = _recorded_bodies(out / "capped", request_log(log))
        log_start = len(request_log(log))
        # the run started on Ray finishes here, with more money, and asks nothing it recorded again
        finished = evalkit.run([], [], resume="capped", base_url=server.base_url, api_key_env=KEY_ENV,
                               out=str(out), budget_rub=10.0, progress=False, retry_base_delay_s=0)  # fmt: skip
        assert finished.status in ("completed", "completed_with_errors"), finished.message
    again = {entry["body_sha256"] for entry in request_log(log)[log_start:]}
    assert recorded and not recorded & again
    rows = [r for r in iter_records(out / "capped")]
    assert len({tuple(r["key"]) for r in rows}) == 60


def test_a_local_run_resumes_on_ray_without_asking_again(cluster: Any, tmp_path: Path) -> None:
    task = write_task(tmp_path, 20)
    out = tmp_path / "results"
    log = tmp_path / "requests.jsonl"
    with sim.serve(tasks=[str(task)], latency_scale=0, request_log=log) as server:
        stopped = _run(task, server, out, "moved", budget_rub=0.02)
        assert stopped.status == "budget_exhausted", stopped.message
        recorded = _recorded_bodies(out / "moved", request_log(log))
        log_start = len(request_log(log))
        finished = evalkit.run([], [], resume="moved", base_url=server.base_url, api_key_env=KEY_ENV,
                               out=str(out), budget_rub=10.0, progress=False, executor="ray")  # fmt: skip
    assert finished.status == "completed", finished.message
    again = [entry["body_sha256"] for entry in request_log(log)[log_start:]]
    assert recorded and again and not recorded & set(again)
    assert sum(read_manifest(out / "moved")["executor"]["calls_by_node"].values()) == len(again)
    samples = [tuple(r["key"]) for r in iter_records(out / "moved")]
    assert len(samples) == len(set(samples)) == 40


def test_a_worker_node_killed_mid_run_redoes_only_its_unfinished_samples(
    cluster: Any, tmp_path: Path
) -> None:
    victim = cluster.add_node(num_cpus=0)
    cluster.wait_for_nodes()
    task = write_task(tmp_path, 10)
    out = tmp_path / "results"
    log = tmp_path / "requests.jsonl"
    with sim.serve(tasks=[str(task)], latency_scale=0, request_log=log) as server:
        server.hold_after(6)  # six answers pass; every later request waits at the door
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(
                result=_run(task, server, out, "killed", executor="ray", concurrency=6)
            )
        )
        runner.start()
        _wait(lambda: server.stats()["gate"]["held"] >= 6)  # six calls in flight, spread over three nodes
        answered_before = {e["body_sha256"] for e in request_log(log) if e["completed"]}
        _lose_node(cluster, victim)
        _wait(lambda: server.stats()["gate"]["held"] < 6)  # the victim's held calls are gone with it
        server.release()
        runner.join(timeout=60)
    result = outcome["result"]
    assert result.status == "completed", result.message
    samples = [tuple(r["key"]) for r in iter_records(out / "killed")]
    assert len(samples) == len(set(samples)) == 20  # each sample exactly once
    completed = collections.Counter(e["body_sha256"] for e in request_log(log) if e["completed"])
    assert set(completed.values()) == {1} and len(completed) == 20  # no answered request was asked again
    assert answered_before <= set(completed)
    # the calls lost with the node may have been billed: their worst case stays committed
    manifest = read_manifest(out / "killed")
    assert manifest["totals"]["unconfirmed_rub"] > 0 and manifest["executor"]["workers_lost"] == 1


def test_the_score_phase_runs_code_in_the_nodes_sandboxes(cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "results"
    options = {"limit": 3, "sim": True, "out": str(out), "progress": False, "cache": False, "seed": 0}
    here = evalkit.run(["builtin_code"], ["sim/small-fast"], run_id="here", **options)
    evalkit.run(["builtin_code"], ["sim/small-fast"], run_id="gen", phase="generate", **options)
    scored = evalkit.score("gen", out=str(out), executor="ray")
    assert scored.status == here.status and scored.counts["scored"] == here.counts["scored"] == 3
    # ... and the same for a whole run on the cluster: calls and code scoring on the nodes
    on_ray = evalkit.run(["builtin_code"], ["sim/small-fast"], run_id="ray", executor="ray", **options)
    assert read_manifest(out / "ray")["executor"]["code_scored_on_nodes"] == 3
    assert comparable(on_ray.df) == comparable(here.df)
    mine = {r["sample_id"]: (r["score"], r["explanation"]) for r in iter_records(out / "gen")}
    theirs = {r["sample_id"]: (r["score"], r["explanation"]) for r in iter_records(out / "here")}
    assert mine == theirs


def test_a_node_without_the_key_stops_the_run_before_anything_is_sent(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVALKIT_DRIVER_ONLY_KEY", "sk-driver-only-0123456789")  # the nodes never had it
    task = write_task(tmp_path, 3)
    with sim.serve(tasks=[str(task)], latency_scale=0) as server:
        code, _, err = cli(["run", str(task), "-m", MODELS[0], "--base-url", server.base_url, "--api-key-env",
                            "EVALKIT_DRIVER_ONLY_KEY", "--executor", "ray", "--out", str(tmp_path), "-q"], capsys)  # fmt: skip
        assert server.stats()["requests"] == 0
    assert code == 2 and "EVALKIT_DRIVER_ONLY_KEY" in err and "where `ray start` runs" in err, err
    assert "Traceback" not in err and "sk-driver" not in err


def _recorded_bodies(run_dir: Path, log: list[dict[str, Any]]) -> set[str]:
    body_of = {entry["generation_id"]: entry["body_sha256"] for entry in log if entry["generation_id"]}
    return {
        body_of[line["call"]["generation_id"]]
        for line in journal_lines(run_dir)
        if line["kind"] == "response" and line["call"].get("generation_id")
    }


def _lose_node(cluster: Any, node: Any) -> None:
    """The node goes down with every process on it, as a machine does. `remove_node` kills its
    raylet, but the workers it started only exit once they notice, which on a busy machine can take
    longer than the test waits; so they are killed too."""
    raylets = [info.process.pid for info in node.all_processes.get("raylet", [])]
    doomed = raylets + [pid for raylet in raylets for pid in descendants(raylet)]
    cluster.remove_node(node, allow_graceful=False)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait(condition: Any, timeout_s: float = 240.0) -> None:
    """Poll a condition the test is waiting for (an event in another process, not a timing: on a busy
    machine Ray starts a node's workers slowly, so the bound is generous; it only ends a hang)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
