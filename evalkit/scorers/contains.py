"""Containment: the output holds one of the accepted answers, as words, case and accents aside.

    scorer: contains

For short factual answers that models embed in a sentence ("The capital is Paris."). A target must
appear as whole words, so "4" does not match "14" and "cat" does not match "category".
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from evalkit.scorers import scorer
from evalkit.scorers.base import Score, Scorer

if TYPE_CHECKING:
    from evalkit.task.sample import Sample


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


@scorer("contains")
class Contains(Scorer):
    """1.0 when any accepted answer appears in the output as whole words, else 0.0."""

    def __call__(self, output: str, sample: Sample) -> Score:
        text = _fold(output)
        for target in sample.target:
            folded = _fold(target)
            if folded and re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", text):
                return Score(1.0, target, f"contains {target!r}")
        return Score(0.0, None, "no accepted answer in the output")
