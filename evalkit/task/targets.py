"""How a data cell becomes the accepted answers of a sample (and a choice label becomes a letter).

- A list cell (Parquet, JSONL, a `save_to_disk` folder) is a list of alternatives.
- A text cell holding a JSON list (`["Москва", "Moscow"]`, the usual way to write a list into a CSV),
  or a Python list (`['Москва', 'Moscow']`, what pandas `to_csv` writes), is decoded into alternatives unless `fields.target_json_lists: false`.
- `fields.target_separator: "|"` splits a text cell (`Москва|Moscow`).
- A null, NaN or empty cell is no answer: an error naming the row, never the text "None".
- With `choices`, a label may be an integer index (0-based, or 1-based with `fields.index_base: 1`),
  a letter, or the text of an option; each becomes the option's letter. A label that two readings map
  to different options is refused (set `fields.choice_target` to say which reading is meant).
"""

from __future__ import annotations

import ast
import datetime
import io
import json
import math
import string
import tokenize
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

ChoiceReading = Literal["auto", "index", "letter", "cyrillic", "text"]
_LETTERS = string.ascii_uppercase
# Russian and Ukrainian tests letter their options А Б В Г Д Е Ж З И К. В and Е look like the Latin
# letters B and E (a keyboard-layout slip) but are options C and F here, so `auto` refuses them.
_CYRILLIC = "АБВГДЕЖЗИК"
_LOOKALIKES = {"А": "A", "В": "B", "Е": "E", "К": "K"}


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
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")  # 1e-05 (how JSON writes 0.00001) stays readable
    if isinstance(value, datetime.datetime) and value.time() == datetime.time() and value.tzinfo is None:
        return value.date().isoformat()  # a Parquet date column read as midnight: "2024-01-05"
    return str(value).strip()


def alternatives(value: Any, *, separator: str | None = None, json_lists: bool = True) -> list[Any]:
    """The accepted answers in one cell, as raw scalars (ints stay ints for choice indices). An explicit
    empty list means "no answer" and is kept empty; a null cell is an error."""
    if is_missing(value):
        raise TargetProblem("the target is empty (null)")
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str) and json_lists and (decoded := decode_list(value)) is not None:
        items = decoded
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
    return decode_list(text) is not None


def decode_list(text: str) -> list[Any] | None:
    """The items of a text cell holding a list of texts or numbers, or None. Read: a JSON list
    (`["a", "b"]`), a Python list (`['a', 'b']`, what pandas `to_csv` writes for a list column) and
    numpy's array repr (`['a' 'b']`)."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    for parse in (json.loads, _python_list):
        try:
            decoded = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(decoded, list) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in decoded
        ):
            return decoded
    return None


def _python_list(text: str) -> Any:
    """A Python list literal. Texts are taken one literal each, so numpy's `['a' 'b']` (no commas) is
    two items, never Python's implicit concatenation `'ab'`."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return ast.literal_eval(text)  # raises the parse error the caller expects
    layout = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}
    strings = [t.string for t in tokens if t.type == tokenize.STRING]
    others = [t.string for t in tokens if t.type not in layout and t.type != tokenize.STRING]
    if strings and set(others) <= {"[", "]", ","} and others.count("[") == 1:
        return ast.literal_eval("[" + ", ".join(strings) + "]")
    return ast.literal_eval(text)


def choice_letter(
    value: Any, choices: Sequence[str], *, base: int = 0, reading: ChoiceReading = "auto"
) -> str:
    """The letter of the option a label names; raises TargetProblem when none or several."""
    readings = {
        name: letter
        for name, letter in (
            ("index", _by_index(value, choices, base)),
            ("letter", _by_letter(value, choices)),
            ("cyrillic", _by_cyrillic(value, choices)),
            ("lookalike", _by_lookalike(value, choices)),
            ("text", _by_text(value, choices)),
        )
        if letter is not None and reading in ("auto", name, "letter" if name == "lookalike" else name)
    }
    letters = set(readings.values())
    if len(letters) == 1:
        return letters.pop()
    shown = f"{value!r}"
    if not letters and reading in ("auto", "text") and _text_hits(value, choices) > 1:
        raise TargetProblem(
            f"label {shown} is the text of {_text_hits(value, choices)} options; name the option by index or letter"
        )
    if not letters:
        what = {
            "auto": "an option index, letter or text",
            "index": f"an index ({base}-based)",
            "cyrillic": "a Cyrillic option letter (А Б В Г Д Е)",
        }
        raise TargetProblem(
            f"label {shown} is not {what.get(reading, f'an option {reading}')} of the {len(choices)} options"
        )
    names = {"cyrillic": "a Cyrillic letter А Б В Г", "lookalike": "a look-alike of a Latin letter"}
    described = ", ".join(
        f"as {names.get(name, name)}: option {letter}" for name, letter in sorted(readings.items())
    )
    raise TargetProblem(
        f"label {shown} is ambiguous ({described}); set fields.choice_target to index, letter, cyrillic or text"
    )


def _by_index(value: Any, choices: Sequence[str], base: int) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isascii():
        text = value.strip()
        text = text[:-2] if text.endswith(".0") else text  # pandas writes an int column with gaps as 2.0
        if text.lstrip("-").isdigit():
            value = int(text)
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


def _by_cyrillic(value: Any, choices: Sequence[str]) -> str | None:
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().strip("()[]. *").upper()
    if len(text) == 1 and text in _CYRILLIC and _CYRILLIC.index(text) < min(len(choices), 26):
        return _LETTERS[_CYRILLIC.index(text)]
    return None


def _by_lookalike(value: Any, choices: Sequence[str]) -> str | None:
    """A Cyrillic letter typed for the Latin one it looks like (В for B)."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().strip("()[]. *").upper()
    return _by_letter(_LOOKALIKES[text], choices) if text in _LOOKALIKES else None


def _text_hits(value: Any, choices: Sequence[str]) -> int:
    wanted = _squash(cell_text(value))
    return sum(_squash(str(choice)) == wanted for choice in choices[:26])


def _by_text(value: Any, choices: Sequence[str]) -> str | None:
    wanted = _squash(cell_text(value))
    hits = [i for i, choice in enumerate(choices[:26]) if _squash(str(choice)) == wanted]
    return _LETTERS[hits[0]] if len(hits) == 1 else None


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
