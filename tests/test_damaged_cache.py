"""A damaged response cache is one clear error, never a traceback; an unreadable record is a miss."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import evalkit
from evalkit.cli.commands import main


def _run(out: Path, run_id: str) -> evalkit.RunResult:
    return evalkit.run(
        ["builtin_qa"], ["sim/small-fast"], sim=True, limit=6, progress=False, out=str(out), run_id=run_id
    )


def test_a_cache_with_a_damaged_page_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path, "first")
    path = tmp_path / "cache.sqlite"
    assert path.stat().st_size > 8192 and not (tmp_path / "cache.sqlite-wal").exists()
    with open(path, "r+b") as file:  # the header stays valid, a table page is garbage
        file.seek(4096)
        file.write(b"\xff" * 4096)
    code = main(["run", "builtin_qa", "-m", "sim/small-fast", "-n", "6", "--sim", "--sim-latency-scale", "0", "--out", str(tmp_path)]
                + ["--run-id", "second", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cache.sqlite: cannot read the response cache" in err and "--no-cache" in err


def test_an_unreadable_cache_record_is_a_miss_and_the_request_is_sent(tmp_path: Path) -> None:
    _run(tmp_path, "first")
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        db.execute("UPDATE responses SET record = '{not json'")
    db.close()
    second = _run(tmp_path, "second")
    manifest = json.loads((second.path / "manifest.json").read_text(encoding="utf-8"))
    assert second.status == "completed"
    assert manifest["totals"]["sent"] == 6 and manifest["totals"]["from_cache"] == 0
