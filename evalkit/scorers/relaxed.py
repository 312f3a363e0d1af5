"""Relaxed accuracy (ChartQA): numbers within a relative tolerance, other answers by exact match.

The ChartQA definition (Masry et al., 2022): a numeric prediction is correct when
|prediction - target| / |target| <= 5%; anything else must match exactly (case-insensitive); the
score is the maximum over the targets. Like the reference, a target of 0 needs an exact 0, and years
are numbers too (2015 is within 5% of 2017). On top of the reference this scorer:

- takes the final answer from a chat reply ("Answer: 42", "The answer is 42", else the last line);
- reads "1,234" as 1234 and "45%" as either 45 or 0.45 (whichever the target means);
- accepts the letter or the option text on multiple-choice samples (`sample.choices`, letter target).

`final_answer` and `normalize_text` are shared with the ANLS scorer.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import TYPE_CHECKING

from evalkit.scorers.base import Score, Scorer
from evalkit.task.languages import ANSWER_WORDS

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\s?%)?(?![\w])")
_CURRENCY = "$€£¥₽₹"
_ARABIC_MARKS = re.compile("[\u064b-\u0652\u0640]")  # harakat and tatweel do not change the word
_MARKDOWN = re.compile(r"\*\*|__|`|\\\(|\\\)|\$")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.):]\s*.*|\s.*)?$", re.S)


def final_answer(output: str, language: str | None = None) -> str:
    """The answer part of a chat reply: after the last "Answer:" label (English or the sample's
    language), else after "the answer is", else a \\boxed{} value, else the last non-empty line."""
    text = output.strip()
    words = {"final answer", "answer", ANSWER_WORDS.get(language or "en", "answer").lower()}
    label = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    patterns = (rf"(?:{label})\s*[:：]\s*(.+)", r"\bthe (?:final )?answer is\s*[:：]?\s*(.+)")
    for pattern in patterns:
        matches = list(re.finditer(pattern, text, flags=re.I))
        if matches:
            return _clean(matches[-1].group(1).strip().splitlines()[0])
    boxed = _BOXED.findall(text)
    if boxed:
        return _clean(boxed[-1])
    lines = [line for line in text.splitlines() if line.strip()]
    return _clean(lines[-1]) if lines else ""


def _clean(answer: str) -> str:
    answer = _BOXED.sub(r"\1", answer)
    answer = _MARKDOWN.sub("", answer).strip()
    return answer.strip(" \t\"'“”«»").rstrip(".。").strip()


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed, surrounding punctuation and Arabic marks removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _ARABIC_MARKS.sub("", text)
    text = " ".join(text.split())
    return text.strip(string.punctuation + " «»“”‘’¿¡。、")


def parse_numbers(text: str) -> list[tuple[float, bool]]:
    """Every number in `text` as (value, had a percent sign); "1,234" is 1234, "−5" is -5."""
    found = []
    for match in _NUMBER.finditer(text):
        token = match.group(0)
        percent = token.endswith("%")
        digits = token.rstrip("% ").replace(",", "").replace("−", "-")
        try:
            found.append((float(digits), percent))
        except ValueError:
            continue
    return found


def as_number(text: str) -> tuple[float, bool] | None:
    """The value of `text` when the whole of it is one number (currency signs and % allowed)."""
    stripped = unicodedata.normalize("NFKC", text).strip().rstrip(".").strip(_CURRENCY + " ")
    numbers = parse_numbers(stripped)
    if len(numbers) != 1:
        return None
    match = _NUMBER.search(stripped)
    assert match is not None
    return numbers[0] if match.group(0).strip() == stripped else None


def _readings(value: float, percent: bool) -> tuple[float, ...]:
    return (value, value / 100) if percent else (value,)


def numbers_match(prediction: tuple[float, bool], target: tuple[float, bool], tolerance: float) -> bool:
    """Within `tolerance` relative to the target; a 0 target needs an exact 0."""
    for p in _readings(*prediction):
        for t in _readings(*target):
            if (t == 0 and p == 0) or (t != 0 and abs(p - t) / abs(t) <= tolerance):
                return True
    return False


class RelaxedAccuracy(Scorer):
    """ChartQA relaxed accuracy: `tolerance` (default 5%) relative error on numbers, exact match
    otherwise, max over targets. Metric `strict` is the same with no tolerance."""

    blocking = False

    def __init__(self, tolerance: float = 0.05, extract: bool = True) -> None:
        if not 0 <= tolerance < 1:
            raise TypeError(f"tolerance must be in [0, 1), got {tolerance!r}")
        self.tolerance = tolerance
        self.extract = extract

    def __call__(self, output: str, sample: Sample) -> Score:
        if not isinstance(output, str) or not output.strip():
            return Score(0.0, None, "empty output", {"strict": 0.0})
        answer = final_answer(output, sample.language) if self.extract else output.strip()
        answer = _choice_letter(answer, sample) or answer
        relaxed = strict = 0.0
        best = ""
        for target in sample.target:
            ok, why = self._match(answer, target, self.tolerance)
            exact, _ = self._match(answer, target, 0.0)
            if ok > relaxed or not best:
                best = why
            relaxed, strict = max(relaxed, ok), max(strict, exact)
        if not sample.target:
            best = "no target to compare with"
        return Score(relaxed, answer, best, {"strict": strict})

    @staticmethod
    def _match(answer: str, target: str, tolerance: float) -> tuple[float, str]:
        expected = as_number(target)
        if expected is not None:
            numbers = parse_numbers(answer)
            if not numbers:
                return 0.0, f"no number in {answer!r} (target {target})"
            ok = numbers_match(numbers[0], expected, tolerance)
            verdict = "within" if ok else "outside"
            return float(ok), f"{numbers[0][0]:g} {verdict} {tolerance:.0%} of {target}"
        ok = normalize_text(answer) == normalize_text(target)
        return float(ok), f"{'matches' if ok else 'differs from'} {target!r}"


def _choice_letter(answer: str, sample: Sample) -> str | None:
    """On a multiple-choice sample, the letter meant by "C", "(C)", "C. 12 cm" or the option text."""
    if not sample.choices or not any(len(t) == 1 and t.isalpha() for t in sample.target):
        return None
    letters = string.ascii_uppercase[: len(sample.choices)]
    answer = answer.strip()
    match = _LETTER.match(answer.upper() if len(answer) == 1 else answer)
    if match and match.group(1) in letters:
        return match.group(1)
    wanted = normalize_text(answer)
    hits = [
        letter
        for letter, choice in zip(letters, sample.choices, strict=False)
        if normalize_text(choice) == wanted
    ]
    return hits[0] if len(hits) == 1 else None
