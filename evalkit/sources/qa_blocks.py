"""Plain-text question/answer blocks, the way people jot down a quick test set:

    Q: What is the capital of France?
    A: Paris | Paris, France

    Q: 2 + 2?
    A: 4

    source: {path: data/quiz.txt, format: qa_blocks}

Blocks are separated by blank lines; `|` separates accepted answers. Rows get `id` (q1, q2, ...),
`question` and `target`. A block without both lines is an error naming its line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.sources import reader


@reader("qa_blocks")
def read(path: Path, *, encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    lines = Path(path).read_text(encoding=encoding).splitlines()
    block: dict[str, str] = {}
    start = 0
    number = 0
    for line_no, line in enumerate([*lines, ""], 1):
        text = line.strip()
        if not text:
            if block:
                number += 1
                yield _row(block, number, start, path)
                block = {}
            continue
        start = start if block else line_no
        key, sep, value = text.partition(":")
        if not sep or key.strip().upper() not in ("Q", "A"):
            raise TaskError(f"line {line_no}: expected 'Q: ...' or 'A: ...'", where=str(path))
        block[key.strip().upper()] = value.strip()


def _row(block: dict[str, str], number: int, line_no: int, path: Path) -> dict[str, Any]:
    if not block.get("Q") or not block.get("A"):
        raise TaskError(f"line {line_no}: a block needs both a 'Q:' and an 'A:' line", where=str(path))
    answers = [a.strip() for a in block["A"].split("|") if a.strip()]
    return {"id": f"q{number}", "question": block["Q"], "target": answers}
