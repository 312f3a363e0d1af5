"""Statistics checked against known values: scipy, hand computations, published worked examples.

`make_results` (also used by the plot, report and widget tests) builds a synthetic results DataFrame
with the columns of DESIGN.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from math import comb

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from evalkit import stats
from evalkit.common.errors import ConfigError


def make_results(
    models: Mapping[str, Mapping[str, float]] | None = None,
    *,
    tasks: Sequence[str] = ("qa",),
    n: int = 40,
    languages: Sequence[str | None] = (None,),
    epochs: int = 1,
    error_rate: float = 0.0,
    simulated: bool = False,
    cluster_size: int = 1,
    seed: int = 0,
    binary: bool = True,
) -> pd.DataFrame:
    """A synthetic results DataFrame. `models` maps a model id to {accuracy, cost (₽ per call), latency}."""
    models = models or {
        "cheap/small": {"accuracy": 0.55, "cost": 0.01, "latency": 0.5},
        "mid/medium": {"accuracy": 0.70, "cost": 0.05, "latency": 1.0},
        "big/large": {"accuracy": 0.80, "cost": 0.60, "latency": 3.0},
    }
    rng = np.random.default_rng(seed)
    rows = []
    for task in tasks:
        for model, spec in models.items():
            for i in range(n):
                for epoch in range(epochs):
                    rows.append(_row(rng, task, model, spec, i, epoch, languages, error_rate, cluster_size,
                                     simulated, binary))  # fmt: skip
    return pd.DataFrame(rows)


def _row(rng, task, model, spec, i, epoch, languages, error_rate, cluster_size, simulated, binary) -> dict:
    language = languages[i % len(languages)]
    failed = rng.random() < error_rate
    value = float(rng.random() < spec["accuracy"]) if binary else float(rng.beta(5 * spec["accuracy"], 2))
    cost = spec["cost"] * (0.8 + 0.4 * rng.random())
    latency = spec["latency"] * (0.7 + 0.6 * rng.random())
    return {
        "run_id": "run1", "task": task, "family": "qa", "model": model, "sample_id": f"s{i}",
        "epoch": epoch, "language": language, "target": "42", "prompt": f"What is {i} + 42 - {i}?",
        "output": None if failed else ("Answer: 42" if value else "Answer: 41"),
        "extracted": None if failed else ("42" if value else "41"),
        "score": math.nan if failed else value, "explanation": "", "error": "timeout" if failed else None,
        "error_message": "read timed out" if failed else None, "latency_s": latency,
        "ttft_s": latency / 4, "output_tokens_per_s": 50 / latency, "prompt_tokens": 100,
        "completion_tokens": 20, "cached_tokens": 0, "images": 0, "cost_rub": cost,
        "cost_rub_estimated": cost * 1.05, "cost_rub_input": cost * 1.05 * 0.6, "cost_rub_output": cost * 1.05 * 0.4,
        "cost_rub_images": 0.0, "attempts": 1, "from_cache": False, "simulated": simulated,
        "cluster": f"c{i // cluster_size}",
    }  # fmt: skip


def test_wilson_matches_statsmodels_values() -> None:
    # statsmodels.stats.proportion.proportion_confint(count, nobs, method="wilson"), hand-copied.
    assert stats.wilson_interval(7, 10) == pytest.approx((0.3967781474611, 0.8922087325936), abs=1e-9)
    assert stats.wilson_interval(50, 100) == pytest.approx((0.4038315304, 0.5961684696), abs=1e-9)
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775327999, abs=1e-9)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def test_accuracy_ci_uses_wilson_for_binary_and_drops_errors() -> None:
    est = stats.accuracy_ci([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, math.nan, math.nan])
    assert est.method == "wilson" and est.n == 10 and est.value == pytest.approx(0.7)
    assert (est.low, est.high) == pytest.approx(stats.wilson_interval(7, 10))


def test_accuracy_ci_bootstraps_non_binary_scores_deterministically() -> None:
    values = np.linspace(0.1, 0.9, 50)
    first = stats.accuracy_ci(values, seed=3)
    assert first.method == "bootstrap"
    assert first == stats.accuracy_ci(values, seed=3)
    assert first.low < values.mean() < first.high
    # The bootstrap SE of a mean is close to s/sqrt(n).
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert (first.high - first.low) / (2 * 1.96) == pytest.approx(se, rel=0.15)


def test_clustered_se_by_hand() -> None:
    # Residuals +.5 +.5 | -.5 -.5: cluster sums 1 and -1; SE^2 = C/(C-1) * 2 / n^2 = 2 * 2 / 16.
    assert stats.clustered_se([1, 1, 0, 0], ["a", "a", "b", "b"]) == pytest.approx(0.5)
    # One sample per cluster: the ordinary standard error with ddof=1.
    x = [1, 0, 1, 1, 0, 1, 0.5]
    assert stats.clustered_se(x, list("abcdefg")) == pytest.approx(np.std(x, ddof=1) / math.sqrt(len(x)))
    assert stats.clustered_se(x) == pytest.approx(np.std(x, ddof=1) / math.sqrt(len(x)))


def test_clustered_interval_is_wider_when_clusters_agree() -> None:
    scores = [1, 1, 1, 0, 0, 0] * 5
    clusters = [f"c{i // 3}" for i in range(30)]
    clustered = stats.accuracy_ci(scores, clusters)
    independent = stats.accuracy_ci(scores)
    assert clustered.method == "wilson-clustered" and independent.method == "wilson"
    assert clustered.high - clustered.low > 1.5 * (independent.high - independent.low)
    # Design effect by hand: clustered SE^2 / independent SE^2; Wilson on n / deff.
    deff = (stats.clustered_se(scores, clusters) / stats.clustered_se(scores)) ** 2
    assert clustered.note == f"design effect {deff:.2f}"
    assert (clustered.low, clustered.high) == pytest.approx(stats.wilson_interval(15 / deff, 30 / deff))
    continuous = stats.accuracy_ci([0.9, 0.8, 0.85, 0.1, 0.2, 0.15] * 5, clusters)
    assert continuous.method == "clustered"
    se = stats.clustered_se([0.9, 0.8, 0.85, 0.1, 0.2, 0.15] * 5, clusters)
    assert continuous.high - continuous.value == pytest.approx(1.959963985 * se)


def test_clustering_never_narrows_an_interval() -> None:
    # Every cluster holds one right and one wrong answer: the clustered SE is 0, which would claim
    # certainty from 6 samples. The interval must stay at least as wide as the independent one.
    scores = [1, 0, 1, 0, 1, 0]
    clusters = ["a", "a", "b", "b", "c", "c"]
    assert stats.clustered_se(scores, clusters) == 0
    est = stats.accuracy_ci(scores, clusters)
    assert (est.low, est.high) == pytest.approx(stats.wilson_interval(3, 6))
    assert stats.wilson_interval(0, 6)[0] == 0.0 and stats.wilson_interval(6, 6)[1] == 1.0


@pytest.mark.parametrize(
    ("n", "c", "k"), [(10, 3, 1), (10, 3, 5), (20, 0, 3), (5, 5, 2), (200, 17, 10), (7, 6, 2)]
)
def test_pass_at_k_matches_the_combinatorial_reference(n: int, c: int, k: int) -> None:
    reference = 1 - comb(n - c, k) / comb(n, k)
    assert stats.pass_at_k(n, c, k) == pytest.approx(reference, abs=1e-12)


def test_pass_at_k_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        stats.pass_at_k(3, 1, 5)
    with pytest.raises(ValueError):
        stats.pass_at_k(3, 4, 1)


def test_pass_at_k_table_over_epochs() -> None:
    rows = []
    for pid, outcomes in {"p1": [1, 0, 0, 0], "p2": [1, 1, 1, 1], "p3": [0, 0, 0, 0]}.items():
        for epoch, value in enumerate(outcomes):
            rows.append(
                {"task": "code", "model": "m", "sample_id": pid, "epoch": epoch, "score": float(value)}
            )
    rows.append({"task": "code", "model": "m", "sample_id": "p1", "epoch": 4, "score": math.nan})
    table = stats.pass_at_k_table(pd.DataFrame(rows), ks=(1, 2, 5))
    row = table.iloc[0]
    assert row["problems"] == 3
    assert row["pass@1"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert row["pass@2"] == pytest.approx((stats.pass_at_k(4, 1, 2) + 1 + 0) / 3)
    assert math.isnan(row["pass@5"])  # the failed call does not count as a fifth attempt
    assert row["pass@1_low"] <= row["pass@1"] <= row["pass@1_high"]


def _paired_frame(
    a: Sequence[float], b: Sequence[float], clusters: Sequence[str] | None = None
) -> pd.DataFrame:
    rows = []
    for model, values in (("A", a), ("B", b)):
        for i, value in enumerate(values):
            rows.append({"task": "t", "model": model, "sample_id": f"s{i}", "epoch": 0, "score": value,
                         "error": None if not math.isnan(value) else "server_error",
                         "cluster": clusters[i] if clusters else f"s{i}"})  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_models_mcnemar_and_tango_interval() -> None:
    # Altman et al. (2000) thallium example: 14 both, 5 A only, 0 B only, 22 neither.
    a = [1] * 14 + [1] * 5 + [0] * 22
    b = [1] * 14 + [0] * 5 + [0] * 22
    result = stats.compare_models(_paired_frame(a, b), "A", "B")
    assert result.method == "mcnemar-score" and result.n_pairs == 41
    assert (result.a_only, result.b_only) == (5, 0)
    # McNemar without continuity correction: z = 5 / √5.
    assert result.p_value == pytest.approx(2 * sps.norm.sf(5 / math.sqrt(5)))
    assert result.difference == pytest.approx(5 / 41)
    # The interval is where Tango's score statistic stays within ±1.96 (checked against a brute-force
    # constrained maximum likelihood below), and it excludes 0 exactly as p < 0.05 says.
    assert result.significant and result.low > 0
    for bound, z in ((result.low, 1.959964), (result.high, -1.959964)):
        assert _brute_force_score(5, 0, 41, bound) == pytest.approx(z, abs=1e-4)


def _brute_force_score(b: int, c: int, n: int, delta: float) -> float:
    """Tango's score statistic with the constrained MLE of P(B only) found numerically."""
    from scipy.optimize import minimize_scalar

    a = n - b - c

    def nll(p01: float) -> float:
        p10, rest = p01 + delta, 1 - 2 * p01 - delta
        terms = [(b, p10), (c, p01), (a, rest)]
        return -sum(k * math.log(p) for k, p in terms if k)

    low, high = max(0.0, -delta) + 1e-12, (1 - delta) / 2 - 1e-12
    p01 = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-13}).x
    return (b - c - n * delta) / math.sqrt(n * (2 * p01 + delta * (1 - delta)))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 200), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_interval_excludes_zero_exactly_when_p_is_below_alpha(
    b: int, c: int, agree: int, level: float
) -> None:
    """Any paired table: 'the CI excludes 0' and 'p < α' never disagree."""
    n = b + c + agree
    if n == 0:
        return
    a_scores = [1] * b + [0] * c + [1] * (agree // 2) + [0] * (agree - agree // 2)
    b_scores = [0] * b + [1] * c + [1] * (agree // 2) + [0] * (agree - agree // 2)
    result = stats.compare_models(_paired_frame(a_scores, b_scores), "A", "B", confidence=level)
    excludes_zero = result.low > 0 or result.high < 0
    assert excludes_zero == result.significant, result
    assert result.low <= result.difference <= result.high


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=2, max_size=60),
       st.integers(1, 4), st.booleans())  # fmt: skip
def test_clustered_and_continuous_comparisons_agree_with_their_interval(pairs, size, continuous) -> None:
    a = [x + (0.25 * (i % 3) if continuous else 0) for i, (x, _) in enumerate(pairs)]
    b = [y for _, y in pairs]
    a = [min(v, 1.0) for v in a]
    clusters = [f"q{i // size}" for i in range(len(pairs))]
    result = stats.compare_models(_paired_frame(a, b, clusters), "A", "B")
    if math.isnan(result.p_value):
        return
    assert (result.low > 0 or result.high < 0) == result.significant, result


def test_holm_adjusts_a_family_and_the_sentence_says_so() -> None:
    assert stats.holm([0.01, 0.04, 0.03, math.nan, 0.5]) == pytest.approx([0.04, 0.09, 0.09, math.nan, 0.5],
                                                                          nan_ok=True)  # fmt: skip
    a = [1.0] * 30 + [0.0] * 5
    b = [1.0] * 22 + [0.0] * 13
    single = stats.compare_models(_paired_frame(a, b), "A", "B")
    family = stats.adjust([single] * 20)
    assert family[0].family == 20 and family[0].p_adjusted == pytest.approx(min(1.0, 20 * single.p_value))
    assert single.significant and not family[0].significant_adjusted
    assert "Holm-adjusted over 20 comparisons: p_adj = " in family[0].sentence()
    assert family[0].sentence().endswith("not significant")
    assert "Holm" not in single.sentence()


def test_compare_models_drops_failed_pairs_and_writes_a_sentence() -> None:
    a = [1.0] * 30 + [0.0] * 5 + [math.nan] * 3
    b = [1.0] * 20 + [0.0] * 15 + [1.0] * 3
    result = stats.compare_models(_paired_frame(a, b), "A", "B")
    assert result.n_pairs == 35 and result.dropped_errors == 3
    assert (
        result.p_value
        == pytest.approx(stats.mcnemar_p(10, 0))
        == pytest.approx(2 * sps.norm.sf(math.sqrt(10)))
    )
    sentence = result.sentence()
    assert sentence.startswith("A is 28.6 pp more accurate than B (95% CI ")
    assert "p = 0.002, n = 35 pairs; left out: 3 pairs with a failed call): significant" in sentence
    reverse = stats.compare_models(_paired_frame(a, b), "B", "A")
    assert reverse.sentence().startswith("B is 28.6 pp less accurate than A")


def test_compare_models_not_significant_and_no_overlap() -> None:
    a = [1, 0] * 10
    b = [0, 1] * 10
    result = stats.compare_models(_paired_frame(a, b), "A", "B")
    assert result.difference == 0 and result.p_value == pytest.approx(1.0)
    assert result.sentence().endswith(": not significant") and "as accurate as" in result.sentence()
    with pytest.raises(ConfigError, match="no results for model 'missing'; models in these results: A, B"):
        stats.compare_models(_paired_frame(a, b), "A", "missing")
    with pytest.raises(ConfigError, match="no results for task 'x'"):
        stats.compare_models(_paired_frame(a, b), "A", "B", task="x")
    all_failed = stats.compare_models(_paired_frame(a, [math.nan] * len(b)), "A", "B")
    assert all_failed.n_pairs == 0 and all_failed.dropped_errors == len(a)
    assert "no successfully scored samples" in all_failed.sentence()


def test_compare_models_paired_z_for_continuous_scores() -> None:
    rng = np.random.default_rng(1)
    b = rng.uniform(0.2, 0.8, 80)
    a = np.clip(b + 0.1 + rng.normal(0, 0.05, 80), 0, 1)
    result = stats.compare_models(_paired_frame(list(a), list(b)), "A", "B", seed=5)
    assert result.method == "paired-z"
    diff = a - b
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert (result.low, result.high) == pytest.approx(
        (diff.mean() - 1.959964 * se, diff.mean() + 1.959964 * se)
    )
    assert result.p_value == pytest.approx(2 * sps.norm.sf(diff.mean() / se))


def test_compare_models_uses_clusters_when_samples_share_them() -> None:
    a = [1, 1, 1, 1, 0, 0] * 6
    b = [0, 0, 0, 1, 0, 0] * 6
    clusters = [f"q{i // 3}" for i in range(36)]
    result = stats.compare_models(_paired_frame(a, b, clusters), "A", "B")
    assert result.method == "clustered-z"
    diff = np.array(a, float) - np.array(b, float)
    se = stats.clustered_se(diff, clusters)
    assert se > stats.clustered_se(diff)  # clusters agree, so the design effect exceeds 1
    assert result.p_value == pytest.approx(2 * sps.norm.sf(diff.mean() / se))
    assert result.high - result.difference == pytest.approx(1.959964 * se)
    plain = stats.compare_models(_paired_frame(a, b), "A", "B")  # the same pairs, no clusters
    assert plain.method == "mcnemar-score" and plain.high - plain.low < result.high - result.low


def test_clustered_comparison_never_degenerates() -> None:
    # Identical answers in every pair: the clustered SE is 0; the interval must still have width.
    same = [1, 0, 1, 0, 1, 0]
    clusters = ["a", "a", "b", "b", "c", "c"]
    result = stats.compare_models(_paired_frame(same, same, clusters), "A", "B")
    assert result.method == "mcnemar-score" and result.p_value == 1.0
    assert result.low < 0 < result.high
    # Large differences stay within ±100 pp.
    wide = stats.compare_models(_paired_frame([1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], clusters), "A", "B")
    assert -1 <= wide.low <= wide.high <= 1


def test_cost_per_correct_ratio_and_fallback_note() -> None:
    df = pd.DataFrame({
        "task": "t", "model": "m", "sample_id": [f"s{i}" for i in range(4)], "epoch": 0,
        "score": [1.0, 0.0, 1.0, math.nan], "error": [None, None, None, "timeout"],
        "cost_rub": [0.10, 0.20, None, 0.05], "cost_rub_estimated": [0.11, 0.21, 0.30, 0.06],
    })  # fmt: skip
    est = stats.cost_per_correct(df)
    assert est.value == pytest.approx((0.10 + 0.20 + 0.30 + 0.05) / 2)
    assert "1 of 4 calls" in est.note
    assert est.low <= est.value <= est.high
    per_1000 = stats.cost_per_1000(df)
    assert per_1000.value == pytest.approx(1000 * 0.65 / 4)
    none_right = stats.cost_per_correct(df.assign(score=0.0))
    assert math.isinf(none_right.value)


def test_latency_percentiles_skip_errors_and_cache() -> None:
    df = pd.DataFrame({
        "latency_s": [1.0, 2.0, 3.0, 4.0, 100.0, 0.001], "ttft_s": [0.1] * 6,
        "error": [None, None, None, None, "timeout", None], "from_cache": [False] * 5 + [True],
    })  # fmt: skip
    result = stats.latency_percentiles(df, "total")
    assert result["p50"] == pytest.approx(np.percentile([1, 2, 3, 4], 50))
    assert result["p95"] == pytest.approx(np.percentile([1, 2, 3, 4], 95))
    assert set(stats.latency_percentiles(df, "ttft_s")) == {"p50", "p90", "p95"}


def test_summary_table_columns_and_values() -> None:
    df = make_results(n=50, error_rate=0.1, seed=2)
    table = stats.summary_table(df)
    assert list(table["model"]) == sorted(df["model"].unique())
    row = table.set_index("model").loc["cheap/small"]
    part = df[df["model"] == "cheap/small"]
    assert row["n"] == 50 and row["errors"] == part["error"].notna().sum()
    assert row["accuracy"] == pytest.approx(part["score"].mean())
    assert row["accuracy_low"] < row["accuracy"] < row["accuracy_high"]
    assert row["total_rub"] == pytest.approx(part["cost_rub"].sum())
    assert row["rub_per_correct"] == pytest.approx(part["cost_rub"].sum() / part["score"].sum())
    assert row["latency_p50_s"] == pytest.approx(part.loc[part["error"].isna(), "latency_s"].median())
    assert not row["simulated"]
    assert stats.summary_table(df).equals(table)  # seeded: identical on a second call
    assert stats.summary_table(df.iloc[:0]).empty


def test_by_language_macro_and_micro() -> None:
    df = pd.DataFrame({
        "task": "t", "model": "m", "sample_id": [f"s{i}" for i in range(5)], "epoch": 0,
        "language": ["en", "en", "en", "en", "ru"], "score": [1.0, 1.0, 1.0, 0.0, 0.0],
        "error": None, "cluster": [f"s{i}" for i in range(5)],
    })  # fmt: skip
    wide = stats.by_language(df).iloc[0]
    assert wide["en"] == pytest.approx(0.75) and wide["ru"] == 0.0
    assert wide["macro"] == pytest.approx(0.375) and wide["micro"] == pytest.approx(0.6)
    long = stats.by_language(df, long=True)
    assert set(long["language"]) == {"en", "ru"} and list(long["n"]) == [4, 1]


def test_value_ranking_orders_by_rub_per_correct() -> None:
    models = {"x/dear": {"accuracy": 0.9, "cost": 1.0, "latency": 1},
              "y/cheap": {"accuracy": 0.6, "cost": 0.01, "latency": 1},
              "z/useless": {"accuracy": 0.0, "cost": 0.001, "latency": 1}}  # fmt: skip
    ranking = stats.value_ranking(make_results(models, tasks=("a", "b"), n=30), "a")
    assert list(ranking["model"]) == ["y/cheap", "x/dear", "z/useless"]
    assert set(ranking["task"]) == {"a"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0, 0.5, math.nan]), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=5))  # fmt: skip
def test_accuracy_interval_contains_the_mean(scores: list[float], cluster_size: int) -> None:
    clusters = [i // cluster_size for i in range(len(scores))]
    est = stats.accuracy_ci(scores, clusters, n_boot=200)
    if est.n == 0:
        assert math.isnan(est.value)
    else:
        assert 0 <= est.low <= est.value <= est.high <= 1
        kept = {s for s in scores if not math.isnan(s)}
        assert est.high > est.low or kept == {0.5}  # only constant non-binary scores give a point


def test_the_billed_total_is_split_in_price_card_proportions():
    import pandas as pd

    from evalkit.stats import cost_split

    group = pd.DataFrame(
        {"cost_rub_input": [0.1, 0.1], "cost_rub_output": [0.2, 0.2], "cost_rub_images": [0.7, 0.7]}
    )
    split = cost_split(group, total_rub=4.0)  # the router billed twice the estimate
    assert split == pytest.approx({"rub_input": 0.4, "rub_output": 0.8, "rub_images": 2.8})
    assert all(math.isnan(v) for v in cost_split(group.iloc[:0], 1.0).values())
