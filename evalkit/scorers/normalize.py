"""Shared helpers for the QA scorers: text folding, script-aware tokens, answer phrases, numbers.

Everything here is pure and precompiled at import; nothing raises on any input string.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from evalkit.task import languages as L
from evalkit.task.sample import language_key

# --- text folding -------------------------------------------------------------------------------


def _punctuation_table() -> dict[int, None]:
    # SQuAD drops ASCII string.punctuation (which holds symbols such as $ + < = > ^ ` | ~); the
    # Unicode version of that rule is every P* and S* character. Invisible format characters go too.
    ranges = (range(0x10000), range(0x1F000, 0x1FB00))
    table = {cp: None for r in ranges for cp in r if unicodedata.category(chr(cp))[0] in "PS"}
    table.update({cp: None for cp in (0x00AD, 0x200B, 0x2060, 0xFEFF)})
    return table


_PUNCT = _punctuation_table()
_ASCII_PUNCT = {cp: None for cp in b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}


def fold(text: str) -> str:
    """NFKC and case folding (the comparison form of a text, before punctuation removal)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


def strip_punctuation(text: str) -> str:
    """Remove every Unicode punctuation and symbol character (SQuAD's rule, generalised)."""
    return text.translate(_ASCII_PUNCT if text.isascii() else _PUNCT)


def squash(text: str) -> str:
    """fold + strip_punctuation + single spaces (the SQuAD-style form; see `squash_answer`)."""
    return " ".join(strip_punctuation(fold(text)).split())


# Marks that change what an answer says, kept when punctuation is dropped: a separator between digits
# (3.14 is not 314, 12:30 is not 1230; a comma before three digits groups them, 1,000 is 1000), a sign before a number (-5 is not 5), and + or # after a
# letter (C++ and C# are not C).
_MEANINGFUL = re.compile(r"(?<=\d)(?:[.:/]|,(?!\d{3}(?!\d)))(?=\d)|(?:^|(?<=\s))[-−+](?=\d)|(?<=\w)[+#]+")


def squash_answer(text: str) -> str:
    """Punctuation and symbols removed and spaces collapsed (after `fold` or NFKC), keeping the marks
    that change an answer (see `_MEANINGFUL`)."""
    parts, last = [], 0
    for match in _MEANINGFUL.finditer(text):
        parts += [strip_punctuation(text[last : match.start()]), match.group(0).replace("−", "-")]
        last = match.end()
    parts.append(strip_punctuation(text[last:]))
    squashed = " ".join("".join(parts).split())
    return squashed or " ".join(text.split())  # a symbol-only answer ("<", "✓") is compared as written


# --- script-aware tokens ------------------------------------------------------------------------

# Scripts written without spaces between words: every character is a token (with its marks).
_UNSPACED = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # Han extensions
)
_MARKS = "".join(
    chr(cp)
    for cp in (*range(0x0E00, 0x0F00), *range(0x1000, 0x10A0), *range(0x1780, 0x1800), 0x3099, 0x309A)
    if unicodedata.category(chr(cp)) in ("Mn", "Mc")
)
_HAS_UNSPACED = re.compile(f"[{_UNSPACED}]")
_UNSPACED_TOKEN = re.compile(f"[{_UNSPACED}][{_MARKS}]*|[^\\s{_UNSPACED}]+")


def split_tokens(text: str) -> list[str]:
    """Whitespace tokens, except that characters of unspaced scripts (zh, ja, th, lo, km, my) are
    tokens by themselves. Decided by the script of the text, not by a language tag."""
    if text.isascii() or not _HAS_UNSPACED.search(text):
        return text.split()
    return _UNSPACED_TOKEN.findall(text)


def _word_set_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")['’](?=\w)")


_ARTICLES = {lang: frozenset(words) for lang, words in L.ARTICLES.items()}
_ELIDED = {lang: _word_set_regex(words) for lang, words in L.ELIDED_ARTICLES.items()}
_AR_CLITIC = re.compile(r"^(?:[وفبكل]?ال|لل)(?=\w\w)")


_ARTICLE_RES = {
    lang: re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")
    for lang, words in L.ARTICLES.items()
}


def squad_tokens(text: str, language: str | None, *, articles: bool = True) -> list[str]:
    """The official SQuAD v1.1 normalisation, bit for bit: lower(), ASCII punctuation removed,
    articles removed by regex, whitespace split (articles of the given language; English's is SQuAD's)."""
    text = text.lower().translate(_ASCII_PUNCT)
    article = _ARTICLE_RES.get(language_key(language)) if articles else None
    if article is not None:
        text = article.sub(" ", text)
    return text.split()


def qa_tokens(
    text: str, language: str | None, *, articles: bool = True, arabic_clitic: bool = False
) -> list[str]:
    """SQuAD-style answer tokens: fold, drop elided articles, punctuation, the language's articles."""
    text = fold(text)
    lang = language_key(language)
    elided = _ELIDED.get(lang) if articles else None
    if elided is not None:
        text = elided.sub(" ", text)
    tokens = _english_tokens(text) if lang == "en" else split_tokens(strip_punctuation(text))
    stop = _ARTICLES.get(lang) if articles else None
    if stop:
        tokens = [t for t in tokens if t not in stop]
    if arabic_clitic and lang == "ar":
        tokens = [_AR_CLITIC.sub("", t) for t in tokens]
    return tokens


def _english_tokens(text: str) -> list[str]:
    """Tokens as the official SQuAD v1.1 script makes them, except that non-ASCII punctuation
    attached to a word goes too ("“Hamlet”" is "hamlet"). A token of non-ASCII punctuation only
    ("—", "×") stays a token, as in SQuAD, so that English scores are identical to SQuAD's."""
    if text.isascii():
        return text.translate(_ASCII_PUNCT).split()
    tokens = []
    for token in text.split():
        token = token.translate(_ASCII_PUNCT)
        if token:
            tokens.append(token.translate(_PUNCT) or token)
    return tokens


# --- answer phrases -----------------------------------------------------------------------------

_CJK_OR_THAI = re.compile(f"[{_UNSPACED}]")


def _phrase(phrase: str, *, whole_word: bool = False) -> str:
    escaped = r"\s+".join(map(re.escape, phrase.split()))
    # CJK and Thai are written without spaces: "所以答案：" and "答案是十八" must still match.
    if _CJK_OR_THAI.match(phrase):
        return escaped
    return r"(?<![^\W\d_])" + escaped + (r"(?![^\W\d_])" if whole_word else "")


def _phrases(table: dict[str, tuple[str, ...]], langs: list[str]) -> list[str]:
    # NFKC changes some phrases (Thai "คำตอบ" holds SARA AM), and scorers may see NFKC text.
    found = {
        form for lang in langs for p in table.get(lang, ()) for form in (p, unicodedata.normalize("NFKC", p))
    }
    return sorted(found, key=len, reverse=True)


class _AnswerFinder:
    """Finds the last answer phrase fast: rfind of anchor words (every phrase contains a label
    that holds no shorter label), then the full pattern only in a small window around it."""

    def __init__(self, langs: list[str], extra: tuple[str, ...] = ()) -> None:
        labels = [p.lower() for p in _phrases(L.ANSWER_LABELS, langs)]
        labels = sorted({*labels, *(p.lower().strip().rstrip(":：") for p in extra)}, key=len, reverse=True)
        statements = [p.lower() for p in _phrases(L.ANSWER_STATEMENTS, langs)]
        label = "(?:" + "|".join(map(_phrase, labels)) + r")[ \t]*[*_]*[ \t]*(?:[:：]|[-–—](?=[ \t]))"
        statement = "(?:" + "|".join(_phrase(p, whole_word=True) for p in statements) + r")[ \t]*[:：]?"
        self.lowered = re.compile(f"(?:{statement}|{label})")
        self.any_case = re.compile(f"(?:{statement}|{label})", re.IGNORECASE)
        anchors = [a for a in set(labels) if not any(b != a and b in a for b in labels)]
        # Where each anchor sits inside the phrases that hold it, farthest first (longest phrase).
        self.offsets = {
            a: sorted({p.index(a) for p in labels + statements if a in p}, reverse=True) for a in anchors
        }
        assert all(any(a in p for a in anchors) for p in labels + statements)

    def last(self, text: str, before: int | None = None) -> re.Match[str] | None:
        """The last phrase match that starts before `before` (default: anywhere)."""
        low = text.lower()
        end = len(low) if before is None else before
        if len(low) != len(text):  # rare letters whose lower case is longer ("İ"): scan it all
            return _last(m for m in self.any_case.finditer(text) if m.start() < end)
        ends = dict.fromkeys(self.offsets, end)
        while ends:
            anchor, at = max(((a, low.rfind(a, 0, end)) for a, end in ends.items()), key=lambda x: x[1])
            if at < 0:
                return None
            for offset in self.offsets[anchor]:
                found = self.lowered.match(low, at - offset) if offset <= at else None
                if found is not None and found.end() > at:
                    return self.any_case.match(text, found.start()) or found
            ends[anchor] = at + len(anchor) - 1
        return None


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    last = None
    for last in matches:  # noqa: B007 - we want the last one
        pass
    return last


_ALL_LANGS = sorted(set(L.ANSWER_LABELS) | set(L.ANSWER_STATEMENTS))
_FINDERS = {lang: _AnswerFinder(sorted({lang, "en"})) for lang in _ALL_LANGS}
_FINDER_ANY = _AnswerFinder(_ALL_LANGS)
_LEAD = re.compile(r"^[\s*_#>`]+")
_TRAIL = re.compile(r"[\s*_`]+$")
_WORDY = re.compile(r"[^\W_]")


class Found(NamedTuple):
    """An answer found after an answer phrase: the rest of that line, the phrase as written, and
    where the phrase starts (pass it as `before` to look at the previous phrase)."""

    text: str
    phrase: str
    start: int = 0


Phrases = Mapping[str, Sequence[str]]


def _finder(language: str | None, phrases: Phrases | None = None) -> _AnswerFinder:
    key = language_key(language)
    extra = tuple(phrases.get(key) or phrases.get(language or "") or ()) if phrases else ()
    if extra:
        return _custom_finder(key, extra)
    return _FINDERS.get(key, _FINDER_ANY)


@functools.lru_cache(maxsize=64)
def _custom_finder(lang: str, extra: tuple[str, ...]) -> _AnswerFinder:
    return _AnswerFinder(sorted({lang, "en"} & set(_ALL_LANGS)) or ["en"], extra)


def phrase_table(value: object, *, scorer: str) -> dict[str, tuple[str, ...]] | None:
    """A scorer's `answer_phrases` parameter checked: {language: [label, ...]}."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str)
        and isinstance(v, (list, tuple))
        and v
        and all(isinstance(p, str) and p.strip() for p in v)
        for k, v in value.items()
    ):
        raise TypeError(
            f"{scorer}: answer_phrases must map a language code to a list of labels, got {value!r}"
        )
    return {language_key(k) or k: tuple(v) for k, v in value.items()}


def known_language(language: str | None) -> bool:
    """True when the answer-phrase table has the language."""
    return language_key(language) in _FINDERS


# The generic rule for languages outside the table: a final line "Label: answer", where the label is
# one to three words without digits (so "Step 3: ..." or "12:30" are not labels).
_FINAL_LABEL = re.compile(
    r"^[\s*_#>]*((?:[^\W\d_][^\W\d_'’.-]*\s?){1,3}?)[*_]*\s*[:：]\s*[*_]*(\S.*?)[\s*_`]*$"
)


def _final_label_line(text: str) -> Found | None:
    lines = [line for line in text.rstrip().splitlines() if line.strip()]
    if not lines:
        return None
    match = _FINAL_LABEL.match(lines[-1])
    if match is None:
        return None
    return Found(match.group(2), match.group(1).strip() + ":", 0)


def after_answer_phrase(
    text: str, language: str | None, before: int | None = None, *, phrases: Phrases | None = None
) -> Found | None:
    """The line after the last answer phrase ("Answer:", "Ответ:", "答案：", "The answer is", bold
    forms); the next non-empty line when the phrase ends its line. None when there is no phrase.
    With `before`, the last phrase that starts before that position. `phrases` adds a task's own
    labels per language. For a language outside the table, a final `Label: answer` line counts."""
    last = _finder(language, phrases).last(text, before)
    if last is None:
        if before is None and not known_language(language):
            return _final_label_line(text)
        return None
    rest = _LEAD.sub("", text[last.end() :])
    # Skip lines without a word character ("$$", "\\[", "```") to reach the answer itself.
    line = next((line for line in rest.split("\n", 8) if _WORDY.search(line)), "")
    return Found(_TRAIL.sub("", line), " ".join(last.group(0).split()), last.start())


def answer_phrases(
    text: str, language: str | None, limit: int = 4, *, phrases: Phrases | None = None
) -> Iterator[Found]:
    """The answers after the last `limit` answer phrases, last first ("Answer: B. I hope the
    answer is clear." yields "clear." and then "B. I hope ...")."""
    found = after_answer_phrase(text, language, phrases=phrases)
    while found is not None and limit > 0:
        yield found
        limit -= 1
        found = (
            after_answer_phrase(text, language, before=found.start, phrases=phrases)
            if found.start > 0
            else None
        )


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), with nested braces; None if absent."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0 or text[start:brace].split("\\")[-1].rstrip() not in ("boxed", "fbox"):
        return None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    return None


# --- numbers ------------------------------------------------------------------------------------

_SEPS = ".,\u00a0\u202f\u2009\u066b\u066c"
_BODY = rf"\d+(?:[{_SEPS}]\d+)*"
_BODY_SPACE = rf"\d+(?:[{_SEPS}]\d+| (?=\d{{3}}(?!\d))\d{{3}})*"
_NUMBER_TAIL = r"(?:/(?P<den>\d+)(?![\d/]))?"
_SIGN = r"(?:(?<![\w)\]])(?P<sign>[-−]))?"
_NUMBER_RE = re.compile(rf"{_SIGN}(?<![\d/])(?P<body>{_BODY}){_NUMBER_TAIL}")
_NUMBER_RE_SPACE = re.compile(rf"{_SIGN}(?<![\d/])(?P<body>{_BODY_SPACE}){_NUMBER_TAIL}")
_GROUP_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009\u066c")
_LATEX = re.compile(r"\\[dt]?frac\{\s*([-−]?\d+)\s*\}\{\s*(\d+)\s*\}|\{,\}|\\[,;!: ]")
# Full-width separators and signs (Chinese and Japanese text: "１，２００"); one character each, so
# positions in the text stay valid.
_FULL_WIDTH = str.maketrans("，．－／", ",.-/")
_INDIAN_OR_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d\d)*,\d{3}")


class NumberStyle(NamedTuple):
    """How a language writes numbers: the decimal mark and which marks may group thousands."""

    decimal: str
    dot_groups: bool
    space_groups: bool


def number_style(language: str | None) -> NumberStyle:
    """The number format of a language (English's when unknown)."""
    style = _STYLES.get(language) if language else _EN_STYLE  # type: ignore[arg-type]
    return style if style is not None else _number_style(language_key(language) or "en")


def _number_style(lang: str) -> NumberStyle:
    if lang in L.DECIMAL_COMMA:
        return NumberStyle(",", lang in L.DOT_GROUPING, lang in L.SPACE_GROUPING)
    return NumberStyle(".", False, lang in L.SPACE_GROUPING)


_EN_STYLE = _number_style("en")
_STYLES = {lang: _number_style(lang) for lang in {*L.DECIMAL_COMMA, *L.SPACE_GROUPING, *L.NAMES}}


def _ascii_digits(text: str) -> str:
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def _decimal(digits: str) -> Decimal | None:
    try:
        return Decimal(digits)
    except (InvalidOperation, ValueError):
        return None


def _grouped(body: str, sep: str) -> bool:
    """True when `sep` groups thousands (or lakhs) validly in body, e.g. 1,234,567 or 1,25,000."""
    if sep == ",":
        return _INDIAN_OR_THOUSANDS.fullmatch(body) is not None
    groups = body.split(sep)
    return 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


def interpret(body: str, style: NumberStyle) -> Decimal | None:
    """The value of a digit string with separators, read in the given style (None if malformed).

    Both marks present: the last one is the decimal mark. One mark repeated: it groups. One mark
    once: the style's decimal mark is decimal; the other groups only before exactly 3 digits."""
    body = _ascii_digits(body)
    if "\u066b" in body:  # Arabic decimal separator: unambiguous
        return _decimal(body.translate(_GROUP_SPACES).replace(",", "").replace("\u066b", "."))
    body = body.translate(_GROUP_SPACES)
    dots, commas = body.count("."), body.count(",")
    if dots and commas:
        mark = body[max(body.rfind("."), body.rfind(","))]
        other = "," if mark == "." else "."
        if body.count(mark) > 1:
            return None
        return _decimal(body.replace(other, "").replace(mark, "."))
    if not dots and not commas:
        return _decimal(body)
    mark = "." if dots else ","
    if dots + commas > 1:
        return _decimal(body.replace(mark, "")) if _grouped(body, mark) else None
    groups_ok = style.dot_groups if mark == "." else style.decimal == "."
    if mark != style.decimal and groups_ok and _grouped(body, mark):
        return _decimal(body.replace(mark, ""))
    return _decimal(body.replace(mark, "."))


class Number(NamedTuple):
    """A number found in text: its value, where it was, and the other reading when a lone separator
    before exactly three digits may group thousands or mark decimals ("2,125", "1.234")."""

    value: Decimal
    start: int
    end: int
    alternative: Decimal | None = None

    def readings(self) -> tuple[Decimal, ...]:
        return (self.value,) if self.alternative is None else (self.value, self.alternative)


def find_numbers(text: str, language: str | None, *, space_groups: bool = False) -> list[Number]:
    """Every number in text, read with the language's number style; LaTeX \\frac{a}{b} becomes a/b.

    space_groups: read "12 500" as one number in every language (an answer line holds one number,
    so a plain space between digit groups is grouping there even in English)."""
    return [n for n in map(_number, *_matches(text, language, space_groups=space_groups)) if n is not None]


def last_number(text: str, language: str | None) -> Number | None:
    """The last number in text (only the last candidates are parsed, so long texts stay cheap)."""
    matches, styles = _matches(text, language)
    for match in reversed(matches):
        number = _number(match, styles[0])
        if number is not None:
            return number
    return None


def _matches(
    text: str, language: str | None, *, space_groups: bool = False
) -> tuple[list[re.Match[str]], list[NumberStyle]]:
    if not text.isascii():
        text = text.translate(_FULL_WIDTH)
    if "\\" in text or "{," in text:
        text = _LATEX.sub(_latex_repl, text)
    style = number_style(language)
    pattern = _NUMBER_RE_SPACE if style.space_groups or space_groups else _NUMBER_RE
    matches = list(pattern.finditer(text))
    return matches, [style] * len(matches)


_LONE_MARK = re.compile(r"\d+([.,])(\d{3})")


def ambiguous_reading(body: str, value: Decimal) -> Decimal | None:
    """The other value of a body such as "2,125" or "1.234" (one mark, exactly three digits after it):
    grouping if `value` read it as decimals, and decimals if it read it as grouping."""
    plain = _ascii_digits(body).translate(_GROUP_SPACES)
    match = _LONE_MARK.fullmatch(plain)
    if match is None:
        return None
    grouped = Decimal(plain.replace(match.group(1), ""))
    decimal = Decimal(plain.replace(match.group(1), "."))
    return decimal if value == grouped else grouped


def _number(match: re.Match[str], style: NumberStyle) -> Number | None:
    value = interpret(match["body"], style)
    if value is None:
        return None
    other = ambiguous_reading(match["body"], value)
    if match["den"] is not None:
        den = _decimal(_ascii_digits(match["den"]))
        if not den:
            return None
        value = value / den
        other = None
    if match["sign"]:
        value = value.copy_negate()  # exact; unary minus would round to 28 digits
        other = other.copy_negate() if other is not None else None
    return Number(value, match.start(), match.end(), other)


def _latex_repl(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"{match.group(1)}/{match.group(2)}"
    token = match.group(0)
    return "," if token == "{,}" else "\u202f" if token == "\\," else " "


_TARGET_STYLE = NumberStyle(".", False, True)


def read_target_number(text: str) -> Number | None:
    """A target as a number, or None unless it holds exactly one. Read in English format ("2,125" is
    2125, with 2.125 as the other reading) with thousands grouped by any space ("12 500", NBSP,
    narrow NBSP, thin space) accepted, because data files are written in every locale."""
    text = _LATEX.sub(_latex_repl, text) if "\\" in text or "{," in text else text
    text = text.translate(_FULL_WIDTH)
    numbers = [n for n in map(_number, _NUMBER_RE_SPACE.finditer(text), _repeat(_TARGET_STYLE)) if n]
    return numbers[0] if len(numbers) == 1 else None


def _repeat(style: NumberStyle) -> Iterator[NumberStyle]:
    while True:
        yield style


def parse_target_number(text: str) -> Decimal | None:
    """The value of a target read by `read_target_number` (its first reading)."""
    number = read_target_number(text)
    return number.value if number is not None else None


def format_number(value: Decimal) -> str:
    """A plain decimal string without exponent or trailing zeros ("2125", "1.5", "-3")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
