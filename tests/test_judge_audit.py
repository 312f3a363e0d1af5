"""The judge audit: agreement statistics against textbook values, and each planted bias found by the
audit while an unbiased judge is not flagged. Verdicts come from the simulator's judges reading real
judge prompts (`evalkit.sim.judge.judge_reply`, what the simulator serves), fixed seeds throughout."""

from __future__ import annotations

import math
import random

import pytest

from evalkit import stats
from evalkit.scorers.judge_prompt import (
    GRADES,
    PREFERENCES,
    grading_messages,
    pairwise_messages,
    parse_verdict,
)
from evalkit.sim.judge import JudgeProfile, judge_reply, style_mark

N_ITEMS = 600
CITIES = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Peru", "Lima")]
PAD = "Let me think about this carefully before answering."


def _items(seed: int = 7) -> list[dict]:
    """Answers right or wrong at random, padded to random lengths independent of being right."""
    rng = random.Random(seed)
    items = []
    for i in range(N_ITEMS):
        country, city = CITIES[i % len(CITIES)]
        wrong = rng.choice([c for _, c in CITIES if c != city])
        right = rng.random() < 0.5
        core = f"The capital is {city}." if right else f"The capital is {wrong}."
        pads = rng.randint(0, 12)
        items.append({
            "question": f"What is the capital of {country}? (item {i})",
            "reference": f"The capital of {country} is {city}.",
            "answer": " ".join([PAD] * pads + [core]),
            "other": f"The capital is {city if not right else wrong}.",
            "truth": "pass" if right else "fail",
            "length": pads,
        })  # fmt: skip
    return items


def _grade(profile: JudgeProfile, item: dict, *, judge: str = "sim/j", replicate: int = 0) -> str:
    prompt = grading_messages(item["question"], item["answer"], reference=item["reference"])[-1]["content"]
    return parse_verdict(judge_reply(profile, judge, prompt, 0, replicate), GRADES, "json").verdict


def _prefer(profile: JudgeProfile, item: dict, first: str, second: str) -> str:
    prompt = pairwise_messages(item["question"], first, second, reference=item["reference"])[-1]["content"]
    return parse_verdict(judge_reply(profile, "sim/j", prompt, 0, None), PREFERENCES, "json").verdict


FAIR = JudgeProfile(accuracy=0.9)


# --- the statistics themselves -------------------------------------------------------------------


def test_cohen_kappa_matches_the_textbook_example() -> None:
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    result = stats.cohen_kappa(a, b)
    assert result.value == pytest.approx(0.4)
    assert result.observed == pytest.approx(0.7)
    assert result.low < 0.4 < result.high


def test_fleiss_kappa_matches_fleiss_1971_worked_example() -> None:
    # Wikipedia's worked example: 10 items, 14 raters, 5 categories, kappa 0.210
    counts = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    ratings = [[c for c, n in enumerate(row) for _ in range(n)] for row in counts]
    assert stats.fleiss_kappa(ratings).value == pytest.approx(0.2099, abs=1e-3)


def test_perfect_and_chance_agreement() -> None:
    labels = ["pass", "fail"] * 50
    assert stats.cohen_kappa(labels, labels).value == pytest.approx(1.0)
    rng = random.Random(3)
    noise = [rng.choice(["pass", "fail"]) for _ in range(2000)]
    other = [rng.choice(["pass", "fail"]) for _ in range(2000)]
    chance = stats.cohen_kappa(noise, other)
    assert chance.low < 0 < chance.high


def test_missing_verdicts_are_refused_not_counted() -> None:
    with pytest.raises(ValueError, match="missing"):
        stats.cohen_kappa(["pass", None, "fail"], ["pass", "fail", "fail"])


# --- agreement of the simulated judges -----------------------------------------------------------


def test_replicates_of_an_accurate_judge_agree_more_than_a_noisy_ones() -> None:
    items = _items()[:300]
    sharp = [[_grade(JudgeProfile(accuracy=0.97), i, replicate=r) for r in range(3)] for i in items]
    noisy = [[_grade(JudgeProfile(accuracy=0.7), i, replicate=r) for r in range(3)] for i in items]
    sharp_k, noisy_k = stats.fleiss_kappa(sharp), stats.fleiss_kappa(noisy)
    assert sharp_k.low > noisy_k.high
    # replicates right independently with prob a agree on an item's verdict with prob a² + (1-a)²
    assert sharp_k.observed == pytest.approx(0.97**2 + 0.03**2, abs=0.03)


def test_agreement_with_the_truth_tracks_the_judges_accuracy() -> None:
    items = _items()
    truth = [i["truth"] for i in items]
    kappa, (accuracy, low, high) = stats.human_agreement([_grade(FAIR, i) for i in items], truth)
    assert low <= 0.9 <= high and accuracy == pytest.approx(0.9, abs=0.04)
    assert kappa.value == pytest.approx(0.8, abs=0.08)


# --- biases: planted ones found, none flagged on a fair judge ------------------------------------


def test_verbosity_bias_is_found_when_planted_and_not_flagged_otherwise() -> None:
    items = _items()
    truth = [i["truth"] for i in items]
    lengths = [i["length"] for i in items]
    fair = stats.verbosity_bias([_grade(FAIR, i) for i in items], lengths, truth)
    leaning = JudgeProfile(accuracy=0.9, verbosity_bias=0.5, long_tokens=30)
    biased = stats.verbosity_bias([_grade(leaning, i) for i in items], lengths, truth)
    assert not fair.flagged and fair.low <= 0 <= fair.high, fair.sentence()
    assert biased.flagged and biased.effect > 0.2 and biased.low > 0, biased.sentence()


def test_position_bias_is_found_when_planted_and_not_flagged_otherwise() -> None:
    items = _items()

    def both_orders(profile: JudgeProfile) -> tuple[list[str], list[str]]:
        first = [_prefer(profile, i, i["answer"], i["other"]) for i in items]
        swapped = [_prefer(profile, i, i["other"], i["answer"]) for i in items]
        return first, swapped

    fair = stats.position_bias(*both_orders(JudgeProfile(accuracy=0.8)))
    biased = stats.position_bias(*both_orders(JudgeProfile(accuracy=0.8, position_bias=0.3)))
    assert not fair.flagged, fair.sentence()
    assert biased.flagged and biased.effect > 0.2, biased.sentence()


def _pairs(profile: JudgeProfile) -> tuple[list[float], list[bool], list[float]]:
    """Each item's answer (right or wrong, padded to a random length) against a short answer of the
    opposite correctness: the judge's value for the tested answer, whether it is the longer, and the
    truth's value. Pairs of equal length are left out, as `length_preference` asks."""
    value = {"a": 1.0, "b": 0.0, "tie": 0.5}
    rng = random.Random(11)
    judged, longer, truth = [], [], []
    for item in _items():
        if len(item["answer"]) == len(item["other"]):
            continue
        right = item["truth"] == "pass"
        tested, baseline = item["answer"], item["other"]
        if rng.random() < 0.5:  # the short answer is the tested one, half the time
            tested, baseline, right = baseline, tested, not right
        judged.append(value[_prefer(profile, item, tested, baseline)])
        longer.append(len(tested) > len(baseline))
        truth.append(1.0 if right else 0.0)
    return judged, longer, truth


def test_a_pairwise_preference_for_the_longer_answer_is_found_when_planted_and_not_flagged_otherwise() -> (
    None
):
    fair, biased = _pairs(FAIR), _pairs(JudgeProfile(accuracy=0.9, verbosity_bias=0.3))
    for _, longer, _ in (fair, biased):
        assert sum(longer) > 100 and len(longer) - sum(longer) > 100  # both kinds of pair
    with_reference = stats.length_preference(*fair)
    assert not with_reference.flagged and with_reference.low <= 0 <= with_reference.high, (
        with_reference.sentence()
    )
    assert "pairs where the judge and the reference differ" in with_reference.detail
    leaning = stats.length_preference(*biased)
    assert leaning.flagged and leaning.low > 0 and leaning.effect > 0.2, leaning.sentence()
    alone = stats.length_preference(biased[0], biased[1])  # no reference: still seen here
    assert alone.flagged and "confounded" in alone.detail, alone.sentence()


def test_without_a_reference_length_preference_cannot_tell_bias_from_longer_answers_being_better() -> None:
    """A perfect judge, where the longer answer is the right one in 80 of 100 pairs: alone, the check
    flags it (and says it is confounded); with the truth as reference it finds no bias."""
    longer = [True] * 50 + [False] * 50
    truth = [1.0] * 40 + [0.0] * 10 + [0.0] * 40 + [1.0] * 10  # the longer one is right in 80 pairs
    alone = stats.length_preference(truth, longer)
    assert alone.flagged and "confounded" in alone.detail, alone.sentence()
    assert not stats.length_preference(truth, longer, truth).flagged


def test_length_preference_on_nothing_to_test_says_so_and_refuses_missing_verdicts() -> None:
    ties = stats.length_preference([0.5, 0.5], [True, False])
    assert ties.flagged is False and math.isnan(ties.p_value) and "no pair" in ties.sentence()
    agree = stats.length_preference([1.0, 0.0], [True, False], [1.0, 0.0])  # judge = reference
    assert not agree.flagged and agree.n == 0 and agree.p_value == 1.0 and "0/0" in agree.detail
    with pytest.raises(ValueError, match="missing"):
        stats.length_preference([1.0, math.nan], [True, False])
    with pytest.raises(ValueError, match="same pairs"):
        stats.length_preference([1.0, 0.0], [True, False], [1.0])


def test_self_preference_is_found_when_planted_and_not_flagged_otherwise() -> None:
    items = _items()
    mark = style_mark("sim/j")
    other_mark = next(m for m in ("— ", "• ", "» ", "→ ") if m != mark)
    own = [n % 2 == 0 for n in range(len(items))]  # half the answers are the judge's own
    styled = [
        dict(i, answer=(mark if o else other_mark) + i["answer"]) for i, o in zip(items, own, strict=True)
    ]
    truth = [i["truth"] for i in items]
    fair = stats.self_preference([_grade(FAIR, i) for i in styled], truth, own)
    vain = JudgeProfile(accuracy=0.9, self_preference=0.5)
    biased = stats.self_preference([_grade(vain, i) for i in styled], truth, own)
    assert not fair.flagged, fair.sentence()
    assert biased.flagged and biased.low > 0, biased.sentence()


def test_a_bias_checks_interval_excludes_zero_exactly_when_it_is_flagged() -> None:
    items = _items()
    truth, lengths = [i["truth"] for i in items], [i["length"] for i in items]
    for strength in (0.0, 0.05, 0.1, 0.2, 0.4):
        profile = JudgeProfile(accuracy=0.85, verbosity_bias=strength, long_tokens=30)
        check = stats.verbosity_bias([_grade(profile, i) for i in items], lengths, truth)
        assert check.flagged == (check.low > 0 or check.high < 0), check.sentence()
