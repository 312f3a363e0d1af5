"""MGSM (Multilingual Grade School Math): the url-nlp TSV files and the `juletxara/mgsm` hub rows.

A local file `mgsm_<lang>.tsv` has no header; each line is `question<TAB>answer` with an integer
answer. Four answers keep an English thousands comma in every language (`2,125`), so the target is
normalised to plain digits (`2125`) and the text as written is kept in `answer_raw`.

Rows carry `index` (0-based line number), `question`, `answer_number`, `target` and `cluster`
(`mgsm/<index>`: the same question in every language is one cluster).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError

_INTEGER = re.compile(r"-?\d{1,3}(,\d{3})+|-?\d+")


def read(path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Rows of one MGSM TSV file; a bad byte, column count or answer names the file and line."""
    _no_options(options, path)
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the (empty) text after the final newline
    for number, raw in enumerate(lines, start=1):
        yield _row(_decode(raw, path, number), path, number)


def from_hub(
    rows: Iterable[dict[str, Any]], language: str | None = None, **options: Any
) -> Iterator[dict[str, Any]]:
    """`juletxara/mgsm` rows (question, answer, answer_number, equation_solution) with the local columns."""
    for index, row in enumerate(rows):
        value = row["answer_number"]
        answer = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        yield {**row, **_columns(index, row["question"], answer)}


def _decode(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise TaskError(
            f"line {number}: not valid UTF-8 (byte {exc.start} of the line)", where=str(path)
        ) from None


def _row(line: str, path: Path, number: int) -> dict[str, Any]:
    parts = line.split("\t")
    if len(parts) != 2:
        raise TaskError(
            f"line {number}: expected 2 tab-separated columns (question, answer), found {len(parts)}",
            where=str(path),
        )
    question, answer = (part.strip() for part in parts)
    if not question or not _INTEGER.fullmatch(answer):
        problem = "empty question" if not question else f"answer {answer!r} is not an integer"
        raise TaskError(f"line {number}: {problem}", where=str(path))
    return _columns(number - 1, question, answer)


def _columns(index: int, question: str, answer: str) -> dict[str, Any]:
    number = answer.replace(",", "")
    return {
        "index": index,
        "question": question,
        "answer_number": number,
        "answer_raw": answer,
        "target": [number],
        "cluster": f"mgsm/{index}",
    }


def _no_options(options: dict[str, Any], path: Path) -> None:
    if options:
        raise TaskError(f"the mgsm_tsv reader takes no options (got {', '.join(options)})", where=str(path))
