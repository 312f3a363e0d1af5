"""Helpers for tests that use data files written the way users write them (CSV with `;`, cp1251,
Parquet with list columns, `save_to_disk` folders, Python task files)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from evalkit.cli.commands import main
from evalkit.task.spec import Task, load_task


def write_csv(path: Path, rows: list[dict[str, Any]], *, sep: str = ",", encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=sep)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_disk(path: Path, rows: list[dict[str, Any]]) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def write_task(folder: Path, spec: dict[str, Any], name: str = "task.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def task_at(folder: Path, spec: dict[str, Any]) -> Task:
    return load_task(write_task(folder, spec))


def cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
