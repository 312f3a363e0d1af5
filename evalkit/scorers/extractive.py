"""Extractive / short-answer QA (XQuAD, MKQA, TyDi GoldP): SQuAD exact match and token F1, multilingual.

Normalisation (prediction and every gold answer alike): NFKC, case folding, French/Italian elided
articles ("l'"), every Unicode punctuation and symbol character removed, the sample language's
articles removed (only that language's), then tokens: whitespace words, except that characters of
scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) are one token each. On
English this is exactly the official SQuAD v1.1 script. The score is the max over gold answers.

A sample with no gold answer (empty target, or metadata `unanswerable`) is matched by an empty
prediction or a "no answer" phrase. Gold "yes"/"no" (MKQA binary answers) matches yes/no words of
the sample's language ("Да", "Sí.").
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from evalkit.common.errors import TaskError
from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.normalize import (
    after_answer_phrase,
    language_key,
    phrase_table,
    qa_tokens,
    squad_tokens,
    squash,
)
from evalkit.task import languages as L

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_METRICS = ("f1", "em")
_PUNCTUATION = ("unicode", "ascii")


def _phrase_set(table: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    english = {squash(p) for p in table.get("en", ())}
    return {lang: frozenset(english | {squash(p) for p in words}) for lang, words in table.items()}


_NO_ANSWER = _phrase_set(L.NO_ANSWER_PHRASES)
_YES = _phrase_set(L.YES_WORDS)
_NO = _phrase_set(L.NO_WORDS)


class ExtractiveQA(Scorer):
    """SQuAD-style EM and F1 for any language.

    metric: which of "f1" (default) or "em" is the score value; both are in `metrics`.
    articles: remove the sample language's articles (SQuAD does for English).
    arabic_clitic: also strip the Arabic "ال" prefix (lossy, so off by default).
    extract: score the text after an answer phrase ("Answer: Paris" -> "Paris") when there is one.
    punctuation: "unicode" (default) removes all Unicode punctuation and folds NFKC; "ascii" is the
        official SQuAD v1.1 normalisation bit for bit (lower(), ASCII punctuation only), for
        comparing with published SQuAD/XQuAD numbers.
    """

    blocking = False

    def __init__(
        self,
        metric: str = "f1",
        articles: bool = True,
        arabic_clitic: bool = False,
        extract: bool = True,
        punctuation: str = "unicode",
        answer_phrases: dict[str, list[str]] | None = None,
    ) -> None:
        self.phrases = phrase_table(answer_phrases, scorer="extractive")
        if metric not in _METRICS:
            raise TaskError(f"metric must be one of {_METRICS}, got {metric!r}", where="scorer extractive")
        if punctuation not in _PUNCTUATION:
            raise TaskError(
                f"punctuation must be one of {_PUNCTUATION}, got {punctuation!r}", where="scorer extractive"
            )
        self.punctuation = punctuation
        self.metric = metric
        self.articles = bool(articles)
        self.arabic_clitic = bool(arabic_clitic)
        self.extract = bool(extract)

    def __repr__(self) -> str:
        return (
            f"ExtractiveQA(metric={self.metric!r}, articles={self.articles}, "
            f"arabic_clitic={self.arabic_clitic}, extract={self.extract}, punctuation={self.punctuation!r})"
        )

    def __call__(self, output: str, sample: Sample) -> Score:
        language = sample.language
        prediction = self.prediction(output, language)
        golds = [g for g in sample.target if g.strip()]
        if not golds or sample.metadata.get("unanswerable"):
            hit = float(is_no_answer(prediction, language))
            return Score(hit, prediction, "gold: no answer", {"em": hit, "f1": hit})
        pred_tokens = self._tokens(prediction, language)
        best_em, best_f1, best_gold = 0.0, 0.0, golds[0]
        for gold in golds:
            gold_tokens = self._tokens(gold, language)
            tokens = _binary(prediction, gold_tokens, language) or pred_tokens
            em, f1 = float(tokens == gold_tokens), token_f1(tokens, gold_tokens)
            if (f1, em) > (best_f1, best_em):
                best_em, best_f1, best_gold = em, f1, gold
        value = best_f1 if self.metric == "f1" else best_em
        explanation = f"em {best_em:.0f}, f1 {best_f1:.2f} against {best_gold!r}"
        return Score(value, prediction, explanation, {"em": best_em, "f1": best_f1})

    def prediction(self, output: str, language: str | None) -> str:
        """The answer text scored: what follows an answer phrase if any, else the whole output."""
        if self.extract:
            found = after_answer_phrase(output, language, phrases=self.phrases)
            if found is not None and found.text:
                return found.text.strip()
        return output.strip()

    def _tokens(self, text: str, language: str | None) -> list[str]:
        if self.punctuation == "ascii":
            return squad_tokens(text, language, articles=self.articles)
        return qa_tokens(text, language, articles=self.articles, arabic_clitic=self.arabic_clitic)


def token_f1(prediction: list[str], gold: list[str]) -> float:
    """SQuAD token F1; when either side is empty, 1.0 only if both are (as SQuAD v2 and MKQA)."""
    if not prediction or not gold:
        return float(prediction == gold)
    common = sum((Counter(prediction) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def is_no_answer(prediction: str, language: str | None) -> bool:
    """True for an empty prediction or a "no answer" phrase of the language or English."""
    text = squash(prediction)
    phrases = _NO_ANSWER.get((language_key(language) or "en"), _NO_ANSWER["en"])
    return not text or text in phrases


def _binary(prediction: str, gold_tokens: list[str], language: str | None) -> list[str] | None:
    """["yes"] / ["no"] when the gold is a binary answer and the prediction is a yes/no word."""
    if gold_tokens not in (["yes"], ["no"]):
        return None
    key = language_key(language) or "en"
    head = squash(prediction.split(",")[0].split(".")[0].split("!")[0])
    if head in _YES.get(key, _YES["en"]):
        return ["yes"]
    if head in _NO.get(key, _NO["en"]):
        return ["no"]
    return None
