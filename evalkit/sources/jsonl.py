"""JSON Lines, plain or gzip: blank lines allowed, errors by line, and a maximum line size.

A line is read with a size cap so that a hostile file (one 1 GB line) is refused by name instead of
exhausting memory or crashing the JSON parser.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from evalkit.common.errors import TaskError

MAX_LINE_BYTES = 64 * 1024 * 1024


def iter_lines(path: Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of each line; a line longer than `max_line_bytes` is a TaskError."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        yield from _capped_lines(handle, path, max_line_bytes)


def _capped_lines(handle: IO[bytes], path: Path, limit: int) -> Iterator[tuple[int, bytes]]:
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\n")):
            raise TaskError(
                f"line is longer than the maximum of {limit} bytes (source.options.max_line_bytes)",
                where=f"{path}: line {number}",
            )
        yield number, line


def iter_jsonl(
    path: Path, *, max_line_bytes: int = MAX_LINE_BYTES, encoding: str = "utf-8"
) -> Iterator[tuple[dict[str, Any], str]]:
    """Each object of a JSONL file with where it stands (`<file>: line N`); a line that is not a JSON
    object is a TaskError naming the file and line."""
    for number, raw in iter_lines(path, max_line_bytes=max_line_bytes):
        where = f"{path}: line {number}"
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise TaskError(
                f"not valid {encoding.upper()} (byte {exc.start} of the line)", where=where
            ) from None
        if number == 1:
            line = line.removeprefix("\ufeff")  # Notepad's "UTF-8 with BOM"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"not valid JSON: {exc.msg} (column {exc.colno})", where=where) from None
        except RecursionError:
            raise TaskError("not valid JSON: nested too deeply", where=where) from None
        if not isinstance(row, dict):
            raise TaskError("expected a JSON object", where=where)
        yield row, where
