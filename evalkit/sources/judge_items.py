"""Answers already written, with the verdict a person gave each, as a task whose "model" is a judge:

    source: {path: data/judge_human_labels.jsonl, format: judge_items}

Each JSON line has `question`, `answer` and `label` (pass or fail), and optionally `reference` and
`rubric`. The row gets the judge prompt the `judge` scorer would send for that answer (`judge_system`,
`judge_user`; `reply_format` json or line) and `target` [label], so running a judge model on this task
with the `verdict` scorer measures its agreement with the people who labelled the answers, through the
run's own budget, journal and cache. A line without what it needs is an error naming the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.scorers.judge_prompt import GRADES, grading_messages
from evalkit.sources import reader
from evalkit.sources.jsonl import iter_jsonl


@reader("judge_items")
def read(path: Path, *, reply_format: str = "json", encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    if reply_format not in ("json", "line"):
        raise TaskError(f"reply_format must be json or line, not {reply_format!r}", where=str(path))
    for row, where in iter_jsonl(Path(path), encoding=encoding):
        yield _row(row, where, reply_format)


def _row(row: dict[str, Any], where: str, reply_format: Any) -> dict[str, Any]:
    for name in ("question", "answer", "label"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise TaskError(f"field {name!r} is missing or empty", where=where)
    label = row["label"].strip().casefold()
    if label not in GRADES:
        raise TaskError(f"label {row['label']!r} is not one of {', '.join(GRADES)}", where=where)
    optional = {
        name: row.get(name) if isinstance(row.get(name), str) else None for name in ("reference", "rubric")
    }
    system, user = grading_messages(row["question"], row["answer"], reply_format=reply_format, **optional)
    return {
        **row,
        "label": label,
        "target": [label],
        "judge_system": system["content"],
        "judge_user": user["content"],
    }
