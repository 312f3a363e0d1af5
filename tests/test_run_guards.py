"""Guards around a run's folder and its outcome: one writer, safe run ids, a full or read-only disk,
honest statuses, whole-run totals, and no key echoed from any option.

Every run goes through the CLI's own `main([...])` and the `openai` SDK to the simulator on 127.0.0.1.
A full disk is simulated deterministically: the journal's file is swapped for one that accepts a fixed
number of bytes and then fails as the kernel does (a partial write, then ENOSPC); the final manifest
write meets a real ENOSPC from /dev/full.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import evalkit
from evalkit import sim
from evalkit.cli.commands import main
from evalkit.common.clock import ManualClock
from evalkit.runner import journal as journal_module
from evalkit.scorers.numeric import NumericMatch
from evalkit.task.spec import resolve_task
from tests.reliability_helpers import KEY, MODEL, journal_lines, request_log, write_task

N = 12


@pytest.fixture
def router(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    task = write_task(tmp_path / "task", N)
    log = tmp_path / "requests.jsonl"
    with sim.serve(tasks=[resolve_task(str(task))], latency_scale=0, api_key=KEY, request_log=log) as server:
        yield server.base_url, task, log


def _cli(capsys, *args: str, clock: ManualClock | None = None) -> tuple[int, str, str]:
    code = main(list(args), clock=clock)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run_args(router, out: Path, run_id: str, *extra: str) -> list[str]:
    base_url, task, _ = router
    return ["run", str(task), "-m", MODEL, "--base-url", base_url, "--out", str(out), "--run-id", run_id,
            "-q", *extra]  # fmt: skip


def _resume_args(router, out: Path, run_id: str, *extra: str) -> list[str]:
    return ["run", "--resume", run_id, "--base-url", router[0], "--out", str(out), "-q", *extra]


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def _assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _exactly_once(run_dir: Path) -> None:
    lines = journal_lines(run_dir)
    samples = Counter(tuple(line["key"]) for line in lines if line["kind"] == "sample")
    responses = Counter(tuple(line["key"]) for line in lines if line["kind"] == "response")
    assert len(samples) == N and set(samples.values()) == {1}
    assert set(responses.values()) == {1}


# ---- one writer per run ------------------------------------------------------------------------

_HOLDER = """
import sys
from pathlib import Path
from evalkit.runner.journal import Journal
journal = Journal.open_existing(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.readline()
journal.release()
"""


def test_a_second_writer_is_refused_naming_the_holder_and_readers_are_not_blocked(router, tmp_path, capsys):
    out = tmp_path / "results"
    assert _cli(capsys, *_run_args(router, out, "r1", "--limit", "4"))[0] == 0
    # another process holds the run, exactly as a running `evalkit run` does
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out / "r1")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        sent_before = len(request_log(router[2]))
        for args in (_resume_args(router, out, "r1"), _run_args(router, out, "r1")):
            code, _, err = _cli(capsys, *args)
            assert code == 2
            _assert_one_error_line(err, f"pid {holder.pid}", "another evalkit process")
        assert len(request_log(router[2])) == sent_before  # refused before anything was paid
        # readers do not take the lock
        assert _cli(capsys, "show", "r1", "--out", str(out))[0] == 0
        assert len(evalkit.load_results(["r1"], out)) == 4
        report = tmp_path / "report.html"
        code, _, err = _cli(capsys, "report", "r1", "--results", str(out), "--out", str(report))
        assert code == 0 and report.is_file() and "`report --out` is deprecated; use --html" in err
    finally:
        holder.communicate("\n", timeout=30)
    assert _cli(capsys, *_resume_args(router, out, "r1"))[0] == 0  # the lock went with its holder


def test_two_runs_at_once_on_one_run_id_have_one_winner(router, tmp_path):
    """Two real `evalkit` processes started together on the same new run id: exactly one writes it."""
    out = tmp_path / "results"
    env = {**os.environ, "ROUTERAI_API_KEY": KEY}
    command = [sys.executable, "-m", "evalkit.cli", *_run_args(router, out, "same")]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    results = [proc.communicate(timeout=120) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 2], results
    loser_err = next(err for proc, (_, err) in zip(procs, results, strict=True) if proc.returncode == 2)
    assert "another evalkit process" in loser_err or "already exists" in loser_err
    _exactly_once(out / "same")
    assert _manifest(out / "same")["totals"]["done"] == N


# ---- run ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../../escaped", "/tmp/abs-run", "a/b", "..", ".hidden", "a\\b", ""])
def test_a_run_id_that_could_leave_the_results_folder_is_refused(router, tmp_path, capsys, run_id):
    out = tmp_path / "deep" / "results"
    code, _, err = _cli(capsys, *_run_args(router, out, run_id))
    assert code == 2
    _assert_one_error_line(err, "run id")
    assert not out.exists() and not (tmp_path / "escaped").exists()
    code, _, err = _cli(capsys, *_resume_args(router, out, run_id))
    assert code == 2 and "Traceback" not in err


# ---- disk full and permissions -----------------------------------------------------------------


class FillingFile:
    """The journal's file on a disk with `room` bytes left: the write that crosses the edge stores what
    fits, then fails like the kernel (ENOSPC); on failure the disk is full for the manifest too if
    `manifest_too` (its temporary file then points at /dev/full, which fails every write with ENOSPC)."""

    def __init__(self, path: Path, room: int, manifest_too: bool) -> None:
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._pending = b""
        self._room = room
        self._manifest_tmp = path.parent / "manifest.json.tmp" if manifest_too else None

    def write(self, text: str) -> int:
        self._pending += text.encode("utf-8")
        return len(text)

    def flush(self) -> None:
        data, self._pending = self._pending, b""
        fits = data[: max(0, self._room)]
        self._file.write(fits)
        self._file.flush()
        self._room -= len(fits)
        if len(fits) < len(data):
            if self._manifest_tmp is not None and not self._manifest_tmp.exists():
                self._manifest_tmp.symlink_to("/dev/full")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


def _fill_disk_after(monkeypatch, room: int, *, manifest_too: bool) -> None:
    monkeypatch.setattr(journal_module, "open_append", lambda path: FillingFile(path, room, manifest_too))


def test_a_full_disk_mid_run_gives_one_line_a_failed_manifest_and_resumes_without_duplicates(
    router, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "results"
    _fill_disk_after(monkeypatch, 5_000, manifest_too=False)
    code, _, err = _cli(capsys, *_run_args(router, out, "full", "--no-cache", "-c", "1"))
    assert code == 2
    _assert_one_error_line(err, "samples.jsonl", "ENOSPC", "No space left on device")
    manifest = _manifest(out / "full")
    assert manifest["status"] == "failed" and "ENOSPC" in manifest["message"]
    assert not list((out / "full").glob("*.tmp"))
    recorded = {tuple(line["key"]) for line in journal_lines(out / "full") if line["kind"] == "response"}
    assert 0 < len(recorded) < N
    paid_first = len(request_log(router[2]))

    monkeypatch.undo()  # space freed
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    code, printed, _ = _cli(capsys, *_resume_args(router, out, "full"))
    assert code == 0 and "run full: completed" in printed
    _exactly_once(out / "full")
    # a recorded response is never paid again: only the samples without one are sent
    assert len(request_log(router[2])) - paid_first == N - len(recorded)


def test_a_disk_too_full_for_the_final_manifest_still_shows_the_first_error_and_leaves_no_temp_file(
    router, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "results"
    _fill_disk_after(monkeypatch, 3_000, manifest_too=True)
    code, _, err = _cli(capsys, *_run_args(router, out, "full2", "--no-cache", "-c", "1"))
    assert code == 2
    _assert_one_error_line(err, "samples.jsonl", "ENOSPC")  # the cause, not the manifest's own failure
    assert not list((out / "full2").glob("*.tmp"))
    assert _manifest(out / "full2")["status"] == "running"  # its last consistent state, still valid JSON
    monkeypatch.undo()
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    assert _cli(capsys, *_resume_args(router, out, "full2"))[0] == 0
    _exactly_once(out / "full2")
    manifest = _manifest(out / "full2")
    assert manifest["status"] == "completed" and manifest["totals"]["done"] == N
    # the invocation that could not record its end still shows in the history
    assert [i["status"] for i in manifest["invocations"]] == ["unrecorded", "completed"]


def test_out_pointing_at_a_file_is_one_clear_error(router, tmp_path, capsys):
    not_a_folder = tmp_path / "results.txt"
    not_a_folder.write_text("x")
    code, _, err = _cli(capsys, *_run_args(router, not_a_folder, "r1"))
    assert code == 2
    _assert_one_error_line(err, str(not_a_folder), "not a folder")
    assert len(request_log(router[2])) == 0


def test_a_read_only_results_folder_is_one_clear_error(router, tmp_path, capsys, monkeypatch):
    out = tmp_path / "results"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o555)
    else:  # root ignores permission bits: the folder refuses as a read-only mount would
        real_mkdir = Path.mkdir

        def read_only_mkdir(self, *args, **kwargs):
            if self.parent == out:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    try:
        code, _, err = _cli(capsys, *_run_args(router, out, "r1"))
    finally:
        out.chmod(0o755)
    assert code == 2
    _assert_one_error_line(err, str(out / "r1"), "Permission denied")
    assert len(request_log(router[2])) == 0


def test_report_out_pointing_at_a_folder_is_one_clear_error(router, tmp_path, capsys):
    out = tmp_path / "results"
    assert _cli(capsys, *_run_args(router, out, "r1", "--limit", "2"))[0] == 0
    code, _, err = _cli(capsys, "report", "r1", "--results", str(out), "--html", str(tmp_path))
    assert code == 2
    _assert_one_error_line(err, str(tmp_path), "is a folder")


# ---- honest statuses and totals ----------------------------------------------------------------


def test_a_model_whose_every_call_failed_fails_the_run_with_exit_3_and_says_why(router, tmp_path, capsys):
    out = tmp_path / "results"
    unreachable = "http://127.0.0.1:9/api/v1"  # the discard port: nothing listens
    args = _run_args(router, out, "down", "--limit", "3")
    args[args.index("--base-url") + 1] = unreachable
    clock = ManualClock()  # the backoff between the attempts passes in virtual time
    code, printed, _ = _cli(capsys, *args, "--route", f"{MODEL}={unreachable}", clock=clock)
    assert code == 3
    assert len(clock.slept) >= 3 * 5, "each of the 3 calls retried 6 times before it gave up"
    manifest = _manifest(out / "down")
    assert manifest["status"] == "failed"
    assert f"every call to {MODEL} failed" in manifest["message"] and "connect" in manifest["message"]
    assert f"run down: failed — every call to {MODEL} failed" in printed


class BreaksOnOneSample:
    blocking = False

    def __call__(self, output, sample):
        if sample.id == "q003":
            raise RuntimeError("scorer bug")
        return NumericMatch()(output, sample)


def test_any_error_makes_the_run_completed_with_errors(router, tmp_path):
    task = resolve_task(str(router[1]))
    task = task.model_copy(update={"scorer": BreaksOnOneSample()})
    result = evalkit.run([task], [MODEL], base_url=router[0], out=str(tmp_path / "r"), progress=False)
    assert result.status == "completed_with_errors"
    assert "1 of 12 samples are errors" in result.message
    assert _manifest(result.path)["status"] == "completed_with_errors"


def test_manifest_totals_cover_every_invocation_with_a_history_beside_them(router, tmp_path, capsys):
    out = tmp_path / "results"
    code, shown, _ = _cli(capsys, *_run_args(router, out, "parts", "--budget-rub", "0.002", "-c", "1"))
    assert code == 3 and _manifest(out / "parts")["status"] == "budget_exhausted"
    assert "larger budget_rub (--budget-rub)" in shown  # the CLI names its flag; Python users see the option
    first = _manifest(out / "parts")["totals"]["done"]
    assert 0 < first < N
    assert _cli(capsys, *_resume_args(router, out, "parts", "--budget-rub", "100"))[0] == 0
    manifest = _manifest(out / "parts")
    totals, history = manifest["totals"], manifest["invocations"]
    assert [i["status"] for i in history] == ["budget_exhausted", "completed"]
    assert totals["done"] == totals["scored"] == N  # the whole run, not only the last invocation
    assert sum(i["done"] for i in history) == N and history[0]["done"] == first
    assert totals["sent"] == sum(i["sent"] for i in history) == len(request_log(router[2]))
    assert totals["spent_rub"] == pytest.approx(sum(i["spent_rub"] for i in history))
    assert totals["spent_rub"] == pytest.approx(sum(line["cost_rub"] for line in journal_lines(out / "parts")
                                                    if line["kind"] == "sample"))  # fmt: skip


# ---- no key echoed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["--api-key-env", "route-env", "route-whole", "run-id", "resume", "task", "model-env"],
)
def test_a_key_put_in_any_field_is_never_echoed(router, tmp_path, capsys, where):
    secret = KEY
    out = tmp_path / "results"
    base = _run_args(router, out, "k1")
    args = {
        "--api-key-env": [*base, "--api-key-env", secret],
        "route-env": [*base, "--route", f"{MODEL}={router[0]},{secret}"],
        "route-whole": [*base, "--route", secret],
        "run-id": _run_args(router, out, f"x/{secret}"),
        "resume": _resume_args(router, out, secret),
        "task": ["run", secret, "-m", MODEL, "--base-url", router[0], "--out", str(out), "-q"],
        "model-env": ["models", "--base-url", router[0], "--api-key-env", secret],
    }[where]
    code, printed, err = _cli(capsys, *args)
    assert code == 2
    assert secret not in printed + err
    assert secret[8:24] not in printed + err  # not even a part of it
    assert "Traceback" not in err and err.startswith("evalkit: error: ")


def test_a_response_cache_that_cannot_be_opened_is_one_clear_error_before_anything_is_paid(
    router, tmp_path, capsys
):
    out = tmp_path / "results"
    (out / "cache.sqlite").mkdir(parents=True)  # a folder where the cache file should be
    code, _, err = _cli(capsys, *_run_args(router, out, "r1"))
    assert code == 2
    _assert_one_error_line(err, "cache.sqlite", "--no-cache")
    assert len(request_log(router[2])) == 0
    assert _manifest(out / "r1")["status"] == "failed"
    assert _cli(capsys, *_run_args(router, out, "r2", "--no-cache"))[0] == 0


def test_an_unknown_transport_is_refused_before_anything_is_written(tmp_path) -> None:
    from evalkit.common.errors import ConfigError

    with pytest.raises(ConfigError, match="transport"):
        evalkit.run(["builtin_qa"], ["m"], sim=True, transport="requests", out=str(tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_resume_keeps_the_saved_options_and_takes_only_what_is_given_now() -> None:
    from evalkit.runner.config import RunConfig

    saved = RunConfig.build(models=["m"], concurrency=4, budget_rub=2.0, base_url="http://a/v1", seed=7)
    quiet = RunConfig.build(models=["other"], resume="r1", out="elsewhere").resumed_from(saved)
    assert (quiet.models, quiet.seed, quiet.concurrency, quiet.budget_rub) == (["m"], 7, 4, 2.0)
    assert (quiet.base_url, quiet.out, quiet.run_id) == ("http://a/v1", "elsewhere", "r1")
    loud = RunConfig.build(models=["m"], resume="r1", concurrency=32, budget_rub=5.0, base_url="http://b/v1")
    merged = loud.resumed_from(saved)
    assert (merged.concurrency, merged.budget_rub, merged.base_url) == (32, 5.0, "http://b/v1")


def test_no_message_a_python_user_sees_names_a_cli_flag() -> None:
    import re

    import evalkit.client.endpoints
    import evalkit.runner.api
    import evalkit.runner.config
    import evalkit.runner.resume
    import evalkit.runner.scheduler

    modules = (
        evalkit.runner.scheduler,
        evalkit.runner.api,
        evalkit.runner.resume,
        evalkit.runner.config,
        evalkit.client.endpoints,
    )
    for module in modules:
        source = Path(module.__file__).read_text(encoding="utf-8")
        messages = re.findall(r'(?:Error|_error|message)\([^)]*?"([^"]*--[a-z][^"]*)"', source)
        assert not [m for m in messages if "evalkit run" not in m], (module.__name__, messages)


def test_the_runner_does_not_import_the_simulator() -> None:
    import ast

    import evalkit.runner.api
    import evalkit.runner.scheduler

    source = "\n".join(
        Path(m.__file__).read_text(encoding="utf-8") for m in (evalkit.runner.scheduler, evalkit.runner.api)
    )
    tree = ast.parse(source)
    imported = {
        *(node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module),
        *(
            f"{node.module}.{a.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for a in node.names
        ),
        *(a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names),
    }
    assert not {name for name in imported if name.startswith("evalkit.sim")}, imported
