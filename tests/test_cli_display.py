"""What the CLI prints: compact tables that fit 100 columns, --wide/--csv/--json, the run list, ₽ billed
now against uncached, Holm-adjusted comparisons, `plan`, and estimate's modality check."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from test_cli import _write_task
from test_stats import make_results

from evalkit import stats
from evalkit.cli import display
from evalkit.cli.commands import main
from evalkit.results import list_runs, load_results

MODELS = ["meta-llama/llama-4-scout", "sim/small-fast"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two runs of the same task on the simulator: the second answers from the cache."""
    folder = tmp_path_factory.mktemp("display")
    task = _write_task(folder)
    out = folder / "results"
    for run_id in ("first", "again"):
        argv = [
            "run",
            task,
            *[f"-m{m}" for m in MODELS],
            "--sim",
            "--out",
            str(out),
            "--run-id",
            run_id,
            "-q",
        ]
        assert main(argv) == 0
    return out


def _out(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0, argv
    return capsys.readouterr().out


def test_show_prints_a_compact_table_that_fits_100_columns(results, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    shown = _out(capsys, ["show", "first", "--out", str(results)])
    assert max(len(line) for line in shown.splitlines()) <= 100
    header = next(line for line in shown.splitlines() if line.startswith("model"))
    for column in ("model", "n", "accuracy % [95% CI]", "errors", "p50 s", "₽/1000", "₽/correct"):
        assert column in header
    assert "task: tiny_qa" in shown and "meta-llama/llama-4-scout" in shown  # whole, not wrapped
    summary = load_results("first", results).query("model == 'sim/small-fast'")
    accuracy = 100 * summary["score"].mean()
    row = next(line for line in shown.splitlines() if line.startswith("sim/small-fast"))
    assert f"{accuracy:.1f} [" in row  # % as in the report, not a 0–1 fraction


def test_wide_csv_and_json_give_every_column(results, capsys) -> None:
    wide = _out(capsys, ["show", "first", "--out", str(results), "--wide"])
    assert "rub_per_1000_low" in wide and "ttft_p95_s" in wide
    table = pd.read_csv(io.StringIO(_out(capsys, ["show", "first", "--out", str(results), "--csv"])))
    assert list(table["model"]) == sorted(MODELS) and "rub_per_correct_high" in table
    rows = json.loads(_out(capsys, ["show", "first", "--out", str(results), "--json"]))
    assert rows[0]["accuracy"] == pytest.approx(table["accuracy"].iloc[0]) and "ci_method" in rows[0]
    run = json.loads(
        _out(capsys, ["run", "--resume", "first", "--sim", "--out", str(results), "-q", "--json"])
    )
    assert {r["model"] for r in run} == set(MODELS)


def test_show_without_runs_lists_them(results, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    listed = _out(capsys, ["show", "--out", str(results)])
    lines = listed.splitlines()
    assert (
        lines[0].split()[:3] == ["run", "status", "tasks"]
        and "₽ billed" in lines[0]
        and "created" in lines[0]
    )
    first = next(line for line in lines if line.startswith("first"))
    assert "completed*" in first and "tiny_qa" in first and "llama-4-scout" in first
    assert "* simulated" in listed
    runs = list_runs(results)
    assert set(runs["run_id"]) == {"first", "again"} and runs["spent_rub"].notna().all()
    as_json = json.loads(_out(capsys, ["show", "--out", str(results), "--json"]))
    assert {r["run_id"] for r in as_json} == {"first", "again"}


def test_show_gives_billed_now_and_uncached_cost(results, capsys) -> None:
    again = load_results("again", results)
    assert again["from_cache"].all()  # the second run paid nothing
    shown = _out(capsys, ["show", "again", "--out", str(results)])
    line = next(line for line in shown.splitlines() if "billed now" in line)
    uncached = again["cost_rub"].sum()
    assert "₽ billed now 0 " in line and "16 of 16 answers from the cache" in line
    assert (
        f"uncached it would cost {uncached:.3g}" in line or f"uncached it would cost {uncached:.2f}" in line
    )


def test_load_results_takes_a_whole_results_folder(results) -> None:
    everything = load_results(results)
    assert set(everything["run_id"]) == {"first", "again"}
    assert len(everything) == len(load_results("first", results)) + len(load_results("again", results))
    with pytest.raises(Exception, match="no run"):
        load_results(results / "nowhere")


def test_compare_prints_holm_adjusted_groups(results, capsys) -> None:
    folder = results.parent
    rows = []
    for model, right in (("A", 0.9), ("B", 0.5)):
        for language in ("en", "ru", "th"):
            for i in range(30):
                rows.append({"kind": "sample", "key": ["t", model, f"{language}{i}", 0], "task": "t", "model": model,
                             "sample_id": f"{language}{i}", "epoch": 0, "language": language, "error": None,
                             "score": float(i < 30 * right)})  # fmt: skip
    run = folder / "made"
    run.mkdir()
    (run / "manifest.json").write_text(
        json.dumps({"run_id": "made", "status": "completed"}), encoding="utf-8"
    )
    (run / "samples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    printed = _out(capsys, ["compare", "A", "B", "--run", str(run)])
    assert printed.splitlines()[0].startswith("A is 40.0 pp more accurate than B")
    assert "By task and language (3 comparisons" in printed and "p Holm" in printed
    parsed = json.loads(_out(capsys, ["compare", "A", "B", "--run", str(run), "--json"]))
    pooled, groups = parsed[0], parsed[1:]
    # the table's first line is in the JSON too: the pooled test over all 90 pairs, outside Holm's family
    assert pooled["scope"] == "pooled" and pooled["task"] is None and pooled["language"] is None
    assert (pooled["model_a"], pooled["model_b"], pooled["n_pairs"]) == ("A", "B", 90)
    assert pooled["difference"] == pytest.approx(0.4) and pooled["p_holm"] is None
    assert f"{100 * pooled['low']:.1f} to {100 * pooled['high']:.1f}" in printed.splitlines()[0]
    assert [g["scope"] for g in groups] == ["group"] * 3
    assert [g["language"] for g in groups] == ["en", "ru", "th"]
    assert all(g["p_holm"] >= g["p_value"] for g in groups)
    csv_rows = _out(capsys, ["compare", "A", "B", "--run", str(run), "--csv", "--task", "t"]).splitlines()
    assert csv_rows[0].startswith("scope,model_a,model_b,task,language,n_pairs")
    assert csv_rows[1].startswith("pooled,A,B,t,,90,0,") and len(csv_rows) == 5


def test_plan_from_a_pilot_and_from_stated_accuracies(results, capsys) -> None:
    printed = _out(
        capsys, ["plan", *MODELS, "--run", "first", "--out", str(results), "--delta", "10", "--sim"]
    )
    last = printed.splitlines()[-1]
    assert last.startswith(f"To tell {MODELS[0]} from {MODELS[1]} at a 10.0 pp difference you need ")
    assert "from price cards" in printed and " ₽ " in last and "paired" in last
    parsed = json.loads(_out(capsys, ["plan", *MODELS, "--run", "first", "--out", str(results), "--delta", "10",
                                      "--json", "--no-prices"]))  # fmt: skip
    pilot = load_results("first", results)
    billed = pilot.groupby("model")["cost_rub"].mean()
    assert parsed["rub_per_sample"] == {m: pytest.approx(billed[m]) for m in MODELS}
    assert parsed["total_rub"] == pytest.approx(parsed["n_samples"] * billed.sum())
    stated = _out(
        capsys, ["plan", "A", "B", "--accuracy-a", "75", "--accuracy-b", "70", "--correlation", "0.5"]
    )
    assert (
        "you need 627 samples" in stated and "no prices without a pilot run" in stated
    )  # exact McNemar power (Connor: 631)
    clustered = _out(capsys, ["plan", "A", "B", "--accuracy-a", "75", "--accuracy-b", "70", "--correlation", "0.5",
                              "--design-effect", "1.5", "--cluster-size", "4"])  # fmt: skip
    assert "you need 948 samples" in clustered  # 631 × 1.5, up to whole clusters of 4
    assert "within-cluster correlation 0.17" in clustered
    assert main(["plan", "A", "B"]) == 2
    assert "give a pilot (--run RUN_ID)" in capsys.readouterr().err


def test_estimate_refuses_images_for_a_text_only_model_as_run_does(capsys, tmp_path) -> None:
    assert main(["estimate", "builtin_vision", "-m", "sim/small-fast", "--sim", "-n", "2"]) == 2
    error = capsys.readouterr().err
    assert "'sim/small-fast' does not take image input" in error and "builtin_vision" in error
    assert (
        main(["run", "builtin_vision", "-m", "sim/small-fast", "--sim", "-n", "2", "--out", str(tmp_path)])
        == 2
    )
    assert "does not take image input" in capsys.readouterr().err


def test_models_sim_names_the_simulator_as_its_source(capsys) -> None:
    listed = _out(capsys, ["models", "--sim"])
    assert "source: simulator" in listed.splitlines()[-1] and "network" not in listed


def test_by_language_is_in_percent_and_fits(capsys, monkeypatch) -> None:
    languages = ("ar", "bn", "de", "en", "es", "fr", "hi", "ja", "ru", "sw", "te", "th", "zh")
    df = make_results(n=130, languages=languages)
    printed = display.languages(stats.by_language(df), width=100)
    assert max(len(line) for line in printed.splitlines()) <= 100 and "…" not in printed
    header = next(line for line in printed.splitlines() if line.startswith("model"))
    assert header.split()[1:] == [*languages, "macro", "micro"]
    big = df[(df["model"] == "big/large") & (df["language"] == "ru")]["score"].mean()
    row = next(line for line in printed.splitlines() if line.startswith("big/large")).split()
    assert row[1 + languages.index("ru")] == f"{100 * big:.0f}"


def test_progress_line_gives_accuracy_in_percent() -> None:
    from evalkit.runner.progress import ProgressSnapshot, describe

    line = describe(ProgressSnapshot(total=10, done=8, score_sum=6.0, scored=8))
    assert "acc 75.0%" in line and "0.750" not in line


def test_plan_warns_with_the_numbers_when_the_task_has_fewer_samples_than_it_needs(results, capsys) -> None:
    from evalkit.task.spec import resolve_task

    available = len(resolve_task("builtin_qa").load_samples())
    stated = ["plan", "A", "B", "--accuracy-a", "75", "--accuracy-b", "70", "--correlation", "0.5"]
    capsys.readouterr()
    assert main([*stated, "--task", "builtin_qa", "--json"]) == 0
    captured = capsys.readouterr()
    parsed = json.loads(captured.out)
    assert parsed["n_samples"] == 627 > available and parsed["task"] == "builtin_qa"
    reach = stats.detectable_difference(available, parsed["discordance"], power=0.8, alpha=0.05)
    assert stats.paired_sample_size(reach, parsed["discordance"]) == pytest.approx(available, rel=1e-9)
    warning = (
        f"the plan needs 627 samples but task 'builtin_qa' has only {available}: with all of them the "
        f"smallest difference detectable at power 80% is {100 * reach:.1f} pp, not 5.0 pp"
    )
    assert parsed["warnings"] == [warning] and f"evalkit: warning: {warning}\n" in captured.err
    # a difference all of its samples can detect: no warning; a task that does not exist: one error
    assert (
        json.loads(_out(capsys, [*stated, "--delta", "20", "--task", "builtin_qa", "--json"]))["warnings"]
        == []
    )
    assert main([*stated, "--task", "no_such_task"]) == 2
    assert "no task named 'no_such_task'" in capsys.readouterr().err
    # from a pilot: all of the pilot task's data counts (8 samples), not only what the pilot ran
    assert (
        main(["plan", *MODELS, "--run", "first", "--out", str(results), "--delta", "10", "--no-prices"]) == 0
    )
    err = capsys.readouterr().err
    assert "evalkit: warning: the plan needs " in err and "but task 'tiny_qa' has only 8: " in err


def test_estimate_warns_when_the_limit_asks_for_more_samples_than_the_task_has(capsys) -> None:
    from evalkit.task.spec import resolve_task

    available = len(resolve_task("builtin_qa").load_samples())
    capsys.readouterr()
    assert main(["estimate", "builtin_qa", "-m", "sim/small-fast", "--sim", "--limit", "1000"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"evalkit: warning: --limit 1000 asks for more samples than task 'builtin_qa' has ({available}); "
        f"the estimate is for {available}\n"
    )
    assert f" {available} " in captured.out.splitlines()[1]  # the calls column
    assert main(["estimate", "builtin_qa", "-m", "sim/small-fast", "--sim", "--limit", "10"]) == 0
    assert capsys.readouterr().err == ""
