"""Numeric answers (MGSM, GSM8K-style): find the final number a model gave and compare it by value.

Where the answer is looked for, in order:
1. the line after the last answer phrase of the sample's language or English ("Answer:", "Ответ:",
   "答案：", "The answer is", "**Respuesta final:**"); within it, the first number after the last
   "=" if there is one, else the first number;
2. the last \\boxed{...};
3. the last number anywhere (unless `strict=True`).

Numbers are read in the sample language's format (see `normalize.interpret`); targets are read in
English format, because MGSM keeps "2,125" in every language.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from evalkit.common.errors import TaskError
from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.normalize import (
    Number,
    Phrases,
    answer_phrases,
    find_numbers,
    format_number,
    last_boxed,
    last_number,
    phrase_table,
    read_target_number,
)

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_EQUALS = re.compile(r"[=≈]")
_LABEL_ENDS = (":", "：", "-", "–", "—")
_LEADING_NUMBER = re.compile(r"^[\s*_$€£¥₽(~≈\\{}a-z]*?[-−]?\d", re.IGNORECASE)


class NumericMatch(Scorer):
    """Score 1 when the extracted number equals a target within `tolerance`.

    tolerance: allowed absolute difference, or a fraction of the target when `relative=True`.
    strict: only accept a number after an answer phrase or in \\boxed{} (no "last number" fallback).
    """

    blocking = False

    def __init__(
        self,
        tolerance: float = 0.0,
        relative: bool = False,
        strict: bool = False,
        answer_phrases: dict[str, list[str]] | None = None,
    ) -> None:
        self.phrases = phrase_table(answer_phrases, scorer="numeric")
        try:
            self.tolerance = Decimal(str(tolerance))
        except (InvalidOperation, ValueError):
            raise TaskError(
                f"tolerance must be a number, got {tolerance!r}", where="scorer numeric"
            ) from None
        if not self.tolerance.is_finite() or self.tolerance < 0:
            raise TaskError(f"tolerance must be >= 0, got {tolerance!r}", where="scorer numeric")
        self.relative = bool(relative)
        self.strict = bool(strict)

    def __repr__(self) -> str:
        phrases = f", answer_phrases={self.phrases}" if self.phrases else ""
        return f"NumericMatch(tolerance={self.tolerance}, relative={self.relative}, strict={self.strict}{phrases})"

    def __call__(self, output: str, sample: Sample) -> Score:
        found = extract_answer_number(output, sample.language, strict=self.strict, phrases=self.phrases)
        if found is None:
            return Score(0.0, None, "no number found")
        number, where = found
        if number is None:
            return Score(0.0, None, where)
        targets = [t for t in map(read_target_number, sample.target) if t is not None]
        extracted = format_number(number.value)
        if not targets:
            return Score(0.0, extracted, f"{where}; no numeric target in {sample.target!r}")
        shown = format_number(targets[0].value)
        if any(self._close(number.value, target.value) for target in targets):
            return Score(1.0, extracted, f"{extracted} {where}; target {shown}")
        for target in targets:
            for reading in target.readings():
                value = next((v for v in number.readings() if self._close(v, reading)), None)
                if value is not None:
                    note = _ambiguity(number, target)
                    return Score(1.0, format_number(value), f"{extracted} {where}; target {shown}; {note}")
        return Score(0.0, extracted, f"{extracted} {where}; target {shown}")

    def _close(self, value: Decimal, target: Decimal) -> bool:
        if value == target:
            return True
        if not self.tolerance:
            return False
        exact = _exact_context(value, target, self.tolerance)
        allowed = exact.multiply(self.tolerance, target.copy_abs()) if self.relative else self.tolerance
        return exact.subtract(value, target).copy_abs() <= allowed


def _ambiguity(number: Number, target: Number) -> str:
    """Records that a match needed the other reading of "2,125"-like text (grouping vs decimals)."""
    parts = [
        f"{label} read as {' or '.join(map(format_number, n.readings()))}"
        for label, n in (("answer", number), ("target", target))
        if n.alternative is not None
    ]
    return "ambiguous separator: " + ", ".join(parts)


def extract_number(text: str, language: str | None, *, strict: bool = False) -> tuple[Decimal, str] | None:
    """The final numeric answer in text and where it was found, or None."""
    found = extract_answer_number(text, language, strict=strict)
    return (found[0].value, found[1]) if found is not None and found[0] is not None else None


def extract_answer_number(
    text: str, language: str | None, *, strict: bool = False, phrases: Phrases | None = None
) -> tuple[Number | None, str] | None:
    """The final numeric answer in text (with its other reading, if ambiguous) and where it was found;
    (None, why) when the answer line hedges between two numbers ("5 or 6")."""
    for found in answer_phrases(text, language, phrases=phrases):
        if not found.phrase.endswith(_LABEL_ENDS) and not _LEADING_NUMBER.match(found.text):
            continue  # "the answer is clear, 2 times": a statement must be followed by its number
        if _hedged(found.text, language):
            return None, f"several answers after {found.phrase!r}: {found.text.strip()[:40]!r}"
        value = _pick(found.text, language)
        if value is not None:
            return value, f"after {found.phrase!r}"
    boxed = last_boxed(text)
    if boxed is not None:
        value = _pick(boxed, language)
        if value is not None:
            return value, "in \\boxed{}"
    if strict:
        return None
    number = last_number(text, language)
    return (number, "last number") if number is not None else None


# "5 or 6", "5 или 6": two numbers joined by a word for "or" and nothing else on the answer line.
_OR = re.compile(
    r"^[\s*_$€£¥₽]*(?P<a>.+?)[\s*_%]*\s(?:or|или|либо|oder|ou|o|ó|atau|hoặc|หรือ|або|yoki|veya)\s"
    r"[\s*_$€£¥₽]*(?P<b>.+?)[\s*_%.]*$",
    re.IGNORECASE,
)


def _hedged(segment: str, language: str | None) -> bool:
    line = segment.strip().splitlines()[0] if segment.strip() else ""
    match = _OR.match(line)
    if match is None:
        return False
    first, second = (find_numbers(match[k], language, space_groups=True) for k in ("a", "b"))
    return len(first) == 1 and len(second) == 1 and first[0].value != second[0].value


def _exact_context(*values: Decimal) -> Context:
    """A context precise enough that subtracting and multiplying these values does not round."""
    digits = sum(len(v.as_tuple().digits) + abs(v.as_tuple().exponent) for v in values)  # type: ignore[arg-type]
    return Context(prec=max(28, digits + 2), traps=[])


def _pick(segment: str, language: str | None) -> Number | None:
    """In an answer line, the result of the last "=" if any ("9 × 2 = 18"), else the first number."""
    equals = [m.end() for m in _EQUALS.finditer(segment)]
    if equals:
        after = find_numbers(segment[equals[-1] :], language, space_groups=True)
        if after:
            return after[0]
    numbers = find_numbers(segment, language, space_groups=True)
    return numbers[0] if numbers else None
