"""JSON Lines, as the benchmark readers meet it: plain or gzip, blank lines allowed, errors by line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.errors import TaskError


def iter_jsonl(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """Each object of a JSONL file with where it stands (`<file>: line N`); a line that is not a JSON
    object is a TaskError naming the file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"not valid JSON: {exc.msg} (column {exc.colno})", where=where) from None
            if not isinstance(row, dict):
                raise TaskError("expected a JSON object", where=where)
            yield row, where
