"""User task files end to end: Python task files from the CLI, code samples without tests, resume after
the data changed, the gold-against-itself self-check on every shipped task and every task of the tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalkit.common.errors import TaskError
from evalkit.task.spec import load_task, resolve_task, tasks_dir
from evalkit.task.validate import check_task
from tests.userdata import cli, write_csv, write_task

MODEL = "meta-llama/llama-4-scout"
SIM = ("--sim", "--sim-latency-scale", "0")  # the simulator answers at once: no latency is tested here

PY_TASK = '''
from evalkit import Score
from evalkit.task.spec import Sample, Task


def close_enough(output, sample):
    """A user's own scorer: the last word equals the target."""
    words = output.split()
    return Score(float(bool(words) and words[-1] == sample.target[0]), words[-1] if words else None)


task = Task(
    name="py_sums",
    family="qa",
    samples=[
        Sample(id="ru1", input="Сколько будет 2 + 2?", target="4", language="ru"),
        Sample(id="kk1", input="2 + 3 неше?", target="5", language="kk"),
    ],
    scorer="numeric",
    generation={"max_tokens": 64},
)


def custom():
    return Task(name="py_custom", samples=[Sample(id="1", input="Say 7", target="7")], scorer=close_enough)
'''


def _py_file(tmp_path: Path, text: str = PY_TASK) -> Path:
    path = tmp_path / "my_tasks.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- 10. FILE.py:NAME ------------------------------------------------------------------------------


def test_python_task_files_work_for_validate_estimate_and_run(tmp_path: Path, capsys) -> None:
    spec = f"{_py_file(tmp_path)}:task"
    code, out, err = cli(["validate", spec, f"{tmp_path / 'my_tasks.py'}:custom"], capsys)
    assert code == 0, err
    assert "ok: py_sums" in out and "ok: py_custom" in out and "languages: ru (1), kk (1)" in out
    code, out, err = cli(["estimate", spec, "-m", MODEL, "--sim"], capsys)
    assert code == 0, err
    out_dir = str(tmp_path / "results")
    code, out, err = cli(["run", spec, "-m", MODEL, *SIM, "--out", out_dir, "--run-id", "p1", "-q"], capsys)
    assert code == 0 and "run p1: completed" in out, err
    code, out, err = cli(["run", "--resume", "p1", "--out", out_dir, "-q"], capsys)
    assert code == 0, err  # the manifest names `my_tasks.py:task`, so a resume finds it again


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nothing", "defines no 'nothing' (it has: close_enough, custom, task"),
        ("Score", "not an evalkit Task"),
    ],
)
def test_a_wrong_python_task_name_is_one_clear_error(tmp_path: Path, capsys, name: str, message: str) -> None:
    code, _, err = cli(["validate", f"{_py_file(tmp_path)}:{name}"], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_python_task_file_that_fails_to_import_names_its_line(tmp_path: Path, capsys) -> None:
    path = _py_file(tmp_path, "x = 1\nraise RuntimeError('broken on purpose')\n")
    code, _, err = cli(["validate", f"{path}:task"], capsys)
    assert code == 2 and str(path) in err and "line 2" in err and "broken on purpose" in err


# --- 8. fingerprints: data changes and Python scorers across processes ----------------------------


def _fingerprint_in_new_process(spec: str) -> str:
    code = f"from evalkit.task.spec import resolve_task; print(resolve_task({spec!r}).fingerprint())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_python_scorer_has_the_same_fingerprint_in_every_process(tmp_path: Path) -> None:
    spec = f"{_py_file(tmp_path)}:custom"
    first, second = _fingerprint_in_new_process(spec), _fingerprint_in_new_process(spec)
    assert first == second == resolve_task(spec).fingerprint()
    _py_file(
        tmp_path, PY_TASK.replace("words[-1] == sample.target[0]", "words[-1].strip('.') == sample.target[0]")
    )
    assert _fingerprint_in_new_process(spec) != first  # the scorer's code changed


def _csv_task(tmp_path: Path) -> Path:
    rows = [
        {"id": f"q{i}", "вопрос": f"Сколько будет {i} + {i}?", "ответ": str(2 * i), "язык": "ru"}
        for i in range(4)
    ]
    write_csv(tmp_path / "sums.csv", rows, sep=";", encoding="cp1251")
    return write_task(
        tmp_path,
        {
            "name": "sums_csv",
            "family": "qa",
            "source": {"path": "sums.csv", "options": {"delimiter": ";", "encoding": "cp1251"}},
            "fields": {"id": "id", "target": "ответ", "language": "язык"},
            "prompt": {"user": '{вопрос} Ответь в формате "Ответ: <число>".'},
            "scorer": "numeric",
            "generation": {"max_tokens": 64},
        },
    )


def test_resume_after_the_data_file_changed_is_refused_unless_forced(tmp_path: Path, capsys) -> None:
    path = _csv_task(tmp_path)
    before = load_task(path).fingerprint()
    out_dir = str(tmp_path / "results")
    code, out, err = cli(
        ["run", str(path), "-m", MODEL, *SIM, "--out", out_dir, "--run-id", "r1", "-q"], capsys
    )
    assert code == 0, err
    data = tmp_path / "sums.csv"
    data.write_bytes(data.read_bytes().replace(b";6;", b";7;"))  # one target edited in place
    assert load_task(path).fingerprint() != before
    code, _, err = cli(["run", "--resume", "r1", "--out", out_dir, "-q"], capsys)
    assert code == 2 and "sums_csv" in err and "changed" in err and "--force" in err
    code, out, err = cli(["run", "--resume", "r1", "--out", out_dir, "--force", "-q"], capsys)
    assert code == 0, err


# --- 6. code samples need a test --------------------------------------------------------------------

CODE_TASK = """
from evalkit.task.spec import Sample, Task

task = Task(
    name="py_code",
    family="code",
    samples=[
        Sample(id="add", input="Write add(a, b).", fields={"tests": "assert add(1, 2) == 3"}),
        Sample(id="neg", input="Write neg(a).", fields={"test": "assert neg(1) == -1", "solution": "def neg(a):\\n    return -a\\n"}),
    ],
    scorer={"name": "code", "params": {"timeout_s": 5}},
    fields={"target": None},
)
"""


def test_a_code_sample_without_a_test_fails_validate_and_run_before_any_request(
    tmp_path: Path, capsys
) -> None:
    spec = f"{_py_file(tmp_path, CODE_TASK)}:task"
    code, out, _ = cli(["validate", spec], capsys)
    assert code == 2 and "sample 'add': no test in field 'test'" in out and "tests" in out
    out_dir = tmp_path / "results"
    code, _, err = cli(
        ["run", spec, "-m", MODEL, *SIM, "--out", str(out_dir), "--run-id", "c1", "-q"], capsys
    )
    assert code == 2 and "sample 'add'" in err and "nothing was sent" in err
    assert not list(out_dir.glob("c1/*.jsonl")) or all(
        p.stat().st_size == 0 for p in out_dir.glob("c1/*.jsonl")
    )


def test_an_unreadable_target_fails_validate_naming_the_sample(tmp_path: Path, capsys) -> None:
    write_csv(
        tmp_path / "qa.csv",
        [{"id": "a", "q": "2+2?", "answer": "4"}, {"id": "b", "q": "3+3?", "answer": "шесть"}],
    )
    path = write_task(
        tmp_path,
        {
            "name": "words",
            "source": {"path": "qa.csv"},
            "fields": {"id": "id", "target": "answer"},
            "prompt": {"user": "{q}"},
            "scorer": "numeric",
        },
    )
    code, out, _ = cli(["validate", str(path)], capsys)
    assert (
        code == 2 and "sample 'b': gold answer 'Answer: шесть' scores 0" in out and "1/2 gold answers" in out
    )
    assert "'шесть' → UNREADABLE" in out


# --- the self-check on every shipped task and every task the tests define -------------------------


def _shipped() -> list[Path]:
    return sorted(tasks_dir().glob("*.yaml"))


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.stem)
def test_every_gold_answer_of_every_shipped_task_scores_1(path: Path) -> None:
    task = load_task(path)
    try:
        task.all_samples()
    except TaskError as exc:
        if "not found" in str(exc) or "hub" in str(exc):
            pytest.skip(f"data absent: {exc}")  # real files live in ../shared; hub-only sets offline
        raise
    report = check_task(task)
    assert report.checked == report.samples > 0
    assert report.problems == []


def test_every_user_style_task_of_the_tests_passes_its_self_check(tmp_path: Path) -> None:
    from tests import test_user_data_sources as sources

    tasks = [load_task(_csv_task(tmp_path))]
    tasks += [resolve_task(f"{_py_file(tmp_path)}:{name}") for name in ("task", "custom")]
    sources.write_parquet(tmp_path / "data.parquet", sources.CAPITALS)
    tasks.append(load_task(write_task(tmp_path, sources.CHOICE_SPEC)))
    for task in tasks:
        report = check_task(task)
        assert report.problems == [] and report.checked == report.samples > 0, task.name


def test_a_hub_style_multiple_choice_file_scores_the_models_answers_end_to_end(
    tmp_path: Path, capsys
) -> None:
    from tests.test_user_data_sources import CAPITALS, CHOICE_SPEC
    from tests.userdata import write_parquet

    write_parquet(tmp_path / "data.parquet", CAPITALS)
    path = write_task(
        tmp_path,
        {
            **CHOICE_SPEC,
            "family": "qa",
            "generation": {"max_tokens": 64},
            "prompt": {"user": '{question}\n{choices}\nОтветь буквой: "Ответ: <буква>".'},
        },
    )
    out = tmp_path / "results"
    code, stdout, err = cli(
        ["run", str(path), "-m", "sim/large-accurate", *SIM, "--out", str(out), "--run-id", "mc", "-q"],
        capsys,
    )
    assert code == 0, err
    import evalkit

    frame = evalkit.load_results("mc", out=str(out))
    assert not frame["explanation"].str.contains("not an option").any()
    assert (frame["score"] == 1.0).sum() >= 3  # the simulator's accurate model answers the right letters


def test_options_for_a_hub_dataset_are_refused(tmp_path: Path) -> None:
    spec = {
        "name": "h",
        "source": {"hub": "org/data", "options": {"delimiter": ";"}},
        "prompt": {"user": "{q}"},
    }
    with pytest.raises(TaskError, match="delimiter apply to a local file"):
        load_task(write_task(tmp_path, spec)).load_samples()
