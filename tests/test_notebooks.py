"""The notebooks: committed clean, and executed top to bottom against the simulator in a temp copy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 120
MAX_BYTES = 20_000
# the simulator answers 20x faster than its profiles say: every cell still runs and every latency differs
# by model, but the notebooks do not spend most of their time waiting
PARAMETERS = {"SIM_LATENCY": 0.05}


def test_the_four_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_quality_per_ruble.ipynb",
        "03_sample_explorer.ipynb",
        "04_judge_audit.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs_and_is_small(path: Path) -> None:
    assert path.stat().st_size < MAX_BYTES
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
    assert "parameters" in book.cells[1].metadata.get("tags", []), "the second cell holds the parameters"
    for name in PARAMETERS:  # the parameters the tests set are the notebook's own
        assert f"\n{name} = " in book.cells[1].source, f"{path.name}: no parameter {name}"


def _texts(book) -> list[str]:
    found = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            found.append(output.get("text", ""))
            for kind in ("text/plain", "text/html"):
                found.append(str(output.get("data", {}).get(kind, "")))
    return found


def _kinds(book) -> set[str]:
    return {kind for cell in book.cells for out in cell.get("outputs", []) for kind in out.get("data", {})}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp working directory; no key, so the notebooks take the simulator; results and caches in tmp."""
    for name in ("ROUTERAI_API_KEY", "OPENAI_API_KEY", "EVALKIT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVALKIT_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return tmp_path


def _execute(path: Path, workdir: Path):
    from nbclient import NotebookClient

    copy = workdir / path.name
    shutil.copy(path, copy)
    book = nbformat.read(copy, as_version=4)
    assert "parameters" in book.cells[1].metadata.get("tags", [])
    values = "\n".join(f"{name} = {value!r}" for name, value in PARAMETERS.items())
    # as papermill does: a cell after the parameters cell overrides them
    injected = nbformat.v4.new_code_cell(values, metadata={"tags": ["injected-parameters"]})
    book.cells.insert(2, injected)
    client = NotebookClient(book, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})  # fmt: skip
    client.execute()
    return book


@pytest.mark.slow
def test_quickstart_runs(sandbox: Path) -> None:
    book = _execute(REPO / "notebooks" / "01_quickstart.ipynb", sandbox)
    text = "\n".join(_texts(book))
    assert "running on the simulator" in text
    assert "meta-llama/llama-4-scout" in text and "rub_per_correct" in text
    assert "application/vnd.jupyter.widget-view+json" in _kinds(book)  # the run monitor
    assert any((sandbox / "results").iterdir())


@pytest.mark.slow
def test_quality_per_ruble_runs_and_concludes(sandbox: Path) -> None:
    book = _execute(REPO / "notebooks" / "02_quality_per_ruble.ipynb", sandbox)
    verdict = "\n".join(_texts(nbformat.v4.new_notebook(cells=book.cells[-3:-2])))
    assert "the best model per ruble for this task is " in verdict
    assert "significantly better than " in verdict and " pairs):" in verdict
    last = "\n".join(_texts(nbformat.v4.new_notebook(cells=book.cells[-1:])))
    assert "₽ from price cards × the pilot's tokens" in last
    assert re.search(
        r"To tell \S+ from \S+ at a \d+\.\d pp difference you need \d+ samples ≈ [\d .]+ ₽", last
    ), last
    assert "image/png" in _kinds(book)
    pngs = sum("image/png" in out.get("data", {}) for cell in book.cells for out in cell.get("outputs", []))
    assert pngs == 3  # cost, latency, languages


@pytest.mark.slow
def test_sample_explorer_runs(sandbox: Path) -> None:
    book = _execute(REPO / "notebooks" / "03_sample_explorer.ipynb", sandbox)
    text = "\n".join(_texts(book))
    assert "samples where" in text
    assert "application/vnd.jupyter.widget-view+json" in _kinds(book)


@pytest.mark.slow
def test_judge_audit_runs_and_finds_the_planted_biases(sandbox: Path) -> None:
    book = _execute(REPO / "notebooks" / "04_judge_audit.ipynb", sandbox)
    text = "\n".join(_texts(book))
    assert "running on the simulator" in text and "rub_per_1000_with_judge" in text
    assert "sim/judge with itself: fleiss kappa" in text and "between judges: cohen kappa" in text
    assert re.search(r"sim/judge: agrees with people on \d+% \[\d+%, \d+%\]; cohen kappa", text)
    # the simulator's biased judge leans on position and on its own answers; the fair one does not
    assert re.search(r"position bias: BIAS FOUND.*\[sim/judge-biased\]", text)
    assert re.search(r"position bias: no bias found.*\[sim/judge\]", text)
    assert re.search(r"self-preference: BIAS FOUND.*\[sim/judge-biased vs sim/judge\]", text)
    assert re.search(r"pairwise run: models 0\.0000 ₽ \(0 answers paid\), judges \d", text)
