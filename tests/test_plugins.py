"""Plugins with stable names: user scorers and readers register by name, composites forward the
lifecycle, and a Python scorer is the same scorer in every process (so a run with one resumes)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import evalkit
from evalkit.common.errors import TaskError
from evalkit.common.identity import identity
from evalkit.scorers import get_scorer, scorer_names
from evalkit.sim.server import _task_spec
from evalkit.task.spec import Sample, Task

USER_PLUGINS = '''
import evalkit
from evalkit import Score, Scorer
from evalkit.task.spec import Sample, Task


@evalkit.scorer("last_word")
class LastWord(Scorer):
    """The last word of the output equals a target."""

    def __call__(self, output, sample):
        words = output.split()
        last = words[-1].strip(".") if words else None
        return Score(float(last in sample.target), last)


@evalkit.reader("pipe_rows")
def read(path, *, encoding="utf-8"):
    for number, line in enumerate(open(path, encoding=encoding).read().splitlines(), 1):
        question, answer = line.split("|")
        yield {"id": f"p{number}", "question": question, "target": [answer]}


task = Task(
    name="plugin_task",
    source={"path": "rows.txt", "format": "pipe_rows"},
    fields={"id": "id", "target": "target"},
    prompt={"user": "{question}"},
    scorer="last_word",
)
'''


def _plugin_file(tmp_path: Path, rows: int = 6) -> Path:
    (tmp_path / "rows.txt").write_text(
        "\n".join(f"Say {n}|{n}" for n in range(1, rows + 1)) + "\n", encoding="utf-8"
    )
    path = tmp_path / "user_plugins.py"
    path.write_text(textwrap.dedent(USER_PLUGINS), encoding="utf-8")
    return path


def test_a_user_scorer_registers_by_name_and_a_name_cannot_be_taken_twice() -> None:
    @evalkit.scorer("test_plugins_shout")
    class Shout(evalkit.Scorer):
        def __call__(self, output, sample):
            return evalkit.Score(float(output.isupper()))

    assert "test_plugins_shout" in scorer_names()
    assert get_scorer("test_plugins_shout")("HI", Sample(id="1")).value == 1.0
    with pytest.raises(TaskError, match="taken"):
        evalkit.scorer("test_plugins_shout")(lambda output, sample: evalkit.Score(0.0))
    with pytest.raises(TaskError, match="built-in"):
        evalkit.scorer("numeric")(Shout)
    with pytest.raises(TaskError, match="built in"):
        evalkit.reader("csv")(lambda path: [])


def test_by_type_declares_blocking_and_closes_the_code_scorer_it_wraps() -> None:
    composite = get_scorer("by_type", {"scorers": {"code": "code"}, "default": "exact"})
    code = composite.scorers["code"]
    closed: list[str] = []
    code.close = lambda: closed.append("code")  # instance attribute: observes the forwarded call
    assert composite.blocking is True
    composite.close()
    assert closed == ["code"]
    assert get_scorer("by_type", {"default": "exact"}).blocking is False


def test_the_simulator_names_a_python_scorer_by_its_identity_not_as_exact() -> None:
    def my_scorer(output, sample):
        return evalkit.Score(1.0)

    task = Task(name="t", samples=[Sample(id="1", input="x", target="y")], scorer=my_scorer)
    sent = _task_spec(task)["scorer"]["name"]
    assert sent != "exact" and "my_scorer" in sent and sent == identity(my_scorer)


FUNCTION_SCORER = """

def last_word_fn(output, sample):
    words = output.split()
    last = words[-1].strip(".") if words else None
    return evalkit.Score(float(last in sample.target), last)


task = task.model_copy(update={"scorer": last_word_fn})
"""


@pytest.mark.parametrize("form", ["registered class", "plain function"])
def test_a_run_with_python_plugins_resumes_in_a_new_process(tmp_path: Path, form: str) -> None:
    path = _plugin_file(tmp_path)
    if form == "plain function":  # named by identity (module.qualname@hash), not by a registry
        path.write_text(path.read_text(encoding="utf-8") + FUNCTION_SCORER, encoding="utf-8")
    spec = f"{path}:task"
    out = tmp_path / "results"
    first = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "run", spec, "-m", "meta-llama/llama-4-scout", "--sim",
         "--sim-latency-scale", "0", "--out", str(out), "--run-id", "p1", "--budget-rub", "0.0000001", "-c", "1", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=240, check=False,
    )  # fmt: skip
    manifest = json.loads((out / "p1" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "budget_exhausted", first.stderr[-2000:]
    recorded = manifest["tasks"][0]["scorer"]
    if form == "registered class":
        assert recorded == {"name": "last_word", "params": {}}
    else:
        assert isinstance(recorded, str) and "last_word_fn" in recorded
    resumed = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "run", "--resume", "p1", "--out", str(out),
         "--budget-rub", "100", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=240, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "p1" / "manifest.json").read_text())["config"]["sim_latency_scale"] == 0  # kept
    df = evalkit.load_results(out / "p1")
    assert len(df) == 6 and df.error.isna().all() and df.score.between(0, 1).all()
    assert set(df.extracted.dropna()) <= {str(n) for n in range(1, 7)}  # scored by LastWord, not "exact"


def test_the_manifest_records_the_sandbox_when_the_scorer_runs_code_whatever_the_family() -> None:
    from evalkit.runner.manifest import _runs_code

    def task(scorer) -> Task:
        return Task(name="t", family="qa", samples=[Sample(id="1", input="x", target="y")], scorer=scorer)

    assert _runs_code(task("code")) and not _runs_code(task("exact"))
    assert _runs_code(task({"name": "by_type", "params": {"scorers": {"program": "code"}}}))
    assert _runs_code(task({"name": "by_type", "params": {"default": {"name": "code"}}}))
    assert not _runs_code(task({"name": "by_type", "params": {"scorers": {"n": "numeric"}}}))


BUILT: list[str] = []


@evalkit.scorer("test_plugins_counted")
class Counted(evalkit.Scorer):
    """Counts its builds and closes, and holds nothing."""

    def __init__(self) -> None:
        BUILT.append("built")

    def __call__(self, output: str, sample: Sample) -> evalkit.Score:
        if sample.input == "boom":
            raise ValueError("cannot score this one")
        return evalkit.Score(float(output.strip() in sample.target), output.strip())

    def close(self) -> None:
        BUILT.append("closed")


@pytest.mark.parametrize("valid", [True, False])
def test_a_run_builds_each_scorer_once_and_closes_it_once(tmp_path: Path, valid: bool) -> None:
    BUILT.clear()
    samples = [Sample(id=str(i), input=f"Say {i}" if valid or i else "boom", target=str(i)) for i in range(3)]
    task = Task(name="counted", samples=samples, scorer="test_plugins_counted")
    run = dict(sim=True, sim_latency_scale=0, out=str(tmp_path), progress=False)
    if valid:
        assert evalkit.run([task], ["sim/small-fast"], **run).counts["done"] == 3
    else:  # refused before anything is sent (its gold cannot be scored): still closed
        with pytest.raises(TaskError, match="would be scored wrong"):
            evalkit.run([task], ["sim/small-fast"], **run)
    assert BUILT == ["built", "closed"]
