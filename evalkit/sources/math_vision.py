"""MATH-Vision (MATH-V, Wang et al., 2024): competition maths questions about one image each.

Local layout (`mathllm/MATH-V` on GitHub): `data/testmini.jsonl` with keys id, question, options (5
strings or empty), answer (a letter when there are options, else a number or short text), solution,
level (1-5), subject, image (a path like `images/4.jpg`, relative to the dataset folder). The hub copy
(`MathLLMs/MathVision`, split testmini) has the same columns plus `decoded_image` (the image itself).

Both give rows with the same columns: `image` (an absolute path, or the hub's image), `answer_type`
("choice", "number" or "text", for `evalkit.scorers.by_type`), `options_block` (the lettered options
with a heading, or "") and `instruction` (how to write the answer).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.scorers.relaxed import as_number
from evalkit.sources.jsonl import iter_jsonl

DEFAULT_FILE = Path("data") / "testmini.jsonl"
INSTRUCTIONS = {
    "choice": "Answer with the letter of the correct option.",
    "number": "Answer with a number.",
    "text": "Answer with the exact value or expression.",
}


def read(path: Path, image_root: str | None = None, **unknown: Any) -> Iterator[dict[str, Any]]:
    """Rows of a MATH-Vision jsonl file (or of the dataset folder that holds `data/testmini.jsonl`).

    image_root: the folder the `image` paths are relative to (default: the folder holding `data/`).
    """
    if unknown:
        raise TaskError(
            f"unknown option(s) {', '.join(sorted(unknown))} for format 'math_vision' (allowed: image_root)",
            where=str(path),
        )
    path = Path(path)
    file = path / DEFAULT_FILE if path.is_dir() else path
    root = Path(image_root) if image_root else (path if path.is_dir() else _guess_root(file))
    for row, where in iter_jsonl(file):
        yield normalize(row, image=_local_image(row, root, where=where), where=where)


def from_hub(
    rows: Iterable[dict[str, Any]], language: str | None = None, **_: Any
) -> Iterator[dict[str, Any]]:
    """Hub rows (`MathLLMs/MathVision`) with the columns of local ones; the image is `decoded_image`."""
    for index, row in enumerate(rows):
        image = row.get("decoded_image") or row.get("image")
        yield normalize(dict(row), image=image, where=f"MathLLMs/MathVision row {index} (id {row.get('id')})")


def normalize(row: dict[str, Any], *, image: Any, where: str) -> dict[str, Any]:
    """Check a row and add `image`, `answer_type`, `options_block` and `instruction`."""
    for key in ("id", "question", "answer"):
        if row.get(key) in (None, ""):
            raise TaskError(f"missing {key!r}", where=where)
    options = [str(option) for option in row.get("options") or []]
    answer = str(row["answer"]).strip()
    answer_type = _answer_type(answer, options, where=where)
    out = {key: value for key, value in row.items() if key != "decoded_image"}
    out.update(
        id=str(row["id"]),
        answer=answer,
        options=options,
        image=image,
        answer_type=answer_type,
        options_block=_options_block(options),
        instruction=INSTRUCTIONS[answer_type],
    )
    return out


def _answer_type(answer: str, options: list[str], *, where: str) -> str:
    if options:
        letters = string.ascii_uppercase[: len(options)]
        if len(answer) != 1 or answer not in letters:
            raise TaskError(f"answer {answer!r} is not one of the option letters {letters}", where=where)
        return "choice"
    return "number" if as_number(answer) is not None else "text"


def _options_block(options: list[str]) -> str:
    if not options:
        return ""
    lines = [f"{string.ascii_uppercase[i]}. {option}" for i, option in enumerate(options)]
    return "Options:\n" + "\n".join(lines) + "\n"


def _guess_root(file: Path) -> Path:
    """`.../math_vision/data/testmini.jsonl` -> `.../math_vision` (where `images/` lives)."""
    return file.parent.parent if file.parent.name == "data" else file.parent


def _local_image(row: dict[str, Any], root: Path, *, where: str) -> str:
    relative = row.get("image")
    if not relative:
        raise TaskError("missing 'image'", where=where)
    image = (root / str(relative)).resolve()
    if not image.is_file():
        raise TaskError(f"image file not found: {image} (set source.options.image_root)", where=where)
    return str(image)
