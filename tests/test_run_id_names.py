"""Run ids name folders that may be synced to or shared with Windows: ids it would merge or refuse are
refused here with one line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cli.commands import main
from evalkit.runner.config import check_run_id


@pytest.mark.parametrize(
    "run_id", ["abc.", "run-1.", "CON", "nul", "Com1", "lpt9.log", "aux.json", "a" * 129]
)
def test_a_run_id_another_system_would_merge_or_refuse_is_refused(
    run_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "builtin_qa", "-m", "sim/small-fast", "-n", "1", "--sim", "--sim-latency-scale", "0", "--out", str(tmp_path)]
                + ["--run-id", run_id, "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not allowed" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "run_id", ["console", "nullable", "a.b", "com10", "con-1", "x" * 128, "20261201-rescored"]
)
def test_ordinary_run_ids_are_kept(run_id: str) -> None:
    assert check_run_id(run_id) == run_id
