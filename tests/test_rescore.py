"""`evalkit rescore RUN` / `evalkit.rescore(run_id)`: recorded answers scored again, zero requests, a new
run whose manifest names its source; failed calls stay errors."""

from __future__ import annotations

import json
from pathlib import Path

import evalkit
from evalkit.runner.journal import iter_records, read_manifest
from tests.userdata import cli, write_csv, write_task

MODEL = "meta-llama/llama-4-scout"


def _task(tmp_path: Path, answer: str) -> Path:
    rows = [
        {"id": f"q{i}", "q": f"Сколько будет {i} × 1000?", "answer": answer.format(n=i), "language": "ru"}
        for i in range(1, 5)
    ]
    write_csv(tmp_path / "qa.csv", rows)
    return write_task(
        tmp_path,
        {
            "name": "thousands",
            "family": "qa",
            "source": {"path": "qa.csv"},
            "fields": {"id": "id", "target": "answer"},
            "prompt": {"user": '{q} Ответ в формате "Ответ: <число>".'},
            "scorer": "numeric",
            "generation": {"max_tokens": 64},
        },
    )


def test_rescore_sends_nothing_and_names_its_source(tmp_path: Path, capsys) -> None:
    path = _task(tmp_path, "{n}000")
    out = tmp_path / "results"
    result = evalkit.run([str(path)], [MODEL], sim=True, out=str(out), run_id="src", progress=False)
    assert result.status == "completed"
    source_rows = {r["sample_id"]: r for r in iter_records(out / "src")}
    # a later fix of the data: the same targets, written with a space as users' files do
    path = _task(tmp_path, "{n} 000")
    again = evalkit.rescore("src", out=str(out), run_id="fixed")
    manifest = read_manifest(out / "fixed")
    assert manifest["rescored_from"]["run_id"] == "src" and manifest["totals"]["sent"] == 0
    assert manifest["totals"]["spent_rub"] == 0.0 and manifest["status"] == "completed"
    rows = {r["sample_id"]: r for r in iter_records(out / "fixed")}
    assert rows.keys() == source_rows.keys()
    for sample_id, row in rows.items():
        assert row["output"] == source_rows[sample_id]["output"] and row["rescored_from"] == "src"
        assert row["score"] == source_rows[sample_id]["score"]  # "4 000" reads as 4000: the same verdicts
        assert row["target"] == [f"{sample_id[1:]} 000"]
    assert again.df["score"].notna().all()
    # the CLI, with another scorer for every task; an exact match of "4000" against "4 000" fails
    code, stdout, err = cli(
        ["rescore", "src", "--out", str(out), "--run-id", "exact", "--scorer", "exact"], capsys
    )
    assert code == 0 and "0 requests sent" in stdout, err
    assert read_manifest(out / "exact")["rescored_from"]["scorer_override"] == "exact"
    exact = list(iter_records(out / "exact"))
    assert all("target(s)" in r["explanation"] or "equals a target" in r["explanation"] for r in exact)
    code, _, err = cli(["rescore", "nope", "--out", str(out)], capsys)
    assert code == 2 and "Traceback" not in err


def test_rescore_keeps_failed_calls_as_errors(tmp_path: Path) -> None:
    path = _task(tmp_path, "{n}000")
    out = tmp_path / "results"
    evalkit.run([str(path)], [MODEL], sim=True, out=str(out), run_id="src", progress=False)
    journal = out / "src" / "samples.jsonl"
    lines = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    failed = next(r for r in lines if r["kind"] == "sample")
    failed.update(error="server_error", error_message="HTTP 500", score=None, output="")
    journal.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*lines, failed]), encoding="utf-8"
    )
    evalkit.rescore("src", out=str(out), run_id="again")
    rows = {r["sample_id"]: r for r in iter_records(out / "again")}
    assert rows[failed["sample_id"]]["error"] == "server_error" and rows[failed["sample_id"]]["score"] is None
    assert read_manifest(out / "again")["totals"]["errors"] == 1


def test_the_public_names_stay_functions_once_their_modules_are_imported() -> None:
    """A public function whose module bore its name (`evalkit/rescore.py`) was replaced by that module
    as soon as anything imported it (the CLI does): `evalkit.rescore(...)` then failed."""
    import importlib

    import evalkit

    for module in ("evalkit.runner.rescore", "evalkit.runner.api", "evalkit.cli", "evalkit.results"):
        importlib.import_module(module)
    for name in ("run", "arun", "rescore", "load_results", "summarize", "scorer", "reader"):
        assert callable(getattr(evalkit, name)) and not isinstance(getattr(evalkit, name), type(evalkit))
