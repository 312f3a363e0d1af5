"""Multiple choice: find the option letter a model chose and compare it with the target letter.

Where the choice is looked for, in order:
1. the line after the last answer phrase ("Answer: B", "Ответ: B", "La respuesta es (C)",
   "الإجابة: د", "答案：C"): an option text, a letter at its start, or a marked letter in it;
2. the last \\boxed{...};
3. a first or last line that is only a letter ("B", "**B**", "(B)", "B)", "B. Paris");
4. the last marked letter anywhere ("option B", "(B)", "**B**");
5. the whole output, or its last line, equal to one option's text.
An answer line that is only two different letters ("A or B", "A, C") is a hedge and names no option.

Letters: Latin A-Z (any case when alone), full-width forms, Arabic أ ب ج د هـ, Greek Α-Ε, Thai ก ข ค ง จ
the Cyrillic look-alikes А В С Е (a Russian keyboard's "В" is meant as B), and Б Г Д, which
only Russian lettering uses (second, fourth and fifth). Options given the same text twice are never
picked by that text: the answer names no one option.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import TYPE_CHECKING

from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.normalize import Phrases, answer_phrases, fold, last_boxed, phrase_table, squash_answer

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_LETTERS = {c: c for c in string.ascii_uppercase}
_LETTERS |= {"أ": "A", "ا": "A", "إ": "A", "ب": "B", "ج": "C", "د": "D", "هـ": "E", "ه": "E"}
_LETTERS |= {"Α": "A", "Β": "B", "Γ": "C", "Δ": "D", "Ε": "E"}
_LETTERS |= {"ก": "A", "ข": "B", "ค": "C", "ง": "D", "จ": "E"}
_LETTERS |= {"А": "A", "В": "B", "С": "C", "Е": "E"}
_LETTERS |= {"Б": "B", "Г": "D", "Д": "E"}  # Russian lettering А Б В Г Д; no Latin look-alike
# A question that letters its own options А) Б) В) Г) (Russian exams) means В as C and Е as F.
_CYRILLIC_ORDER = _LETTERS | {c: string.ascii_uppercase[i] for i, c in enumerate("АБВГДЕ")}
_CYRILLIC_LETTERING = re.compile(r"(?m)^[\s*_#>]*[(\[]?Б[).:\]]")
_LETTER_ALT = "|".join(sorted(map(re.escape, _LETTERS), key=len, reverse=True))
# Not part of a longer word: no letter, digit or combining mark (Thai, Arabic vowels) around it.
_BEFORE = r"(?<![^\W_])"
_AFTER = r"(?![^\W_]|[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u064b-\u065f\u0670\u0640])"
_LETTER = rf"{_BEFORE}(?P<letter>{_LETTER_ALT}){_AFTER}"
_LOWER = rf"{_BEFORE}(?P<lower>[a-z]){_AFTER}"
# A letter at the start of an answer line: "B", "(B)", "B)", "**B**", "B: Paris"; lower case only
# when punctuation follows ("b)" or "b." but not "a cat").
_HEAD = re.compile(
    rf"^[\s*_(\[{{\"'«“]*(?:{_LETTER}(?=[\s*_)\]}}\"'»”.,:;]|$)|{_LOWER}(?=[*_)\]}}\"'»”.,:;]*$|[)\].:]))"
)
_OPTION_WORDS = (
    "option|choice|answer|opción|opcion|alternativa|réponse|choix|variante|вариант|ответ|opzione|"
    "opsi|pilihan|lựa chọn|phương án|đáp án|ตัวเลือก|ข้อ|विकल्प|الخيار|选项|選択肢|seçenek"
)
_MARKED = re.compile(
    rf"(?:(?<![^\W_])(?i:{_OPTION_WORDS})\s*[(\[]?\s*(?:{_LETTER}|{_LOWER})"
    rf"|[(\[]{_LETTER.replace('letter', 'letter2')}[)\]]|\*\*{_LETTER.replace('letter', 'letter3')}\*\*)"
)
# A second letter joined to the first ("A or B", "A, C", "A и B"): a hedge names no one option.
_HEDGE = re.compile(
    rf"^[*_)\].:]*\s*(?:,|;|/|&|\+|(?i:or|and|или|и|oder|und|ou|et|o|y|或|和|または))\s*"
    rf"[(\[*_]*(?:{_LETTER}|{_LOWER})[)\]*_.]*\s*$"
)
_BARE_LINE = re.compile(
    rf"^[\s*_#>]*[(\[]?{_LETTER}[)\]]?[*_]*[.:)]?[\s*_]*$"
    rf"|^[\s*_#>]*[(\[]?{_LETTER.replace('letter', 'letter2')}[.)\]:][*_]*\s+\S"
)


def _letter(match: re.Match[str], table: dict[str, str]) -> str:
    """The canonical letter (A-Z) of a match of the patterns above."""
    for group in ("letter", "letter2", "letter3"):
        value = match.groupdict().get(group)
        if value:
            return table[value]
    return match["lower"].upper()


class MultipleChoice(Scorer):
    """Score 1 when the chosen letter is the target letter (target may be a letter or option text)."""

    blocking = False

    def __init__(self, answer_phrases: dict[str, list[str]] | None = None) -> None:
        self.phrases = phrase_table(answer_phrases, scorer="choice")

    def __repr__(self) -> str:
        return f"MultipleChoice(answer_phrases={self.phrases})" if self.phrases else "MultipleChoice()"

    def __call__(self, output: str, sample: Sample) -> Score:
        choices = list(sample.choices or [])
        count = len(choices) if choices else 26
        cyrillic = cyrillic_lettered(sample)
        found = extract_choice(output, sample.language, choices, phrases=self.phrases, cyrillic=cyrillic)
        targets = {t for t in (target_letter(t, choices, cyrillic=cyrillic) for t in sample.target) if t}
        if found is None:
            return Score(0.0, None, "no choice found")
        letter, where = found
        if not letter:
            return Score(0.0, None, where)
        if ord(letter) - ord("A") >= count:
            return Score(0.0, letter, f"{letter} {where} is not one of the {count} options")
        if not targets:
            return Score(0.0, letter, f"{letter} {where}; target {sample.target!r} is not an option")
        hit = letter in targets
        return Score(1.0 if hit else 0.0, letter, f"{letter} {where}; target {'/'.join(sorted(targets))}")


def cyrillic_lettered(sample: Sample) -> bool:
    """True when the sample's own text letters its options in Russian order (a line "Б) ...")."""
    texts = [sample.input or "", *(v for v in sample.fields.values() if isinstance(v, str))]
    return any(_CYRILLIC_LETTERING.search(text) for text in texts)


def target_letter(target: str, choices: list[str], *, cyrillic: bool = False) -> str | None:
    """The letter of a target given as "B", "(b)", "B." or as the text of an option."""
    text = unicodedata.normalize("NFKC", target).strip().strip("()[]. *")
    letter = (_CYRILLIC_ORDER if cyrillic else _LETTERS).get(text.upper() if text.isascii() else text)
    if letter is not None:
        return letter
    return _by_text(target, choices)


def extract_choice(
    text: str,
    language: str | None,
    choices: list[str],
    *,
    phrases: Phrases | None = None,
    cyrillic: bool = False,
) -> tuple[str, str] | None:
    """The chosen letter and where it was found, or None (`cyrillic`: В is C, as in А Б В Г)."""
    text = unicodedata.normalize("NFKC", text)
    table = _CYRILLIC_ORDER if cyrillic else _LETTERS
    for found in answer_phrases(text, language, phrases=phrases):
        if _hedged(found.text, table):
            return "", f"several options after {found.phrase!r}: {found.text.strip()[:40]!r}"
        letter = _from_segment(found.text, choices, table)
        if letter:
            return letter, f"after {found.phrase!r}"
    boxed = last_boxed(text)
    if boxed is not None:
        letter = _from_segment(boxed.replace("\\text{", "").strip("{} "), choices, table)
        if letter:
            return letter, "in \\boxed{}"
    # Code fences are layout, not content: "```\nB\n```" is the bare letter B.
    lines = [
        line for line in text.strip().splitlines() if line.strip() and not line.strip().startswith("```")
    ]
    for line, where in ((lines[:1], "on the first line"), (lines[-1:], "on the last line")):
        match = _BARE_LINE.match(line[0]) if line else None
        if match:
            return _letter(match, table), where
    marked = list(_MARKED.finditer(text))
    if marked:
        return _letter(marked[-1], table), f"marked {marked[-1].group(0).strip()!r}"
    for candidate, where in (
        (text, "option text"),
        (lines[-1] if lines else "", "option text on the last line"),
    ):
        letter = _by_text(candidate, choices)
        if letter:
            return letter, where
    return None


def _hedged(segment: str, table: dict[str, str]) -> bool:
    """True for an answer line that is two different letters ("A or B", "A, C"), nothing more."""
    line = segment.strip().splitlines()[0] if segment.strip() else ""
    head = _HEAD.match(line)
    if not head:
        return False
    rest = _HEDGE.match(line[head.end() :])
    return rest is not None and _letter(rest, table) != _letter(head, table)


def _from_segment(segment: str, choices: list[str], table: dict[str, str]) -> str | None:
    by_text = _by_text(segment, choices)
    if by_text:
        return by_text
    head = _HEAD.match(segment)
    if head:
        return _letter(head, table)
    marked = _MARKED.search(segment)
    if marked:
        return _letter(marked, table)
    return _by_prefix(segment, choices)


def _by_text(text: str, choices: list[str]) -> str | None:
    wanted = _squash(text)
    if not wanted:
        return None
    hits = [i for i, choice in enumerate(choices) if _squash(choice) == wanted]
    return string.ascii_uppercase[hits[0]] if len(hits) == 1 and hits[0] < 26 else None


def _by_prefix(text: str, choices: list[str]) -> str | None:
    """The option whose text starts the segment ("Paris, because ..."), the longest if several."""
    wanted = _squash(text)
    options = [_squash(choice) for choice in choices[:26]]
    starts = [i for i, option in enumerate(options) if option and (wanted + " ").startswith(option + " ")]
    if not starts:
        return None
    longest = max(len(options[i]) for i in starts)
    best = [i for i in starts if len(options[i]) == longest]
    return string.ascii_uppercase[best[0]] if len(best) == 1 else None


def _squash(text: str) -> str:
    """An option's text as compared: "-5" is not "5" and "C++" is not "C#" (see `squash_answer`)."""
    return squash_answer(fold(text))
