"""Normalised exact match, with yes/no and date answers understood in many languages.

The output matches when it, or the line after its last answer phrase ("Answer: Paris"), equals a
target after normalisation: NFKC, case folding, punctuation and symbols removed, whitespace
collapsed. With `metadata.answer_type`:
- "yes_no": yes/no words of 13+ languages ("да", "sí", "नहीं", "ใช่", "có", "نعم", "oo") become
  "yes"/"no" on both sides, also when they start a sentence ("Yes, because ...");
- "date": both sides are read as ISO dates ("18 мая 2017", "May 18, 2017", "2017年5月18日",
  "18/05/2017" -> "2017-05-18"; a year alone stays "2017") and compared in that form.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.normalize import (
    after_answer_phrase,
    fold,
    language_key,
    phrase_table,
    squash,
    squash_answer,
)
from evalkit.task import languages as L

if TYPE_CHECKING:
    from evalkit.task.sample import Sample


def _canon_words(table: dict[str, tuple[str, ...]]) -> frozenset[str]:
    return frozenset(squash(word) for words in table.values() for word in words)


# Yes/no words of every language at once: the answer may come in English to a Russian question.
_YES = _canon_words(L.YES_WORDS)
_NO = _canon_words(L.NO_WORDS) - _YES


class ExactMatch(Scorer):
    """Score 1 when the output (or its answer line) equals a target.

    normalize: compare after NFKC, punctuation and whitespace normalisation (else only strip()).
    ignore_case: case-fold both sides.
    extract: also try the line after an answer phrase.
    """

    blocking = False

    def __init__(
        self,
        normalize: bool = True,
        ignore_case: bool = True,
        extract: bool = True,
        answer_phrases: dict[str, list[str]] | None = None,
    ) -> None:
        self.phrases = phrase_table(answer_phrases, scorer="exact")
        self.normalize = bool(normalize)
        self.ignore_case = bool(ignore_case)
        self.extract = bool(extract)

    def __repr__(self) -> str:
        return (
            f"ExactMatch(normalize={self.normalize}, ignore_case={self.ignore_case}, extract={self.extract}"
            + (f", answer_phrases={self.phrases})" if self.phrases else ")")
        )

    def __call__(self, output: str, sample: Sample) -> Score:
        kind = str(sample.metadata.get("answer_type") or "").strip().casefold()
        candidates = [(output, "whole output")]
        if self.extract:
            found = after_answer_phrase(output, sample.language, phrases=self.phrases)
            if found is not None and found.text:
                candidates.insert(0, (found.text, f"after {found.phrase!r}"))
        targets = {self._form(t, kind, sample.language) for t in sample.target}
        targets.discard("")
        first = None
        for text, where in candidates:
            form = self._form(text, kind, sample.language)
            first = first or (form, where)
            if form and form in targets:
                return Score(1.0, form, f"{form!r} {where} equals a target")
        form, where = first or ("", "whole output")
        return Score(0.0, form or None, f"{form!r} {where} matches none of {len(targets)} target(s)")

    def _form(self, text: str, kind: str, language: str | None) -> str:
        if kind == "yes_no":
            return yes_no(text) or self._plain(text)
        if kind == "date":
            return iso_date(text, language) or self._plain(text)
        return self._plain(text)

    def _plain(self, text: str) -> str:
        if not self.normalize:
            text = text.strip()
            return text.casefold() if self.ignore_case else text
        return squash_answer(fold(text) if self.ignore_case else unicodedata.normalize("NFKC", text))


_SENTENCE_HEAD = re.compile(
    r"^[\s*_\"'«“(]*([^\s,.!;:()\"'»”*،。，！、]+(?:\s+[^\s,.!;:()\"'»”*،。，！、]+)?)"
)


def yes_no(text: str) -> str | None:
    """ "yes" or "no" when the text is, or starts with, a yes/no word of any supported language."""
    whole = squash(text)
    for candidate in (whole, _head(text, 2), _head(text, 1)):
        if candidate in _YES:
            return "yes"
        if candidate in _NO:
            return "no"
    return None


def _head(text: str, words: int) -> str:
    match = _SENTENCE_HEAD.match(text)
    if match is None:
        return ""
    return " ".join(squash(match.group(1)).split()[:words])


# --- dates --------------------------------------------------------------------------------------

_MONTH_NAMES = (
    "january jan janvier janv enero ene januar jänner gennaio genn janeiro januari januari январь января янв ocak",
    "february feb février févr fevrier febrero febr februar febbraio fevereiro februari февраль февраля фев şubat",
    "march mar mars marzo märz marz março maret maart март марта mart",
    "april apr avril abril aprile april апрель апреля апр nisan",
    "may mai mayo maggio maio mei май мая mayıs",
    "june jun juin junio juni giugno junho juni июнь июня haziran",
    "july jul juillet julio juli luglio julho juli июль июля temmuz",
    "august aug août aout agosto agustus augustus август августа авг ağustos",
    "september sep sept septembre septiembre setiembre settembre setembro september сентябрь сентября сен eylül",
    "october oct octobre octubre oktober ottobre outubro oktober октябрь октября окт ekim",
    "november nov novembre noviembre november novembro ноябрь ноября ноя kasım",
    "december dec décembre decembre diciembre dezember dicembre dezembro desember december декабрь декабря дек aralık",
)
_MONTHS: dict[str, int] = {
    name: number
    for number, names in reversed(list(enumerate(_MONTH_NAMES, start=1)))
    for name in names.split()
}

_MONTH_ALT = "(?:" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True)) + r")(?![^\W\d_])"
_ISO = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_NUMERIC = re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?!\d)")
_CJK = re.compile(r"(\d{4})\s*[年년]\s*(\d{1,2})\s*[月월]\s*(?:(\d{1,2})\s*[日일])?")
_DAY_MONTH_YEAR = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th|er|º|\.)?\s*(?:de\s+)?({_MONTH_ALT})\.?,?\s*(?:de\s+)?(\d{{4}})?(?!\d)"
)
_MONTH_DAY_YEAR = re.compile(rf"(?<!\w)({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d),?\s*(\d{{4}})?")
_MONTH_YEAR = re.compile(rf"(?<!\w)({_MONTH_ALT})\.?,?\s+(?:de\s+)?(\d{{4}})(?!\d)")
_VI = re.compile(r"(?:ngày\s+(\d{1,2})\s+)?tháng\s+(\d{1,2})(?:\s*(?:năm|,)?\s*(\d{4}))?")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_MONTH_FIRST_LANGUAGES = frozenset({"en", ""})


def iso_date(text: str, language: str | None = None) -> str | None:
    """The date in text as "YYYY-MM-DD" (or "YYYY-MM", "YYYY"), or None if there is none."""
    text = fold(text)
    if not text.isascii():
        text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    for parse in (_iso, _numeric, _cjk, _named, _vietnamese):
        found = parse(text, language_key(language))
        if found is not None:  # "" is a date-shaped text that is no valid date
            return found or None
    years = _YEAR.findall(text)
    return years[0] if len(years) == 1 else None


def _fmt(year: str | int, month: str | int | None = None, day: str | int | None = None) -> str:
    y, m, d = int(year), int(month or 0), int(day or 0)
    if month is not None and not 1 <= m <= 12 or day is not None and not 1 <= d <= 31:
        return ""
    if not m:
        return f"{y:04d}"
    return f"{y:04d}-{m:02d}" if not d else f"{y:04d}-{m:02d}-{d:02d}"


def _iso(text: str, lang: str) -> str | None:
    match = _ISO.search(text)
    return _fmt(*match.groups()) if match else None


def _numeric(text: str, lang: str) -> str | None:
    match = _NUMERIC.search(text)
    if not match:
        return None
    first, second, year = (int(g) for g in match.groups())
    month_first = second > 12 or (first <= 12 and lang in _MONTH_FIRST_LANGUAGES)
    return _fmt(year, first, second) if month_first else _fmt(year, second, first)


def _cjk(text: str, lang: str) -> str | None:
    match = _CJK.search(text)
    return _fmt(*match.groups()) if match else None


def _named(text: str, lang: str) -> str | None:
    for pattern, order in ((_DAY_MONTH_YEAR, "dmy"), (_MONTH_DAY_YEAR, "mdy")):
        match = pattern.search(text)
        if match and match.group(3):
            day, month = (
                (match.group(1), match.group(2)) if order == "dmy" else (match.group(2), match.group(1))
            )
            return _fmt(match.group(3), _MONTHS[month], day)
    match = _MONTH_YEAR.search(text)
    return _fmt(match.group(2), _MONTHS[match.group(1)]) if match else None


def _vietnamese(text: str, lang: str) -> str | None:
    match = _VI.search(text)
    if not match or not match.group(3):
        return None
    return _fmt(match.group(3), match.group(2), match.group(1))
