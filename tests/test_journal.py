"""The journal: durable appends, resume state, and recovery from a line cut short by a crash."""

from __future__ import annotations

import asyncio
import json

import pytest

from evalkit.common.errors import ConfigError
from evalkit.runner.journal import Journal, iter_records


def _response(sample_id: str, cost: float = 0.5, error: str | None = None) -> dict:
    return {"kind": "response", "key": ["t", "m", sample_id, 0], "call": {"cost_rub": cost, "error": error}}


def _sample(sample_id: str, error: str | None = None) -> dict:
    return {
        "kind": "sample",
        "key": ["t", "m", sample_id, 0],
        "score": None if error else 1.0,
        "error": error,
    }


async def _write(journal: Journal, records: list[dict]) -> None:
    journal.open()
    await asyncio.gather(*(journal.append(r) for r in records))
    journal.close()
    journal.release()


def test_state_separates_done_failed_and_unscored_responses(tmp_path):
    journal = Journal.create(tmp_path / "run")
    journal.write_manifest({"run_id": "run"})
    records = [
        _response("a"),
        _sample("a"),
        _response("b", error="server_error"),
        _sample("b", "server_error"),
        _response("c", cost=0.25),
    ]
    asyncio.run(_write(journal, records))
    state = Journal.open_existing(tmp_path / "run").read_state()
    assert state.done == {("t", "m", "a", 0)}
    assert state.failed == {("t", "m", "b", 0)}
    assert set(state.responses) == {("t", "m", "c", 0)}
    assert state.spent_rub == pytest.approx(1.25)
    assert not state.dropped_partial_line


def test_a_line_cut_short_is_dropped_and_the_file_truncated(tmp_path):
    journal = Journal.create(tmp_path / "run")
    journal.write_manifest({"run_id": "run"})
    asyncio.run(_write(journal, [_response("a"), _sample("a"), _response("b")]))
    path = tmp_path / "run" / "samples.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"kind": "sample", "key": ["t", "m", "b", 0], "sco')  # power loss mid-line
    state = Journal.open_existing(tmp_path / "run").read_state()
    assert state.dropped_partial_line
    assert state.done == {("t", "m", "a", 0)}
    assert ("t", "m", "b", 0) in state.responses
    assert path.read_bytes() == whole  # appends after resume start on a clean line


def test_a_retried_sample_supersedes_its_error(tmp_path):
    journal = Journal.create(tmp_path / "run")
    journal.write_manifest({"run_id": "run"})
    asyncio.run(_write(journal, [_sample("a", "timeout"), _sample("a")]))
    state = Journal.open_existing(tmp_path / "run").read_state()
    assert state.done == {("t", "m", "a", 0)} and not state.failed
    assert [r["error"] for r in iter_records(tmp_path / "run")] == ["timeout", None]


def test_creating_over_an_existing_run_and_resuming_a_missing_one_are_refused(tmp_path):
    first = Journal.create(tmp_path / "run")
    first.write_manifest({"run_id": "run"})
    first.release()
    with pytest.raises(ConfigError, match="already exists"):
        Journal.create(tmp_path / "run")
    with pytest.raises(ConfigError, match="no run to resume"):
        Journal.open_existing(tmp_path / "missing")


def test_manifest_write_is_atomic_json(tmp_path):
    journal = Journal.create(tmp_path / "run")
    journal.write_manifest({"run_id": "run", "status": "running", "price": 1.5e-05})
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["price"] == 1.5e-05
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_an_unsynced_append_is_already_in_the_file_for_a_resume_after_a_kill(tmp_path):
    journal = Journal.create(tmp_path / "run")
    journal.write_manifest({"run_id": "run"})
    journal.open()
    asyncio.run(journal.append(_response("a"), sync=False))
    # not closed, as after SIGKILL (whose death drops the lock): a resumed process reads the flushed line
    journal.release()
    state = Journal.open_existing(tmp_path / "run").read_state()
    assert set(state.responses) == {("t", "m", "a", 0)}
    journal.close()
