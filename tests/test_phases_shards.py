"""Generate and score as phases (`--phase generate`, `evalkit score RUN`); shards (`--shard I/N`) that
`evalkit merge` joins exactly, refusing overlaps, gaps and shards of different runs. User-style data:
a `;`-separated cp1251 CSV with integer ids and several accepted answers per row."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import evalkit
from evalkit.common.errors import ConfigError
from evalkit.runner.journal import iter_records, read_manifest
from evalkit.runner.partition import parse_shard, shard_of
from tests.userdata import cli, write_csv, write_task

MODELS = ["meta-llama/llama-4-scout", "sim/small-fast"]


def _task(folder: Path, *, n: int = 12, name: str = "capitals") -> Path:
    rows = [
        {"№": i, "вопрос": f"Сколько будет {i} + {i}? Ответ в формате \"Ответ: <число>\".",
         "ответ": f"{2 * i}|{2 * i}.0", "язык": "ru"}
        for i in range(1, n + 1)
    ]  # fmt: skip
    write_csv(folder / "qa.csv", rows, sep=";", encoding="cp1251")
    return write_task(
        folder,
        {
            "name": name,
            "family": "qa",
            "source": {"path": "qa.csv", "options": {"delimiter": ";", "encoding": "cp1251"}},
            "fields": {"id": "№", "target": "ответ", "language": "язык", "target_separator": "|"},
            "prompt": {"user": "{вопрос}"},
            "scorer": "numeric",
            "generation": {"max_tokens": 64},
        },
    )


def _rows(directory: Path) -> dict[tuple, dict]:
    """The latest sample line of each unit, without what differs between two runs of the same answers."""
    latest = {tuple(r["key"]): r for r in iter_records(directory)}
    volatile = {"run_id", "latency_s", "ttft_s", "ttft_reasoning_s", "output_tokens_per_s", "generation_id",
                "from_cache", "rescored_from"}  # fmt: skip
    return {key: {k: v for k, v in row.items() if k not in volatile} for key, row in latest.items()}


def _run(path: Path, out: Path, run_id: str, **options) -> evalkit.RunResult:
    return evalkit.run([str(path)], MODELS, sim=True, out=str(out), run_id=run_id, progress=False,
                       cache=False, epochs=2, **options)  # fmt: skip


# ---- phases ------------------------------------------------------------------------------------


def test_generate_records_responses_only_and_score_equals_one_run(tmp_path: Path, capsys) -> None:
    path, out = _task(tmp_path), tmp_path / "results"
    whole = _run(path, out, "whole")
    generated = _run(path, out, "gen", phase="generate")
    assert generated.status == "completed" and "evalkit score gen" in generated.message
    lines = [json.loads(line) for line in (out / "gen" / "samples.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"response"} and len(lines) == 12 * 2 * 2
    manifest = read_manifest(out / "gen")
    assert manifest["totals"]["generated"] == 48 and manifest["totals"]["scored"] == 0
    assert generated.df.empty  # nothing counts as a scored sample before the score phase
    # the score phase: no simulator, no request; the CLI says so
    code, stdout, err = cli(["score", "gen", "--out", str(out)], capsys)
    assert code == 0 and "0 requests sent" in stdout and "completed" in stdout, err
    assert _rows(out / "gen") == _rows(out / "whole")
    manifest = read_manifest(out / "gen")
    assert manifest["totals"]["scored"] == whole.counts["scored"] == 48
    assert manifest["totals"]["score_sum"] == pytest.approx(whole.counts["score_sum"])
    assert manifest["invocations"][-1]["phase"] == "score" and manifest["invocations"][-1]["sent"] == 0
    # scoring again finds nothing left to score and changes nothing
    again = evalkit.score("gen", out=str(out))
    assert again.counts["scored"] == 48 and _rows(out / "gen") == _rows(out / "whole")


def test_a_generate_run_resumed_without_phase_scores_its_responses_without_asking_again(
    tmp_path: Path,
) -> None:
    path, out = _task(tmp_path, n=5), tmp_path / "results"
    _run(path, out, "gen", phase="generate")
    sent = read_manifest(out / "gen")["totals"]["sent"]
    resumed = evalkit.run([], [], resume="gen", out=str(out), progress=False, sim=True)
    assert resumed.status == "completed" and resumed.counts["scored"] == 5 * 2 * 2
    assert read_manifest(out / "gen")["totals"]["sent"] == sent  # nothing asked twice


def test_score_refuses_a_task_changed_since_generation(tmp_path: Path, capsys) -> None:
    path, out = _task(tmp_path, n=4), tmp_path / "results"
    _run(path, out, "gen", phase="generate")
    _task(tmp_path, n=5)  # the data file gained a row: other samples than the responses answer
    code, _, err = cli(["score", "gen", "--out", str(out)], capsys)
    assert code == 2 and "changed since run gen" in err and "--force" in err and "Traceback" not in err
    assert not list(iter_records(out / "gen"))  # nothing was scored


def test_failed_calls_of_the_generate_phase_are_errors_never_scored(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    _run(path, out, "gen", phase="generate", sim_faults="server_error=1.0", max_attempts=1)
    result = evalkit.score("gen", out=str(out))
    df = result and evalkit.load_results([out / "gen"])
    assert len(df) == 6 * 2 * 2 and df["error"].notna().all() and df["score"].isna().all()


# ---- shards ------------------------------------------------------------------------------------


@given(st.text(max_size=8), st.text(max_size=8), st.text(max_size=12), st.integers(0, 50), st.integers(1, 9))
def test_every_unit_falls_in_exactly_one_shard(task, model, sample_id, epoch, count) -> None:
    key = (task, model, sample_id, epoch)
    owners = [i for i in range(1, count + 1) if parse_shard(f"{i}/{count}").holds(key)]
    assert owners == [shard_of(key, count)]


def test_the_partition_never_changes_between_versions() -> None:
    # pinned: shards run by different evalkit versions must still merge
    assert [shard_of(("mgsm", "sim/small-fast", f"q{i}", 0), 4) for i in range(8)] == _PINNED


_PINNED = [2, 2, 3, 2, 2, 1, 3, 1]


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "1", "-1/2", ""])
def test_a_bad_shard_is_one_clear_error(text: str, capsys) -> None:
    code, _, err = cli(["run", "x", "-m", "m", "--sim", f"--shard={text}"], capsys)
    assert code == 2 and "--shard" in err and ("expected I/N" in err or "between 1 and N" in err), err
    assert "Traceback" not in err


def test_shards_merge_into_exactly_one_run(tmp_path: Path, capsys) -> None:
    path, out = _task(tmp_path), tmp_path / "results"
    whole = _run(path, out, "whole")
    for i in (1, 2, 3):  # a plain job array: one command per shard
        code, _, err = cli(["run", str(path), *sum((["-m", m] for m in MODELS), []), "--sim", "--out",
                            str(out), "--run-id", f"part-{i}", "--shard", f"{i}/3", "--epochs", "2",
                            "--no-cache", "-q"], capsys)  # fmt: skip
        assert code == 0, err
    parts = [read_manifest(out / f"part-{i}") for i in (1, 2, 3)]
    assert (
        all(0 < p["totals"]["total"] < 48 for p in parts) and sum(p["totals"]["total"] for p in parts) == 48
    )
    code, stdout, err = cli(
        ["merge", "part-1", "part-2", "part-3", "--into", "joined", "--out", str(out)], capsys
    )
    assert code == 0 and "joined: completed" in stdout, err
    assert _rows(out / "joined") == _rows(out / "whole")
    merged = read_manifest(out / "joined")
    for name in ("done", "scored", "total", "sent", "spent_rub", "score_sum"):
        assert merged["totals"][name] == pytest.approx(sum(p["totals"][name] for p in parts)), name
    assert merged["totals"]["score_sum"] == pytest.approx(whole.counts["score_sum"])
    assert [m["shard"] for m in merged["merged_from"]] == ["1/3", "2/3", "3/3"]
    assert merged["config"]["shard"] is None
    # the merged run reads, and resumes, like any run: nothing is left to do and nothing is sent
    again = evalkit.run([], [], resume="joined", out=str(out), progress=False, sim=True)
    assert (
        again.status == "completed"
        and read_manifest(out / "joined")["totals"]["sent"] == merged["totals"]["sent"]
    )


def test_merge_refuses_overlaps_gaps_and_other_runs(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=8), tmp_path / "results"
    for i in (1, 2):
        _run(path, out, f"part-{i}", shard=f"{i}/2")
    with pytest.raises(ConfigError, match="overlap: shard 1/2 is given twice"):
        evalkit.merge(["part-1", "part-1", "part-2"], into="x", out=str(out))
    with pytest.raises(ConfigError, match=r"gaps: .* shard 2/2: \d+ \(not given\)"):
        evalkit.merge(["part-1"], into="x", out=str(out))
    # a shard of another definition of the task (its data changed) is not a shard of this run
    other = tmp_path / "other"
    other.mkdir()
    _run(_task(other, n=9), out, "alien-2", shard="2/2")
    with pytest.raises(ConfigError, match="task definitions differ"):
        evalkit.merge(["part-1", "alien-2"], into="x", out=str(out))
    _run(path, out, "three-2", shard="2/3")
    with pytest.raises(ConfigError, match="share N"):
        evalkit.merge(["part-1", "three-2"], into="x", out=str(out))
    _run(path, out, "seeded-2", shard="2/2", seed=7)
    with pytest.raises(ConfigError, match="seed is None in one and 7"):
        evalkit.merge(["part-1", "seeded-2"], into="x", out=str(out))
    # a unit recorded in a second run of the same shard index under another N: an overlap by key
    _run(path, out, "whole")
    with pytest.raises(ConfigError, match="not a shard"):
        evalkit.merge(["part-1", "whole"], into="x", out=str(out))
    assert not (out / "x").exists()  # nothing was written by any refused merge


def test_a_unit_moved_into_another_shard_by_hand_is_refused(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=8), tmp_path / "results"
    for i in (1, 2):
        _run(path, out, f"part-{i}", shard=f"{i}/2")
    theirs = out / "part-2" / "samples.jsonl"
    lines = theirs.read_text(encoding="utf-8").splitlines(keepends=True)
    moved = json.loads(next(line for line in lines if '"kind":"sample"' in line))
    theirs.write_text(
        "".join(line for line in lines if json.loads(line).get("key") != moved["key"]), encoding="utf-8"
    )
    with open(out / "part-1" / "samples.jsonl", "a", encoding="utf-8") as mine:
        mine.write(json.dumps(moved | {"run_id": "part-1"}, ensure_ascii=False) + "\n")
    with pytest.raises(
        ConfigError, match=r"is recorded in run part-1 \(shard 1/2\) but belongs to shard 2/2"
    ):
        evalkit.merge(["part-1", "part-2"], into="x", out=str(out))
    assert not (out / "x").exists()


def test_an_unfinished_shard_is_named_with_the_command_that_finishes_it(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=8), tmp_path / "results"
    for i in (1, 2):
        _run(path, out, f"part-{i}", shard=f"{i}/2")
    journal = out / "part-2" / "samples.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    journal.write_text("".join(lines[:-3]), encoding="utf-8")  # the shard's last samples never finished
    with pytest.raises(ConfigError, match="resume it"):
        evalkit.merge(["part-1", "part-2"], into="x", out=str(out))
    evalkit.run([], [], resume="part-2", out=str(out), progress=False, sim=True)
    assert evalkit.merge(["part-1", "part-2"], into="x", out=str(out)).status == "completed"


def test_generate_phase_shards_merge_then_score(tmp_path: Path) -> None:
    path, out = _task(tmp_path, n=6), tmp_path / "results"
    _run(path, out, "whole")
    for i in (1, 2):
        _run(path, out, f"gen-{i}", shard=f"{i}/2", phase="generate")
    merged = evalkit.merge(["gen-1", "gen-2"], into="gen", out=str(out))
    assert "evalkit score gen" in merged.message
    evalkit.score("gen", out=str(out))
    assert _rows(out / "gen") == _rows(out / "whole")


def test_an_executor_that_cannot_run_is_one_clear_error_before_anything_is_sent(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, out = _task(tmp_path, n=2), tmp_path / "results"
    code, _, err = cli(
        ["run", str(path), "-m", MODELS[0], "--sim", "--executor", "spark", "--out", str(out)], capsys
    )
    assert code == 2 and "expected local, ray or ray://HOST:PORT" in err and "Traceback" not in err
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    code, _, err = cli(["run", str(path), "-m", MODELS[0], "--sim", "--executor", "ray", "--out", str(out),
                        "--run-id", "no-ray", "-q"], capsys)  # fmt: skip
    assert code == 2 and "pip install 'evalkit[ray]'" in err and "Traceback" not in err
    assert not list(iter_records(out / "no-ray"))  # nothing was sent or recorded
