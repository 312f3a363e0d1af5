"""MBPP (Mostly Basic Python Problems): google-research's `mbpp.jsonl` and the
`google-research-datasets/mbpp` hub rows (config `full`).

Options: `split` (`test` = task ids 11-510, the default; `prompt` = 1-10; `validation` = 511-600;
`train` = 601-974; `all`) and `challenge_tests` (also run `challenge_test_list`; default false).

Rows are normalised to the code scorer's fields (docs/sandbox.md): `id`, `entry_point` (the
reference's function that the tests call), `test` (`test_setup_code` then the asserts),
`tests_shown` (the asserts, for the prompt), `solution` (the reference code), `prompt` (empty: the
model writes a whole program), `language` (`en`) and `cluster`. Line endings are normalised to LF.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.sources.jsonl import iter_jsonl

SPLITS: dict[str, range] = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
    "all": range(1, 10**9),
}


def read(path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Rows of an MBPP JSONL file in the split `options["split"]`; a bad line names the file and line."""
    unknown = set(options) - {"split", "challenge_tests"}
    if unknown:
        raise TaskError(
            f"unknown MBPP option(s) {', '.join(sorted(unknown))}; use split, challenge_tests",
            where=str(path),
        )
    ids = _split(str(options.get("split", "test")), str(path))
    challenge_tests = bool(options.get("challenge_tests", False))
    for row, where in iter_jsonl(path):
        if row.get("task_id") in ids:
            yield normalise(row, challenge_tests=challenge_tests, where=where)


def from_hub(
    rows: Iterable[dict[str, Any]],
    language: str | None = None,
    split: str = "test",
    challenge_tests: bool = False,
) -> Iterator[dict[str, Any]]:
    """Hub rows (config `full`, already split by the hub) with the local columns."""
    for index, row in enumerate(rows):
        yield normalise(dict(row), challenge_tests=challenge_tests, where=f"hub row {index}")


def normalise(row: dict[str, Any], *, challenge_tests: bool = False, where: str) -> dict[str, Any]:
    """Add the code scorer's fields to one raw MBPP row."""
    for key in ("task_id", "text", "code", "test_list"):
        if key not in row:
            raise TaskError(f"missing field {key!r}", where=where)
    code = _lf(row["code"])
    tests = [_lf(t) for t in row["test_list"]]
    challenge = [_lf(t) for t in row.get("challenge_test_list") or []] if challenge_tests else []
    setup = _lf(row.get("test_setup_code") or "")
    return {
        **row,
        "id": str(row["task_id"]),
        "code": code,
        "entry_point": entry_point(code, tests, where=where),
        "test": "\n".join(filter(None, [setup, *tests, *challenge])) + "\n",
        "tests_shown": "\n".join(tests),
        "solution": code.rstrip() + "\n",
        "prompt": "",
        "language": "en",
        "cluster": f"mbpp/{row['task_id']}",
    }


def entry_point(code: str, tests: list[str], *, where: str = "") -> str:
    """The function the tests call: the first one they name that the reference defines, else the
    first name called in the first test."""
    called = [m.group(1) for t in tests for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", t)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # some references have invalid escapes ("\w" in a plain string)
            tree = ast.parse(code)
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    except SyntaxError:
        defined = set()
    for name in called:
        if name in defined:
            return name
    skip = {"set", "len", "sorted", "list", "tuple", "abs", "round", "str", "int", "float", "isclose", "math"}
    for name in called:
        if name not in skip:
            return name
    raise TaskError("cannot find the function under test in test_list", where=where)


def _split(split: str, where: str) -> range:
    if split not in SPLITS:
        raise TaskError(f"unknown MBPP split {split!r}; use one of {', '.join(SPLITS)}", where=where)
    return SPLITS[split]


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
