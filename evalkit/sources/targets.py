"""How a data cell becomes the accepted answers of a sample (and a choice label becomes a letter).

- A list cell (Parquet, JSONL, a `save_to_disk` folder) is a list of alternatives.
- A text cell holding a JSON list (`["Москва", "Moscow"]`, the usual way to write a list into a CSV)
  is decoded into alternatives unless `fields.target_json_lists: false`.
- `fields.target_separator: "|"` splits a text cell (`Москва|Moscow`).
- A null, NaN or empty cell is no answer: an error naming the row, never the text "None".
- With `choices`, a label may be an integer index (0-based, or 1-based with `fields.index_base: 1`),
  a letter, or the text of an option; each becomes the option's letter. A label that two readings map
  to different options is refused (set `fields.choice_target` to say which reading is meant).
"""

from __future__ import annotations

import json
import math
import string
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

ChoiceReading = Literal["auto", "index", "letter", "text"]
_LETTERS = string.ascii_uppercase


class TargetProblem(ValueError):
    """A target cell that cannot be read; the caller adds the row."""


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def cell_text(value: Any) -> str:
    """A scalar as an answer text: integral floats lose their `.0` (pandas reads 12 as 12.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def alternatives(value: Any, *, separator: str | None = None, json_lists: bool = True) -> list[Any]:
    """The accepted answers in one cell, as raw scalars (ints stay ints for choice indices). An explicit
    empty list means "no answer" and is kept empty; a null cell is an error."""
    if is_missing(value):
        raise TargetProblem("the target is empty (null)")
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str) and json_lists and looks_like_list(value):
        items = json.loads(value)
    elif isinstance(value, str) and separator:
        items = value.split(separator)
    else:
        items = [value]
    kept = [item.strip() if isinstance(item, str) else item for item in items if not is_missing(item)]
    if isinstance(value, (list, tuple)) and not value:
        return []  # an explicit empty list: "no answer" (MKQA's unanswerable questions)
    if not kept:
        raise TargetProblem(f"the target {value!r} holds no answer")
    if any(isinstance(item, (dict, list, tuple)) for item in kept):
        raise TargetProblem(f"the target {value!r} nests lists or objects; give texts or numbers")
    return kept


def looks_like_list(text: str) -> bool:
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return False
    try:
        decoded = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(decoded, list) and all(isinstance(v, (str, int, float)) for v in decoded)


def choice_letter(
    value: Any, choices: Sequence[str], *, base: int = 0, reading: ChoiceReading = "auto"
) -> str:
    """The letter of the option a label names; raises TargetProblem when none or several."""
    readings = {
        name: letter
        for name, letter in (
            ("index", _by_index(value, choices, base)),
            ("letter", _by_letter(value, choices)),
            ("text", _by_text(value, choices)),
        )
        if letter is not None and reading in ("auto", name)
    }
    letters = set(readings.values())
    if len(letters) == 1:
        return letters.pop()
    shown = f"{value!r}"
    if not letters:
        what = {"auto": "an option index, letter or text", "index": f"an index ({base}-based)"}
        raise TargetProblem(
            f"label {shown} is not {what.get(reading, f'an option {reading}')} of the {len(choices)} options"
        )
    described = ", ".join(f"as {name}: option {letter}" for name, letter in sorted(readings.items()))
    raise TargetProblem(
        f"label {shown} is ambiguous ({described}); set fields.choice_target to index, letter or text"
    )


def _by_index(value: Any, choices: Sequence[str], base: int) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.strip().isascii():
        value = int(value.strip())
    if not isinstance(value, int):
        return None
    position = value - base
    return _LETTERS[position] if 0 <= position < min(len(choices), 26) else None


def _by_letter(value: Any, choices: Sequence[str]) -> str | None:
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().strip("()[]. *").upper()
    if len(text) == 1 and text in _LETTERS and _LETTERS.index(text) < len(choices):
        return text
    return None


def _by_text(value: Any, choices: Sequence[str]) -> str | None:
    wanted = _squash(cell_text(value))
    hits = [i for i, choice in enumerate(choices[:26]) if _squash(str(choice)) == wanted]
    return _LETTERS[hits[0]] if len(hits) == 1 else None


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
