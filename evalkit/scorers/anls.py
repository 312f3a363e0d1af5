"""ANLS, the DocVQA metric: Average Normalized Levenshtein Similarity (Biten et al., 2019).

For each target: NL = levenshtein(prediction, target) / max(len(prediction), len(target)), on text
lower-cased with whitespace collapsed; the similarity is 1 - NL when NL < threshold (0.5), else 0.
A sample scores the maximum over its targets; the task score is the mean over samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.relaxed import final_answer

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_MAX_CHARS = 2_000  # an answer longer than this scores 0 against any short target anyway


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def anls_similarity(prediction: str, target: str, threshold: float = 0.5) -> float:
    """1 - normalized Levenshtein distance, or 0 when the distance reaches `threshold`."""
    a = " ".join(prediction.strip().lower().split())[:_MAX_CHARS]
    b = " ".join(target.strip().lower().split())
    if not a and not b:
        return 1.0
    distance = levenshtein(a, b) / max(len(a), len(b))
    return 1.0 - distance if distance < threshold else 0.0


class ANLS(Scorer):
    """DocVQA ANLS: max over targets of the thresholded normalized Levenshtein similarity.

    extract: take the final answer from a chat reply ("Answer: ..." or the last line) first.
    Metric `exact` is 1 when the normalized answer equals a target.
    """

    blocking = False

    def __init__(self, threshold: float = 0.5, extract: bool = True) -> None:
        if not 0 < threshold <= 1:
            raise TypeError(f"threshold must be in (0, 1], got {threshold!r}")
        self.threshold = threshold
        self.extract = extract

    def __call__(self, output: str, sample: Sample) -> Score:
        if not isinstance(output, str) or not output.strip():
            return Score(0.0, None, "empty output", {"exact": 0.0})
        answer = final_answer(output, sample.language) if self.extract else output.strip()
        if not sample.target:
            return Score(0.0, answer, "no target to compare with", {"exact": 0.0})
        scores = [(anls_similarity(answer, target, self.threshold), target) for target in sample.target]
        value, target = max(scores, key=lambda pair: pair[0])
        exact = float(any(s == 1.0 for s, _ in scores))
        return Score(value, answer, f"ANLS {value:.3f} against {target!r}", {"exact": exact})
