"""HumanEval and HumanEval-XL: OpenAI's `HumanEval.jsonl.gz`, FloatAI's `python/{Language}.jsonl`
and the `openai/openai_humaneval` hub rows.

Rows are normalised to the code fields the `code` scorer reads (docs/sandbox.md):

- `prompt`: the signature and docstring the model continues;
- `test`: the dataset's `check` function followed by `check(<entry_point>)`;
- `entry_point`, `canonical_solution` (the body) and `solution` (prompt + body: a full program);
- `id` (`HumanEval/0`, or `French/python/0` for HumanEval-XL), `number`, `cluster`
  (`humaneval/<n>`; `humaneval_xl/<n>`, shared by the translations of one HumanEval-XL problem);
- `language`: ISO 639-1 of the prompt's natural language (`en` for HumanEval; HumanEval-XL maps its
  `natural_language` name, e.g. French -> fr); the XL programming language is kept in
  `programming_language`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.sources.jsonl import iter_jsonl
from evalkit.task.languages import NAMES

_ISO_BY_NAME = {name.lower(): code for code, name in NAMES.items()}
_REQUIRED = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def read(path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Rows of a HumanEval(-XL) JSONL file (gzip or plain); a bad line names the file and line."""
    if options:
        raise TaskError(f"the humaneval reader takes no options (got {', '.join(options)})", where=str(path))
    for row, where in iter_jsonl(path):
        yield normalise(row, where=where)


def from_hub(
    rows: Iterable[dict[str, Any]], language: str | None = None, **options: Any
) -> Iterator[dict[str, Any]]:
    """`openai/openai_humaneval` rows with the local columns."""
    for index, row in enumerate(rows):
        yield normalise(dict(row), where=f"hub row {index}")


def normalise(row: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Add the code scorer's fields to one raw HumanEval(-XL) row."""
    missing = [key for key in _REQUIRED if not isinstance(row.get(key), str)]
    if missing:
        raise TaskError(f"missing or non-text field(s) {', '.join(missing)}", where=where)
    language = _iso(row.get("natural_language"), where)
    number = row["task_id"].rsplit("/", 1)[-1]
    # the source layer prefixes ids with the file's language token, which is the natural_language name
    sample_id = (
        row["task_id"] if "natural_language" not in row else f"{row['natural_language']}/{row['task_id']}"
    )
    extra = {"programming_language": row["language"]} if "natural_language" in row else {}
    return {
        **row,
        **extra,
        "id": sample_id,
        "number": number,
        "cluster": f"humaneval_xl/{number}" if "natural_language" in row else f"humaneval/{number}",
        "language": language,
        "test": row["test"].rstrip() + f"\n\n\ncheck({row['entry_point']})\n",
        "solution": row["prompt"] + row["canonical_solution"],
    }


def _iso(natural_language: Any, where: str) -> str:
    if natural_language is None:
        return "en"
    code = _ISO_BY_NAME.get(str(natural_language).strip().lower())
    if code is None:
        raise TaskError(f"unknown natural_language {natural_language!r}", where=where)
    return code
