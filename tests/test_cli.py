"""The `evalkit` command: each subcommand end to end on the simulator, and bad input as one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalkit.cli.commands import main


def _write_task(tmp_path, *, extra: str = "", user: str = "{question}") -> str:
    data = tmp_path / "qa.jsonl"
    rows = [
        {
            "id": i,
            "question": f"What is {i} + 1? End with 'Answer: <n>'.",
            "answer": str(i + 1),
            "language": "en",
        }
        for i in range(8)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    task = tmp_path / "qa.yaml"
    task.write_text(
        textwrap.dedent(f"""\
        name: tiny_qa
        family: qa
        description: eight sums
        source: {{path: qa.jsonl}}
        fields: {{id: id, target: answer, language: language}}
        prompt: {{user: "{user}"}}
        scorer: numeric
        generation: {{max_tokens: 64}}
        """)
        + extra,
        encoding="utf-8",
    )
    return str(task)


def test_run_show_compare_and_report_on_the_simulator(tmp_path, capsys):
    task = _write_task(tmp_path)
    out = str(tmp_path / "results")
    code = main(
        [
            "run",
            task,
            "-m",
            "meta-llama/llama-4-scout",
            "-m",
            "sim/small-fast",
            "--sim",
            "--out",
            out,
            "--run-id",
            "r1",
            "-q",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "run r1: completed" in printed and "tiny_qa" in printed
    assert main(["show", "r1", "--out", out, "--by-language"]) == 0
    shown = capsys.readouterr().out
    assert "[SIMULATED]" in shown and "meta-llama/llama-4-scout" in shown
    assert main(["compare", "meta-llama/llama-4-scout", "sim/small-fast", "--run", "r1", "--out", out]) == 0
    assert "pairs" in capsys.readouterr().out
    report = tmp_path / "report.html"
    assert (
        main(["report", "r1", "--results", out, "--html", str(report), "--png-dir", str(tmp_path / "png")])
        == 0
    )
    assert "SIMULATED" in report.read_text(encoding="utf-8")
    assert list((tmp_path / "png").glob("*.svg")) and list((tmp_path / "png").glob("*.png"))


def test_validate_list_models_and_estimate(tmp_path, capsys):
    task = _write_task(tmp_path)
    assert main(["validate", task]) == 0
    assert "ok: tiny_qa" in capsys.readouterr().out
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "builtin_qa" in listed and "mgsm" in listed and "INVALID" not in listed
    assert main(["models", "--sim"]) == 0
    models = capsys.readouterr().out
    assert (
        "meta-llama/llama-4-scout" in models and "18.00" in models and "59.00" in models and "91.14" in models
    )
    assert main(["estimate", task, "-m", "meta-llama/llama-4-scout", "--sim"]) == 0
    estimate = capsys.readouterr().out
    assert "tiny_qa" in estimate and "₽" in estimate


@pytest.mark.parametrize(
    "extra, user, message",
    [
        ("scorer: nonsense\n", "{question}", "unknown scorer 'nonsense'"),
        ("", "{question} {missing}", "template variable {missing} is not in the data"),
        ("max_token: 5\n", "{question}", "max_token"),
    ],
)
def test_bad_task_files_get_one_line_naming_the_file_and_field(tmp_path, capsys, extra, user, message):
    path = _write_task(tmp_path, extra=extra, user=user)
    if extra.startswith("scorer"):  # a second `scorer:` key overrides the first
        file = Path(path)
        file.write_text(file.read_text(encoding="utf-8").replace("scorer: numeric\n", ""), encoding="utf-8")
    assert main(["validate", path]) == 2
    error = capsys.readouterr().err
    assert error.startswith("evalkit: error: ") and path in error and message in error
    assert "Traceback" not in error


def test_malformed_yaml_names_the_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsource: [unclosed\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "malformed YAML at line" in error


def test_run_without_a_key_suggests_the_simulator(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ROUTERAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", _write_task(tmp_path), "-m", "meta-llama/llama-4-scout", "--out", str(tmp_path)]) == 2
    assert "--sim" in capsys.readouterr().err


def test_help_is_fast_to_import():
    """`evalkit --help` must not import the SDK, pandas, matplotlib or datasets."""
    code = (
        "import sys; from evalkit.cli.commands import _parser; _parser(); "
        "print(sorted(m for m in ('openai','pandas','matplotlib','datasets','aiohttp') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
