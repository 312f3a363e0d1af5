"""Packaging: the task definitions in `tasks/` ship inside the wheel as `evalkit/tasks/`."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["evalkit*"]), "evalkit.tasks"],
    package_dir={"evalkit.tasks": "tasks"},
    package_data={"evalkit": ["data/*", "data/**/*"], "evalkit.tasks": ["*.yaml", "data/*"]},
)
