"""Regex match: the output matches a pattern given as a parameter or as the sample's target(s).

    scorer: {name: regex, params: {pattern: "\\b(paris|parís)\\b", flags: "i"}}

With no `pattern`, every target of the sample is a pattern and any match scores 1. `full=True`
requires the whole (stripped) output to match; otherwise a match anywhere counts. `extract=True`
matches against the line after an answer phrase when there is one. An invalid target pattern
scores 0 with the reason in the explanation; an invalid `pattern` parameter fails the task load.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from evalkit.common.errors import TaskError
from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.normalize import after_answer_phrase

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}
_CACHE_SIZE = 4096


class RegexMatch(Scorer):
    """Score 1 when a pattern matches the output.

    pattern: the regex; None means each sample target is a regex.
    flags: letters from "imsxa" (ignore case, multiline, dotall, verbose, ASCII classes).
    full: the whole stripped output must match (re.fullmatch) instead of a match anywhere.
    normalize: apply NFKC to the output first (full-width letters, ligatures).
    extract: match the line after an answer phrase ("Answer: ...") when present.
    """

    blocking = False

    def __init__(
        self,
        pattern: str | None = None,
        flags: str = "i",
        full: bool = False,
        normalize: bool = True,
        extract: bool = False,
    ) -> None:
        unknown = set(flags or "") - set(_FLAGS)
        if unknown:
            raise TaskError(
                f"unknown regex flag(s) {''.join(sorted(unknown))!r}; use letters from 'imsxa'",
                where="scorer regex: flags",
            )
        self.flags = 0
        for letter in flags or "":
            self.flags |= _FLAGS[letter]
        self.flag_letters = flags or ""
        self.full = bool(full)
        self.normalize = bool(normalize)
        self.extract = bool(extract)
        self.pattern = pattern
        self._compiled: dict[str, re.Pattern[str] | str] = {}
        if pattern is not None:
            compiled = self._compile(pattern)
            if isinstance(compiled, str):
                raise TaskError(f"invalid regex {pattern!r}: {compiled}", where="scorer regex: pattern")

    def __repr__(self) -> str:
        return (
            f"RegexMatch(pattern={self.pattern!r}, flags={self.flag_letters!r}, full={self.full}, "
            f"normalize={self.normalize}, extract={self.extract})"
        )

    def __call__(self, output: str, sample: Sample) -> Score:
        text = unicodedata.normalize("NFKC", output) if self.normalize else output
        where = "in the output"
        if self.extract:
            found = after_answer_phrase(text, sample.language)
            if found is not None and found.text:
                text, where = found.text, f"after {found.phrase!r}"
        patterns = [self.pattern] if self.pattern is not None else list(sample.target)
        if not patterns:
            return Score(0.0, None, "no pattern (no `pattern` parameter and no target)")
        problems = []
        for source in patterns:
            compiled = self._compile(source)
            if isinstance(compiled, str):
                problems.append(f"invalid regex {source!r}: {compiled}")
                continue
            match = compiled.fullmatch(text.strip()) if self.full else compiled.search(text)
            if match is not None:
                return Score(1.0, match.group(0), f"/{source}/ matched {where}")
        reason = "; ".join(problems) or f"no pattern matched {where}"
        return Score(0.0, None, reason)

    def _compile(self, source: str) -> re.Pattern[str] | str:
        """The compiled pattern, or the error message; compiled patterns are kept per instance."""
        cached = self._compiled.get(source)
        if cached is not None:
            return cached
        try:
            compiled: re.Pattern[str] | str = re.compile(source, self.flags)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            compiled = str(exc)
        if len(self._compiled) < _CACHE_SIZE:
            self._compiled[source] = compiled
        return compiled
