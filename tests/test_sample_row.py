"""The typed sample row is what the journal writes and what `load_results` reads: a journal written by
an earlier version (tests/data/journal_v1, made by the code before the row was typed) reads back the
same, a column it lacks is defaulted, and a key from a later version is kept, not dropped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import evalkit
from evalkit.runner.record import SampleRow

FIXTURE = Path(__file__).parent / "data" / "journal_v1" / "fixture-v1"

# the DataFrame's columns for that journal, as the code that wrote it produced them
V1_COLUMNS = [
    "run_id", "task", "family", "model", "sample_id", "epoch", "language", "target", "prompt", "output",
    "reasoning", "truncated", "extracted", "score", "explanation", "error", "error_message", "latency_s",
    "ttft_s", "ttft_reasoning_s", "output_tokens_per_s", "prompt_tokens", "completion_tokens",
    "reasoning_tokens", "cached_tokens", "cache_write_tokens", "cost_rub", "attempts", "finish_reason",
    "generation_id", "http_status", "images", "image_refs", "cost_rub_estimated", "cost_rub_input",
    "cost_rub_output", "cost_rub_images", "cost_rub_reasoning", "cost_rub_cache_saved", "from_cache",
    "simulated", "cluster", "request", "meta_cluster", "meta_kind",
]  # fmt: skip


def _sample_lines(path: Path) -> list[dict]:
    lines = [json.loads(line) for line in (path / "samples.jsonl").open(encoding="utf-8")]
    return [line for line in lines if line["kind"] == "sample"]


def test_a_journal_written_before_the_typed_row_loads_with_the_same_columns_and_values() -> None:
    df = evalkit.load_results([FIXTURE]).sort_values("sample_id")
    assert list(df.columns) == V1_COLUMNS
    assert list(df["sample_id"]) == ["s0", "s1", "s2", "s3"]
    assert list(df["error"].fillna("ok")) == ["server_error", "server_error", "ok", "ok"]
    assert df["score"].isna().tolist() == [True, True, False, False]  # errors are never scored
    assert df["score"].sum() == 1.0
    assert list(df["target"]) == ["0", "2", "4", "6"]
    assert list(df["meta_cluster"]) == ["c0", "c1", "c0", "c1"]
    assert df["cost_rub"].dropna().gt(0).all() and df["cost_rub"].isna().sum() == 2


def test_every_line_of_that_journal_round_trips_through_the_row_unchanged() -> None:
    for line in _sample_lines(FIXTURE):
        row = SampleRow.from_line(line)
        assert row.extra == {}
        assert row.to_line() == line


def test_a_line_lacking_newer_columns_is_defaulted_and_an_unknown_key_is_kept(tmp_path: Path) -> None:
    run = tmp_path / "fixture-v1"
    shutil.copytree(FIXTURE, run)
    lines = []
    for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["kind"] == "sample":
            for old in ("reasoning", "truncated", "ttft_reasoning_s", "cache_write_tokens", "family"):
                record.pop(old)
            record["verdict_by_judge"] = "yes"  # written by a later version
        lines.append(json.dumps(record))
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    df = evalkit.load_results([run])
    assert set(V1_COLUMNS) <= set(df.columns)
    assert not df["truncated"].any()
    assert df["family"].isna().all() and df["reasoning"].isna().all()
    assert list(df["verdict_by_judge"]) == ["yes"] * 4
    assert df["score"].sum() == 1.0


def test_a_line_without_identity_columns_takes_them_from_its_key() -> None:
    row = SampleRow.from_line({"kind": "sample", "key": ["t", "m", "s9", 2], "score": 0.5})
    assert (row.task, row.model, row.sample_id, row.epoch, row.score) == ("t", "m", "s9", 2, 0.5)


def test_rows_of_a_new_run_round_trip_too(tmp_path: Path) -> None:
    task = evalkit.Task(
        name="rows", samples=[evalkit.Sample(id="a", input="2+2?", target="4")], scorer="numeric"
    )
    result = evalkit.run(
        [task], ["sim/small-fast"], sim=True, sim_latency_scale=0, out=str(tmp_path), progress=False
    )
    (line,) = _sample_lines(result.path)
    assert SampleRow.from_line(line).to_line() == line
    assert set(line) - {"kind", "key"} == {
        f for f in SampleRow.__dataclass_fields__ if f not in ("extra", "rescored_from")
    }


@pytest.mark.parametrize("name", ["metrics", "metadata"])
def test_nested_columns_are_flattened_not_shown_raw(name: str) -> None:
    (line,) = _sample_lines(FIXTURE)[:1]
    assert name not in SampleRow.from_line(line).columns()


def test_the_fast_column_reader_agrees_with_the_typed_row() -> None:
    for line in _sample_lines(FIXTURE):
        partial = {k: v for k, v in line.items() if k not in ("truncated", "images", "family", "run_id")}
        partial["later_column"] = 1
        assert SampleRow.columns_of(partial) == SampleRow.from_line(partial).columns()
        assert SampleRow.columns_of(line) == SampleRow.from_line(line).columns()
