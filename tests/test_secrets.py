"""The API key leaves no trace: results, caches, logs, the report, executed notebooks, exception
messages, reprs and the manifest. The key is recognisable and is really used (the simulator accepts
only it), so a leak anywhere would be found by a plain byte search."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import KEY, REPO, cli_command, cli_env, write_task

import evalkit
from evalkit import sim
from evalkit.client import Client, Endpoint
from evalkit.common.errors import EvalkitError
from evalkit.runner.journal import read_manifest

FAULTS = "rate_limit=0.1,server_error=0.1,error_in_200=0.05,drop_stream=0.05,retry_after_s=0.05"


def _files_with_key(*roots: Path) -> list[Path]:
    needles = (KEY.encode(), KEY.encode("utf-16-le"))
    leaks = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and any(n in path.read_bytes() for n in needles):
                leaks.append(path)
    return leaks


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A simulator that accepts only KEY, reached like the real router through the environment."""
    task = write_task(tmp_path / "task", 30)
    data = tmp_path / "task" / "arith_local.jsonl"  # one prompt over small-fast's context: a final 400
    data.write_text(
        data.read_text() + json.dumps({"id": "huge", "question": "why? " * 40000, "target": 1}) + "\n"
    )
    log = tmp_path / "logs" / "requests.jsonl"
    with sim.serve(
        tasks=[str(task)], api_key=KEY, faults=FAULTS, latency_scale=0, request_log=log, process=True
    ) as server:
        monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
        monkeypatch.setenv("EVALKIT_BASE_URL", server.base_url)
        monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("EVALKIT_RESULTS_DIR", str(tmp_path / "results"))
        yield server.base_url, task


def test_a_full_run_with_errors_and_a_report_leave_no_trace_of_the_key(
    keyed: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, task = keyed
    results = tmp_path / "results"
    run = subprocess.run(
        cli_command(
            "run",
            str(task),
            "--model",
            "sim/small-fast",
            "--model",
            "meta-llama/llama-4-scout",
            "--out",
            str(results),
            "--run-id",
            "keyed",
            "-c",
            "8",
        ),  # fmt: skip
        env=cli_env(EVALKIT_BASE_URL=base_url, EVALKIT_CACHE_DIR=str(tmp_path / "cache")),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    df = evalkit.load_results(results / "keyed")
    assert len(df) == 62 and df.error.notna().any(), "the run must include failed calls"
    report = subprocess.run(
        cli_command("report", "keyed", "--results", str(results), "--html", str(tmp_path / "report.html")),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert report.returncode == 0, report.stderr
    (tmp_path / "cli_output.txt").write_text(run.stdout + run.stderr + report.stdout + report.stderr)
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert (results / "cache.sqlite").exists()  # the response cache (a simulator catalog is never cached)
    assert _files_with_key(results, tmp_path / "cache", tmp_path / "logs", tmp_path / "report.html",
                           tmp_path / "cli_output.txt") == []  # fmt: skip


def test_the_key_is_in_no_exception_repr_or_manifest(keyed: tuple[str, Path], tmp_path: Path) -> None:
    base_url, task = keyed
    endpoint = Endpoint.from_env()
    assert endpoint.api_key == KEY
    texts: list[Any] = [repr(endpoint), str(endpoint), repr(Client(endpoint))]
    result = evalkit.run([str(task)], ["sim/small-fast"], out=str(tmp_path / "results"), progress=False)
    texts += [repr(result), result.message, read_manifest(result.path), result.df.to_json()]
    for bad in (
        dict(concurrency=0),
        dict(budget_rub=-1),
        dict(resume="nope"),
        dict(models=["nobody/none"]),
        dict(base_url=f"http://user:{KEY}@127.0.0.1:9/api/v1?key={KEY}", max_attempts=1),
    ):
        options: dict[str, Any] = dict(out=str(tmp_path / "results"), progress=False, **bad)
        models = options.pop("models", ["sim/small-fast"])
        try:
            outcome = evalkit.run([str(task)], models, **options)
        except EvalkitError as exc:
            texts += [str(exc), repr(exc), exc.args]
        else:
            texts += [repr(outcome), outcome.message, read_manifest(outcome.path), outcome.df.to_json()]
    leaked = [text for text in texts if KEY in str(text)]
    assert not leaked, leaked
    assert _files_with_key(tmp_path / "results") == []


@pytest.mark.slow
def test_an_executed_notebook_shows_no_trace_of_the_key(keyed: tuple[str, Path], tmp_path: Path) -> None:
    """The quickstart with the key set goes the real-router way (SIM is False) to the keyed simulator."""
    import nbformat
    from nbclient import NotebookClient

    workdir = tmp_path / "nb"
    workdir.mkdir()
    copy = workdir / "01_quickstart.ipynb"
    shutil.copy(REPO / "notebooks" / "01_quickstart.ipynb", copy)
    book = nbformat.read(copy, as_version=4)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    NotebookClient(
        book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    nbformat.write(book, copy)
    text = copy.read_text()
    assert "running on RouterAI" in text, "the notebook did not take the keyed path"
    assert _files_with_key(workdir, tmp_path / "results", tmp_path / "cache") == []
