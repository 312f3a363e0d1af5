"""Simulated judges: models that read a judge prompt, find the true verdict, then err and lean as set.

The true verdict (the rule the audit tests rely on):
- grading: the answer PASSes when it covers at least `COVERAGE` (60%) of the key tokens of one accepted
  reference (its tokens that the question does not hold, words of three letters or more) (a line of the `reference` section; "- " bullets are dropped), or, without a reference, of
  the phrases quoted «like this» or "like this" in the rubric (the whole rubric when none is quoted).
  Tokens are the scorer's script-aware ones (`normalize.split_tokens`), character pairs in scripts
  written without spaces (th, zh, ja, ...), so Thai and Hindi are judged like English.
- pairwise: the answer with the higher coverage is better; equal coverage is a TIE.

Then, drawn deterministically from (seed, judge, prompt, request seed), in this order:
`malformed` (a reply that is no verdict), `self_preference` (an answer in the judge's own style
passes, or wins), `position_bias` (pairwise: A wins whatever the answers), `verbosity_bias` (a long
answer passes, or the longer answer wins), and last `accuracy` (the true verdict, else the opposite
one; a pairwise error picks one of the two other choices).
A model's "style" is its typographic habit: every simulated model opens a free-form answer with its
own mark (`style_mark`), which a self-preferring judge recognises.
"""

from __future__ import annotations

import hashlib
import json
import random
import re

from pydantic import BaseModel, ConfigDict, Field

from evalkit.scorers.judge_prompt import read_sections
from evalkit.scorers.normalize import split_tokens, squash

COVERAGE = 0.6
_QUOTED = re.compile(r"«([^»]+)»|\"([^\"]+)\"")
_MARKS = ("— ", "• ", "» ", "→ ", "▪ ", "◦ ", "✓ ", "· ")


class JudgeProfile(BaseModel):
    """How a simulated judge errs and leans. Probabilities per verdict.

    long_tokens: an answer of more tokens than this counts as long for `verbosity_bias` (grading).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    accuracy: float = Field(0.95, ge=0, le=1)
    position_bias: float = Field(0.0, ge=0, le=1)
    verbosity_bias: float = Field(0.0, ge=0, le=1)
    self_preference: float = Field(0.0, ge=0, le=1)
    malformed: float = Field(0.0, ge=0, le=1)
    long_tokens: int = Field(40, ge=1)


def style_mark(model_id: str) -> str:
    """The typographic habit with which `model_id` opens a free-form answer."""
    return _MARKS[hashlib.sha256(model_id.encode()).digest()[0] % len(_MARKS)]


def is_judge_prompt(text: str) -> bool:
    return not {"answer", "answer_a"}.isdisjoint(read_sections(text))


def judge_reply(profile: JudgeProfile, model_id: str, prompt: str, seed: int, request_seed: object) -> str:
    """The judge's reply to a judge prompt (the last user message's text)."""
    sections = read_sections(prompt)
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()
    rng = random.Random(f"{seed}|{model_id}|{digest}|{request_seed}")
    line = "VERDICT:" in prompt and "JSON" not in prompt
    if rng.random() < profile.malformed:
        return "I think this answer is probably fine overall, though it is hard to say."
    if "answer_a" in sections:
        verdict, reason = _prefer(profile, model_id, sections, rng)
    else:
        verdict, reason = _grade(profile, model_id, sections, rng)
    if line:
        return f"{reason}\nVERDICT: {verdict.upper()}"
    return json.dumps({"reason": reason, "verdict": verdict}, ensure_ascii=False)


def _grade(
    profile: JudgeProfile, model_id: str, sections: dict[str, str], rng: random.Random
) -> tuple[str, str]:
    answer = sections.get("answer", "")
    truth = coverage(_criteria(sections), answer, sections.get("question", "")) >= COVERAGE
    if rng.random() < profile.self_preference and answer.startswith(style_mark(model_id)):
        return "pass", "The answer is well put and covers the question."
    if rng.random() < profile.verbosity_bias and len(split_tokens(answer)) > profile.long_tokens:
        return "pass", "The answer is thorough and detailed."
    right = rng.random() < profile.accuracy
    passed = truth if right else not truth
    reason = "The answer states what the reference says." if passed else "The answer misses the key point."
    return ("pass" if passed else "fail"), reason


def _prefer(
    profile: JudgeProfile, model_id: str, sections: dict[str, str], rng: random.Random
) -> tuple[str, str]:
    first, second = sections.get("answer_a", ""), sections.get("answer_b", "")
    criteria = _criteria(sections)
    question = sections.get("question", "")
    a, b = coverage(criteria, first, question), coverage(criteria, second, question)
    truth = "a" if a > b else "b" if b > a else "tie"
    mark = style_mark(model_id)
    if rng.random() < profile.self_preference and first.startswith(mark) != second.startswith(mark):
        return ("a" if first.startswith(mark) else "b"), "This answer is clearer."
    if rng.random() < profile.position_bias:
        return "a", "Answer A is better."
    if rng.random() < profile.verbosity_bias and len(first) != len(second):
        return ("a" if len(first) > len(second) else "b"), "This answer is more thorough."
    if rng.random() < profile.accuracy:
        return truth, "This one matches the reference better." if truth != "tie" else "Both are as good."
    return rng.choice([c for c in ("a", "b", "tie") if c != truth]), "This one reads better."


def _criteria(sections: dict[str, str]) -> list[str]:
    reference = sections.get("reference")
    if reference is not None:
        lines = [line.strip().removeprefix("- ").strip() for line in reference.splitlines()]
        return [line for line in lines if line] or [reference]
    rubric = sections.get("rubric", "")
    quoted = [q for pair in _quoted(rubric) for q in pair if q]
    return quoted or [rubric]


def _quoted(text: str) -> list[tuple[str, str]]:
    return _QUOTED.findall(text)


def tokens(text: str) -> set[str]:
    """Content tokens: words, or character pairs in scripts written without spaces."""
    words = split_tokens(squash(text))
    spaced = {word for word in words if not _unspaced(word[0])}
    joined = "".join(word for word in words if _unspaced(word[0]))
    pairs = (
        {joined[i : i + 2] for i in range(len(joined) - 1)}
        if len(joined) > 1
        else set(filter(None, [joined]))
    )
    return spaced | pairs


def _unspaced(char: str) -> bool:
    """Thai, Lao, Tibetan, Myanmar, Khmer, kana and CJK: written without spaces between words."""
    code = ord(char)
    return 0x0E00 <= code <= 0x109F or 0x1780 <= code <= 0x17FF or 0x3040 <= code <= 0x9FFF


def coverage(criteria: list[str], answer: str, question: str = "") -> float:
    """The best share of one criterion's key tokens found in the answer (0 when there is none). Key
    tokens are those the question does not already hold, without short words ("is", "of")."""
    have, asked = tokens(answer), tokens(question)
    best = 0.0
    for criterion in criteria:
        every = tokens(criterion)
        want = {t for t in every - asked if len(t) > 2 or _unspaced(t[0])} or every
        if want:
            best = max(best, len(want & have) / len(want))
    return best
