"""bench/ray_executor.py builds each child's code from one cluster template: it composes and runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import evalkit

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load_bench() -> ModuleType:
    """bench/ray_executor.py by its path (the bench puts its folder first on sys.path; undone here, so
    its module names cannot shadow others in this test process)."""
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_ray_executor", BENCH / "ray_executor.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
    return module


ray_bench = _load_bench()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_every_child_starts_its_cluster_once_before_its_timer(executor: str) -> None:
    fields = {
        "bench": str(BENCH),
        "n": 8,
        "url": "http://127.0.0.1:1/v1",
        "out": "/nowhere",
        "concurrency": 4,
    }
    for body, extra in ((ray_bench.CALLS, fields), (ray_bench.SCORE, {"run": "r", "out": "/nowhere"})):
        code = ray_bench.on_cluster(body, executor, 3, **extra)
        compile(code, "<child>", "exec")
        assert code.count("Cluster(initialize_head=True") == 1 and code.count("cluster.shutdown()") == 1
        assert code.index("cluster.wait_for_nodes()") < code.index("started = time.perf_counter()")
        assert f'if {executor!r} != "local":' in code and "range(3 - 1)" in code


def test_the_local_scoring_child_really_scores(tmp_path: Path) -> None:
    evalkit.run(["builtin_qa"], ["sim/small-fast"], sim=True, out=str(tmp_path), run_id="gen", limit=3,
                phase="generate", progress=False, cache=False, seed=0)  # fmt: skip
    code = ray_bench.on_cluster(ray_bench.SCORE, "local", 1, run="gen", out=str(tmp_path))
    result = ray_bench.child(code)
    assert result["status"] == "completed" and result["scored"] == 3
