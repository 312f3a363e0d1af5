"""An installed wheel finds the bundled tasks: the layout setup.py declares is the one `tasks_dir` reads."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import setuptools

REPO = Path(__file__).resolve().parent.parent


def _declared() -> dict[str, Any]:
    """The arguments setup.py gives setuptools (read by running it with `setup` captured)."""
    captured: dict[str, Any] = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        runpy.run_path(str(REPO / "setup.py"))
    finally:
        setuptools.setup = original
    return captured


def _install_like_a_wheel(site: Path) -> None:
    """Copy what the wheel would hold: every declared package, and its declared package data."""
    declared = _declared()
    for package in declared["packages"]:
        source = REPO / declared["package_dir"].get(package, package.replace(".", "/"))
        target = site / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for file in source.glob("*.py"):
            shutil.copy2(file, target / file.name)
        for pattern in declared["package_data"].get(package, []):
            for file in source.glob(pattern):
                if file.is_file():
                    (target / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target / file.relative_to(source))


def test_an_installed_package_resolves_bundled_tasks_by_name(tmp_path) -> None:
    site = tmp_path / "site-packages"
    _install_like_a_wheel(site)
    assert not (site / "tasks").exists(), "the installed layout must not contain a checkout's tasks/"
    probe = (
        "import json, evalkit.task.spec as t; "
        "task = t.resolve_task('builtin_qa'); "
        "print(json.dumps({'dir': str(t.tasks_dir()), 'samples': len(task.load_samples())}))"
    )
    shown = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    found = json.loads(shown.stdout.strip().splitlines()[-1])
    assert Path(found["dir"]) == site / "evalkit" / "tasks"
    assert found["samples"] > 0


def test_ci_runs_the_readmes_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if "# runs the tests" in line).split("#")[0].strip()
    install, tests = command.split(" && ")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    last = ci.strip().splitlines()[-1]
    assert last.startswith(install.replace("pip install", "pip install -q") + " && "), last
    assert last.endswith(tests.replace("python -m pytest", 'CI="${CI:-true}" python -m pytest')), last


def test_every_task_in_the_checkout_ships_in_the_package() -> None:
    declared = _declared()
    assert declared["package_dir"]["evalkit.tasks"] == "tasks"
    shipped = {
        p for pattern in declared["package_data"]["evalkit.tasks"] for p in (REPO / "tasks").glob(pattern)
    }
    assert set((REPO / "tasks").glob("*.yaml")) <= shipped
    assert set((REPO / "tasks" / "data").iterdir()) <= shipped
