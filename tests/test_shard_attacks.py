"""Attacks on phases, shards, merge and score as a demanding user (or an adversary) makes them: shards
damaged, still running, killed, of another version or selection; merges into a taken name or stopped
half-way; resumes that ask for another shard; budgets per shard; pass@k across shards; two processes
on one run. Each attack that once won is kept here; the cheap ones that held are kept too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import evalkit
from evalkit.common.errors import ConfigError, RunLocked
from evalkit.runner import merge as merge_module
from evalkit.runner.journal import Journal, iter_records, read_manifest, write_json_atomic
from evalkit.stats import pass_at_k_table
from tests.test_phases_shards import MODELS, _rows, _task
from tests.userdata import cli

OPTIONS = {"sim": True, "progress": False, "cache": False, "sim_latency_scale": 0}


def _run(path: Path, out: Path, run_id: str, **options) -> evalkit.RunResult:
    return evalkit.run([str(path)], MODELS, out=str(out), run_id=run_id, **(OPTIONS | options))


def _shards(path: Path, out: Path, count: int = 2, prefix: str = "part", **options) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(1, count + 1)]
    for i, name in enumerate(names, 1):
        _run(path, out, name, shard=f"{i}/{count}", **options)
    return names


def _leftovers(out: Path) -> list[str]:
    """What a refused or failed merge must not leave behind: its run or a hidden half of it."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".") or p.name == "merged")


# ---- merge: shards that are not what they seem ------------------------------------------------------


def test_a_shard_with_a_damaged_sample_line_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    # won: the damaged sample's response line still counted as "recorded", so the merge said completed
    # with one sample fewer (a silently smaller accuracy)
    path, out = _task(tmp_path, n=8), tmp_path / "results"
    names = _shards(path, out)
    journal = out / names[1] / "samples.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    number = [i for i, line in enumerate(lines) if '"kind":"sample"' in line][1]
    lines[number] = lines[number][:40] + "\n"
    journal.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"line\(s\) {number + 1} are not complete records") as caught:
        evalkit.merge(names, into="merged", out=str(out))
    assert str(journal) in str(caught.value)
    assert _leftovers(out) == []


def test_a_shard_still_being_written_is_refused_naming_its_writer(tmp_path: Path, capsys) -> None:
    # won: it was told to "resume" a shard that was running, with "its manifest counts None"
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    names = _shards(path, out)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out / names[1])], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        for command in (["merge", *names, "--into", "merged"], ["score", names[1]]):
            code, _, err = cli([*command, "--out", str(out)], capsys)
            assert code == 2 and f"pid {holder.pid}" in err and "Traceback" not in err, err
        assert _leftovers(out) == []
        # the stale lock of a writer killed outright blocks nothing; a live writer's is never taken
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert evalkit.merge(names, into="merged", out=str(out)).status == "completed"


_HOLDER = """
import sys
from pathlib import Path
from evalkit.runner.journal import Journal
journal = Journal.open_existing(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_shard_killed_before_recording_its_end_is_named_with_the_command_that_finishes_it(
    tmp_path: Path,
) -> None:
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    names = _shards(path, out)
    manifest = read_manifest(out / names[0])
    del manifest["totals"]  # what a SIGKILL leaves: the manifest written at the start of the invocation
    write_json_atomic(out / names[0] / "manifest.json", manifest | {"status": "running"})
    with pytest.raises(ConfigError, match=rf"stopped before it recorded how it ended.*--resume {names[0]}"):
        evalkit.merge(names, into="merged", out=str(out))
    evalkit.run([], [], resume=names[0], out=str(out), **OPTIONS)
    assert evalkit.merge(names, into="merged", out=str(out)).status == "completed"


def test_shards_of_another_evalkit_version_are_refused(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    names = _shards(path, out)
    manifest = read_manifest(out / names[1])
    manifest["versions"]["evalkit"] = "0.0.1"
    write_json_atomic(out / names[1] / "manifest.json", manifest)
    with pytest.raises(ConfigError, match=r"made by evalkit .* and 0\.0\.1"):
        evalkit.merge(names, into="merged", out=str(out))
    assert _leftovers(out) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [("scorer: numeric", "scorer: exact"), ("max_tokens: 64", "max_tokens: 65"),
     ("user: '{вопрос}'", "user: 'Q: {вопрос}'")],
)  # fmt: skip
def test_a_task_edited_between_shards_is_refused(tmp_path: Path, before: str, after: str) -> None:
    """held: the scorer, the generation parameters and the prompt are in the task's fingerprint."""
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    _run(path, out, "part-1", shard="1/2")
    assert before in path.read_text(encoding="utf-8")
    spec = path.read_text(encoding="utf-8").replace(before, after)
    path.write_text(spec, encoding="utf-8")
    _run(path, out, "part-2", shard="2/2")
    with pytest.raises(ConfigError, match="task definitions differ"):
        evalkit.merge(["part-1", "part-2"], into="merged", out=str(out))


# ---- merge: where it writes ---------------------------------------------------------------------


def test_merging_into_a_taken_name_is_refused_naming_into(tmp_path: Path, capsys) -> None:
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    names = _shards(path, out)
    before = (out / names[0] / "samples.jsonl").read_bytes()
    code, _, err = cli(["merge", *names, "--into", names[0], "--out", str(out)], capsys)
    assert code == 2 and "already exists" in err and "--into" in err and "Traceback" not in err, err
    assert (out / names[0] / "samples.jsonl").read_bytes() == before
    code, _, err = cli(["merge", names[0], names[0], names[1], "--into", "x", "--out", str(out)], capsys)
    assert code == 2 and "given twice" in err, err


def test_a_merge_stopped_half_way_leaves_no_half_merged_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    names = _shards(path, out)
    lines = merge_module._lines

    def cut(directory: Path):
        yield from list(lines(directory))[:3]
        raise KeyboardInterrupt

    monkeypatch.setattr(merge_module, "_lines", cut)
    with pytest.raises(KeyboardInterrupt):
        evalkit.merge(names, into="merged", out=str(out))
    assert _leftovers(out) == []
    monkeypatch.setattr(merge_module, "_lines", lines)
    assert evalkit.merge(names, into="merged", out=str(out)).status == "completed"
    assert _leftovers(out) == ["merged"]


# ---- money --------------------------------------------------------------------------------------


def test_the_merged_budget_is_the_sum_of_the_shards_budgets_and_its_resume_pays_nothing_again(
    tmp_path: Path,
) -> None:
    # won: the merged run kept the first shard's budget while its journal held every shard's ₽
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    names = _shards(path, out, budget_rub=0.5, sim_faults="server_error=0.3", max_attempts=1)
    merged = evalkit.merge(names, into="merged", out=str(out))
    manifest = read_manifest(out / "merged")
    parts = [read_manifest(out / name) for name in names]
    assert manifest["config"]["budget_rub"] == 1.0
    assert [m["budget_rub"] for m in manifest["merged_from"]] == [0.5, 0.5]
    for name in ("spent_rub", "unconfirmed_rub", "sent", "errors", "done"):
        assert manifest["totals"][name] == sum(p["totals"][name] for p in parts), name
    # errors stay errors in the merged run: never scored, counted apart
    df = merged.df
    assert manifest["totals"]["errors"] > 0 and df["error"].notna().sum() == manifest["totals"]["errors"]
    assert df.loc[df["error"].notna(), "score"].isna().all()
    # its journal reads back the ₽ the shards paid, exactly as their totals add up
    state = Journal(out / "merged").read_state()
    assert state.spent_rub == pytest.approx(manifest["totals"]["spent_rub"], rel=1e-12)
    resumed = evalkit.run([], [], resume="merged", out=str(out), **OPTIONS)
    after = read_manifest(out / "merged")
    assert resumed.status == "completed_with_errors" and after["totals"]["sent"] == manifest["totals"]["sent"]
    # retried as one run, within the summed budget: only the errors are asked again (the recorded
    # faults are drawn per request, so they fail again the same way)
    retried = evalkit.run([], [], resume="merged", out=str(out), retry_errors=True, **OPTIONS)
    final = read_manifest(out / "merged")["totals"]
    assert retried.status == "completed_with_errors" and final["done"] == 12
    assert final["sent"] == manifest["totals"]["sent"] + manifest["totals"]["errors"]
    assert final["spent_rub"] <= 1.0


def test_the_budget_option_says_it_is_per_shard(capsys) -> None:
    with pytest.raises(SystemExit):
        cli(["run", "--help"], capsys)
    text = " ".join(capsys.readouterr().out.split())
    assert "with --shard, in this shard alone (N shards may spend N times it" in text


# ---- resume of a shard --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"), [("--shard", "2/3"), ("--limit", "2"), ("--epochs", "3"), ("--seed", "4")]
)
def test_resuming_a_shard_with_another_selection_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys, flag: str, value: str
) -> None:
    # won: `--resume part-1 --shard 2/3` ran (and paid for) shard 1/2 again, saying nothing
    path, out = _task(tmp_path, n=3), tmp_path / "results"
    _run(path, out, "part-1", shard=" 1/2 ")
    lines = (out / "part-1" / "samples.jsonl").read_bytes()
    code, _, err = cli(["run", "--resume", "part-1", flag, value, "--sim", "--out", str(out), "-q"], capsys)
    assert code == 2 and "a resume finishes the run it started" in err and "Traceback" not in err, err
    assert (out / "part-1" / "samples.jsonl").read_bytes() == lines
    # the same shard written another way is the same shard
    code, _, err = cli(
        ["run", "--resume", "part-1", "--shard", "1/2", "--sim", "--out", str(out), "-q"], capsys
    )
    assert code == 0, err


# ---- the partition ------------------------------------------------------------------------------


def test_more_shards_than_units_merge_exactly_with_empty_shards(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=2), tmp_path / "results"
    _run(path, out, "whole")
    names = _shards(path, out, count=7)
    sizes = [read_manifest(out / name)["totals"]["total"] for name in names]
    assert 0 in sizes and sum(sizes) == 4
    assert evalkit.merge(names, into="merged", out=str(out)).status == "completed"
    assert _rows(out / "merged") == _rows(out / "whole")


def test_the_partition_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from evalkit.runner.partition import shard_of;"
        "print([shard_of(('mgsm', 'sim/small-fast', f'q{i}', 0), 4) for i in range(8)])"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(result.stdout) == [2, 2, 3, 2, 2, 1, 3, 1]


def test_pass_at_k_survives_shards_that_split_a_problems_epochs(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    whole = _run(path, out, "whole", epochs=3, seed=1)
    names = _shards(path, out, count=3, epochs=3, seed=1)
    split = {
        (key[0], key[1], key[2])
        for name in names
        for key in {tuple(r["key"]) for r in iter_records(out / name)}
    }
    assert len(split) < sum(len({tuple(r["key"][:3]) for r in iter_records(out / n)}) for n in names)
    merged = evalkit.merge(names, into="merged", out=str(out))
    assert pass_at_k_table(merged.df, ks=(1, 2, 3)).equals(pass_at_k_table(whole.df, ks=(1, 2, 3)))


def test_two_tasks_with_the_same_sample_ids_merge_without_mixing(tmp_path: Path) -> None:
    first = _task(tmp_path, n=4, name="left")
    other = tmp_path / "other"
    other.mkdir()
    second = _task(other, n=4, name="right")  # ids 1..4 in both
    out = tmp_path / "results"
    options = OPTIONS | {"out": str(out)}
    evalkit.run([str(first), str(second)], MODELS, run_id="whole", **options)
    for i in (1, 2):
        evalkit.run([str(first), str(second)], MODELS, run_id=f"part-{i}", shard=f"{i}/2", **options)
    evalkit.merge(["part-1", "part-2"], into="merged", out=str(out))
    assert _rows(out / "merged") == _rows(out / "whole") and len(_rows(out / "whole")) == 16


# ---- phases -------------------------------------------------------------------------------------


def test_score_twice_and_score_while_another_process_writes_never_write_a_sample_twice(
    tmp_path: Path,
) -> None:
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    _run(path, out, "gen", phase="generate")
    held = Journal.open_existing(out / "gen")
    try:
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            evalkit.score("gen", out=str(out))
    finally:
        held.release()
    evalkit.score("gen", out=str(out))
    evalkit.score("gen", out=str(out))
    evalkit.run([], [], resume="gen", out=str(out), **OPTIONS)
    keys = [tuple(r["key"]) for r in iter_records(out / "gen")]
    assert len(keys) == len(set(keys)) == 8
    assert read_manifest(out / "gen")["totals"]["sent"] == 8


def test_score_refuses_a_scorer_changed_since_generation(tmp_path: Path, capsys) -> None:
    """held: the scorer is in the fingerprint, so `score` names the change and the way out."""
    path, out = _task(tmp_path, n=3), tmp_path / "results"
    _run(path, out, "gen", phase="generate")
    path.write_text(path.read_text(encoding="utf-8").replace("scorer: numeric", "scorer: exact"), "utf-8")
    code, _, err = cli(["score", "gen", "--out", str(out)], capsys)
    assert code == 2 and "changed since run gen" in err and "--force" in err, err
    assert not list(iter_records(out / "gen"))


def test_shards_generated_then_scored_one_before_the_merge_equal_one_run(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    _run(path, out, "whole")
    names = _shards(path, out, phase="generate")
    evalkit.score(names[0], out=str(out))  # one shard scored where it ran, the other after the merge
    merged = evalkit.merge(names, into="merged", out=str(out))
    assert "evalkit score merged" in merged.message
    evalkit.score("merged", out=str(out))
    assert _rows(out / "merged") == _rows(out / "whole")


def test_a_generate_shard_killed_resumed_and_scored_asks_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalkit import sim
    from tests.reliability_helpers import cli_command, cli_env, wait_until_held_with_samples

    path, out = _task(tmp_path, n=8), tmp_path / "results"
    log = tmp_path / "requests.jsonl"
    with sim.serve(tasks=[str(path)], latency_scale=0, request_log=log) as server:
        common = ["--base-url", server.base_url, "--out", str(out), "--no-cache", "-q", "-c", "1"]
        server.hold_after(3)  # three answers pass, the fourth request waits: the shard is provably mid-run
        child = subprocess.Popen(
            cli_command("run", str(path), *sum((["-m", m] for m in MODELS), []), "--shard", "1/1",
                        "--phase", "generate", "--run-id", "gen", *common),
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_held_with_samples(server, out / "gen", 0, alive=lambda: child.poll() is None)
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
        answered = {e["body_sha256"] for e in map(json.loads, log.read_text().splitlines()) if e["completed"]}
        server.release()
        monkeypatch.setenv("ROUTERAI_API_KEY", cli_env()["ROUTERAI_API_KEY"])
        evalkit.run([], [], resume="gen", base_url=server.base_url, out=str(out), progress=False)
        evalkit.score("gen", out=str(out))
    completed = [e["body_sha256"] for e in map(json.loads, log.read_text().splitlines()) if e["completed"]]
    assert len(completed) == len(set(completed)) == 16  # every request answered once, none paid twice
    assert len(answered) == 3 and answered <= set(completed)
    keys = [tuple(r["key"]) for r in iter_records(out / "gen")]
    assert len(keys) == len(set(keys)) == 16


# ---- tasks defined in Python, judged tasks ----------------------------------------------------------


def test_shards_of_a_task_defined_in_python_merge_and_score_when_it_is_given(tmp_path: Path) -> None:
    # won: no file names such a task, so its shards could never be merged nor scored ("no task named")
    samples = [evalkit.Sample(id=str(i), input=f"What is {i} + {i}?", target=[str(2 * i)]) for i in range(6)]
    task = evalkit.Task(name="inline", family="qa", scorer="numeric", samples=samples)
    out = tmp_path / "results"
    options = OPTIONS | {"out": str(out)}
    evalkit.run([task], MODELS, run_id="whole", **options)
    for i in (1, 2):
        evalkit.run([task], MODELS, run_id=f"part-{i}", shard=f"{i}/2", phase="generate", **options)
    with pytest.raises(ConfigError, match=r"defined in Python.*pass it as tasks=\[task\]"):
        evalkit.merge(["part-1", "part-2"], into="merged", out=str(out))
    with pytest.raises(ConfigError, match="defined in Python"):
        evalkit.run([], [], resume="part-1", out=str(out), **OPTIONS)
    evalkit.merge(["part-1", "part-2"], into="merged", out=str(out), tasks=[task])
    with pytest.raises(ConfigError, match="defined in Python"):
        evalkit.score("merged", out=str(out))
    evalkit.score("merged", out=str(out), tasks=[task])
    assert _rows(out / "merged") == _rows(out / "whole")


def test_a_shard_is_refused_as_a_pairwise_baseline(tmp_path: Path) -> None:
    # won: a shard holds part of the baseline's answers, so about half the samples became errors
    from evalkit.task.spec import load_task

    samples = load_task(Path(evalkit.__file__).parent.parent / "tasks" / "builtin_open.yaml").all_samples()[
        :4
    ]
    out = tmp_path / "results"
    options = OPTIONS | {"out": str(out)}

    def task(name: str, params: dict) -> evalkit.Task:
        scorer = {"name": "judge", "params": {"judges": "sim/judge", **params}}
        return evalkit.Task(
            name=name, family="other", scorer=scorer, samples=samples, prompt={"user": "{question}"}
        )

    evalkit.run([task("t", {})], ["sim/small-fast"], run_id="base-1", shard="1/2", **options)
    pair = task("p", {"mode": "pairwise", "baseline": {"run": "base-1", "model": "sim/small-fast"}})
    with pytest.raises(ConfigError, match=r"baseline run 'base-1' is shard 1/2.*merge its shards"):
        evalkit.run([pair], ["sim/large-accurate"], run_id="pair", **options)
    assert not list(iter_records(out / "pair"))


def test_judged_shards_merge_with_the_judge_rub_of_one_run(tmp_path: Path) -> None:
    """held: the judge's replies, ₽ and verdicts travel with their shard."""
    out = tmp_path / "results"
    options = OPTIONS | {"out": str(out), "limit": 4, "seed": 0}
    models = ["sim/small-fast", "sim/large-accurate"]
    whole = evalkit.run(["builtin_open"], models, run_id="whole", **options)
    for i in (1, 2):
        evalkit.run(["builtin_open"], models, run_id=f"part-{i}", shard=f"{i}/2", **options)
    merged = evalkit.merge(["part-1", "part-2"], into="merged", out=str(out))
    assert _rows(out / "merged") == _rows(out / "whole")
    columns = ("cost_rub", "cost_rub_estimated", "cost_rub_judge", "cost_rub_judge_billed",
               "cost_rub_judge_estimated", "score")  # fmt: skip
    for column in columns:
        assert merged.df[column].sum() == pytest.approx(whole.df[column].sum(), rel=1e-12), column
    totals, theirs = read_manifest(out / "merged")["totals"], read_manifest(out / "whole")["totals"]
    assert {k: totals[k] for k in ("done", "scored", "sent")} == {
        k: theirs[k] for k in ("done", "scored", "sent")
    }
    assert totals["spent_rub"] == pytest.approx(theirs["spent_rub"], rel=1e-12)


def test_a_shards_summary_says_it_is_one_part_with_its_own_budget(tmp_path: Path, capsys) -> None:
    path, out = _task(tmp_path, n=2), tmp_path / "results"
    code, stdout, err = cli(["run", str(path), "-m", MODELS[0], "--sim", "--sim-latency-scale", "0", "--shard",
                             "1/2", "--budget-rub", "1", "--run-id", "part-1", "--out", str(out), "-q"], capsys)  # fmt: skip
    assert code == 0, err
    assert "shard 1/2: these numbers cover this shard's samples only, and its ₽ budget was its own" in stdout
    code, stdout, err = cli(["run", str(path), "-m", MODELS[0], "--sim", "--sim-latency-scale", "0", "--run-id",
                             "whole", "--out", str(out), "-q"], capsys)  # fmt: skip
    assert code == 0 and "these numbers cover" not in stdout, err


def test_the_score_phase_of_a_code_task_scores_in_the_sandbox_as_one_run_does(tmp_path: Path) -> None:
    """held: `evalkit score` runs the model's code through the code scorer's sandbox, with the verdicts
    of a run that scored as it went."""
    out = tmp_path / "results"
    options = OPTIONS | {"out": str(out), "limit": 3, "seed": 0}
    evalkit.run(["builtin_code"], ["sim/small-fast"], run_id="whole", **options)
    for i in (1, 2):
        evalkit.run(["builtin_code"], ["sim/small-fast"], run_id=f"gen-{i}", shard=f"{i}/2", phase="generate",
                    **options)  # fmt: skip
    evalkit.merge(["gen-1", "gen-2"], into="gen", out=str(out))
    scored = evalkit.score("gen", out=str(out))
    assert scored.counts["scored"] == 3 and read_manifest(out / "gen")["sandbox"]
    assert _rows(out / "gen") == _rows(out / "whole")


def test_a_merge_killed_outright_leaves_nothing_that_blocks_the_next(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    names = _shards(path, out)
    killed = out / ".merged.merging-999999"  # what SIGKILL leaves: a hidden, unlocked half
    killed.mkdir()
    (killed / "samples.jsonl").write_text('{"kind": "response"', encoding="utf-8")
    live = Journal.create(out / ".merged.merging-1")  # a merge still writing: never touched
    try:
        assert evalkit.merge(names, into="merged", out=str(out)).status == "completed"
        assert not killed.exists() and (out / ".merged.merging-1").exists()
    finally:
        live.release()


def test_rescore_of_a_run_being_written_is_refused_and_of_a_stopped_one_says_so(tmp_path: Path) -> None:
    # won: a rescore read a run mid-write and wrote a "completed" run of the samples it happened to see
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    _run(path, out, "src", sim_faults="credits=0.003")
    assert read_manifest(out / "src")["status"] == "out_of_credit"
    held = Journal.open_existing(out / "src")
    try:
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            evalkit.rescore("src", out=str(out), run_id="again")
    finally:
        held.release()
    assert not (out / "again").exists()
    result = evalkit.rescore("src", out=str(out), run_id="again")
    assert "which ended out_of_credit: its" in result.message and "recorded samples only" in result.message


def test_a_shard_whose_score_phase_was_killed_half_way_is_named_with_the_command_that_finishes_it(
    tmp_path: Path,
) -> None:
    # won: its manifest still counted every response as unscored, so the merged run said so too
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    names = _shards(path, out, phase="generate")
    manifest = read_manifest(out / names[0])
    evalkit.score(names[0], out=str(out))
    journal = out / names[0] / "samples.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    journal.write_text("".join(lines[:-2]), encoding="utf-8")  # killed after some of its sample lines
    write_json_atomic(out / names[0] / "manifest.json", manifest)  # before it recorded its end
    with pytest.raises(
        ConfigError,
        match=rf"0 scored samples but its journal holds \d+; finish it \(evalkit score {names[0]}",
    ):
        evalkit.merge(names, into="merged", out=str(out))
    evalkit.score(names[0], out=str(out))
    assert evalkit.merge(names, into="merged", out=str(out)).status == "completed"


def test_a_forced_score_says_which_definitions_it_scored_with(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=3), tmp_path / "results"
    _run(path, out, "gen", phase="generate")
    csv = tmp_path / "qa.csv"
    csv.write_bytes(csv.read_bytes().replace(b"|2.0", b"|2.5"))  # a target edited after generation
    result = evalkit.score("gen", out=str(out), force=True)
    assert "task(s) capitals scored as defined now, not as when asked (forced)" in result.message
    invocation = read_manifest(out / "gen")["invocations"][-1]
    assert list(invocation["forced_definitions"]) == ["capitals"]


def test_a_shards_report_says_it_is_one_part(tmp_path: Path) -> None:
    from evalkit.report import render_report
    from evalkit.results import load_manifests

    path, out = _task(tmp_path, n=3), tmp_path / "results"
    names = _shards(path, out, epochs=2)
    page = render_report(evalkit.load_results([out / names[0]]), load_manifests([names[0]], out))
    assert f"SHARD: {names[0]} is shard 1/2 of a run" in page and "pass@k included" in page
    merged = evalkit.merge(names, into="merged", out=str(out))
    assert "SHARD:" not in render_report(merged.df, load_manifests(["merged"], out))


def test_a_results_folder_holding_shards_and_their_merge_counts_each_sample_once(tmp_path: Path) -> None:
    # won: load_results("results") loaded the shards and the merged run, so every sample counted twice
    # and the intervals were as narrow as for twice the samples
    from evalkit.common.errors import EvalkitWarning

    path, out = _task(tmp_path, n=6), tmp_path / "results"
    names = _shards(path, out)
    merged = evalkit.merge(names, into="merged", out=str(out))
    with pytest.warns(EvalkitWarning, match=r"left out shard run\(s\) part-1 \(in merged\), part-2"):
        every = evalkit.load_results(out)
    assert len(every) == len(merged.df) == 12 and set(every["run_id"]) == {"merged"}
    summary = evalkit.summarize(every)
    assert summary["n"].sum() == 12
    assert len(evalkit.load_results([out / names[0]])) < 12  # a shard alone still loads


def test_a_shard_run_without_one_of_the_tasks_is_refused_naming_it(tmp_path: Path) -> None:
    first = _task(tmp_path, n=3, name="left")
    other = tmp_path / "other"
    other.mkdir()
    second = _task(other, n=3, name="right")
    out = tmp_path / "results"
    evalkit.run([str(first), str(second)], MODELS, run_id="part-1", shard="1/2", out=str(out), **OPTIONS)
    evalkit.run([str(first)], MODELS, run_id="part-2", shard="2/2", out=str(out), **OPTIONS)
    with pytest.raises(ConfigError, match=r"task\(s\) right in one run only"):
        evalkit.merge(["part-1", "part-2"], into="merged", out=str(out))


def test_a_shard_holds_the_same_units_whatever_the_order_of_the_rows(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=10), tmp_path / "results"
    _run(path, out, "forward", shard="1/3")
    csv = tmp_path / "qa.csv"
    header, *rows = csv.read_bytes().split(b"\r\n")[:-1]
    csv.write_bytes(b"\r\n".join([header, *reversed(rows), b""]))
    _run(path, out, "backward", shard="1/3")
    assert {tuple(r["key"]) for r in iter_records(out / "forward")} == {
        tuple(r["key"]) for r in iter_records(out / "backward")
    }


def test_generated_shards_priced_with_different_cards_are_scored_before_the_merge(tmp_path: Path) -> None:
    # won: the merged run's one price card would have estimated every shard's responses at score time
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    _run(path, out, "whole")
    names = _shards(path, out, phase="generate")
    manifest = read_manifest(out / names[1])
    card = manifest["models"][MODELS[0]]["pricing_rub"]
    card["prompt"] = card["prompt"] * 2  # the router's price changed between the two shards
    write_json_atomic(out / names[1] / "manifest.json", manifest)
    with pytest.raises(
        ConfigError, match=rf"different price cards \(of {MODELS[0]}\).*evalkit score {names[0]}"
    ):
        evalkit.merge(names, into="merged", out=str(out))
    for name in names:
        evalkit.score(name, out=str(out))
    merged = evalkit.merge(names, into="merged", out=str(out))
    ours = merged.df.set_index(["model", "sample_id", "epoch"])["cost_rub_estimated"]
    theirs = evalkit.load_results([out / names[1]]).set_index(["model", "sample_id", "epoch"])[
        "cost_rub_estimated"
    ]
    assert (ours.loc[theirs.index] == theirs).all()  # each shard's estimate by its own card
