"""Properties of every QA scorer: never raises on any string, values in [0, 1], deterministic."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.scorers import get_scorer
from evalkit.scorers.base import Score
from evalkit.task.spec import Sample

SCORERS = {
    "numeric": {},
    "extractive": {},
    "choice": {},
    "exact": {},
    "regex": {},
}
LANGUAGES = [
    None,
    "en",
    "de",
    "fr",
    "ru",
    "ar",
    "zh",
    "ja",
    "th",
    "hi",
    "bn",
    "es",
    "pt",
    "id",
    "tl",
    "vi",
    "xx",
]

# Text that stresses the parsers: digits of every script, separators, answer phrases, markup.
_PIECES = st.sampled_from(
    [
        "Answer:", "Ответ:", "答案：", "الإجابة:", "\\boxed{", "}", "{", "**", "(", ")", "1", "2,125", "2.125",
        "2\u202f125", "٣٫٥", "١٢", "๑๘", "১৮", "−", "-", "=", "/", "0", "9" * 400, ".", ",", " ", "\n", "B",
        "В", "د", "هـ", "ก", "the", "l'", "\\frac{1}{0}", "{,}", "\\,", "yes", "да", "2017年5月18日", "\x00",
        "\ud800", "\u200b", "\u0301", "\uffff", "Option", "%", "$", "€",
    ]
)  # fmt: skip
TEXT = st.one_of(st.text(), st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=30).map("".join))
METADATA = st.sampled_from([{}, {"answer_type": "yes_no"}, {"answer_type": "date"}, {"unanswerable": True}])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SCORERS)),
    output=TEXT,
    targets=st.lists(TEXT, max_size=3),
    choices=st.one_of(st.none(), st.lists(TEXT, max_size=6)),
    language=st.sampled_from(LANGUAGES),
    metadata=METADATA,
)
def test_never_raises_and_stays_in_range(
    name: str,
    output: str,
    targets: list[str],
    choices: list[str] | None,
    language: str | None,
    metadata: dict,
) -> None:
    scorer = get_scorer(name, SCORERS[name])
    sample = Sample(id="p", target=targets, choices=choices, language=language, metadata=metadata)
    score = scorer(output, sample)
    assert isinstance(score, Score)
    assert 0.0 <= score.value <= 1.0 and not math.isnan(score.value)
    assert all(0.0 <= v <= 1.0 for v in score.metrics.values())
    assert score.extracted is None or isinstance(score.extracted, str)
    assert scorer(output, sample) == score  # deterministic


@settings(max_examples=200, deadline=None)
@given(output=TEXT, language=st.sampled_from(LANGUAGES))
def test_extractive_gold_equals_itself(output: str, language: str | None) -> None:
    """Any text scored against itself as the gold gets F1 1 (or is empty on both sides)."""
    score = get_scorer("extractive", {"extract": False})(
        output, Sample(id="p", target=[output or "x"], language=language)
    )
    if output.strip():
        assert score.metrics["em"] == 1.0 and score.metrics["f1"] == 1.0


@settings(max_examples=200, deadline=None)
@given(value=st.integers(min_value=-(10**30), max_value=10**30), language=st.sampled_from(LANGUAGES))
def test_numeric_reads_its_own_integers(value: int, language: str | None) -> None:
    """Plain integers after an answer phrase are read exactly in every language."""
    sample = Sample(id="p", target=[str(value)], language=language)
    score = get_scorer("numeric")(f"Answer: {value}", sample)
    assert score.value == 1.0 and score.extracted == str(value)
