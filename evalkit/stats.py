"""Statistics over the results DataFrame: accuracy with intervals, pass@k, paired comparison, cost, latency.

Everything here is pure and deterministic: bootstrap resampling takes a seed. Rows whose call failed
(`error` set, `score` NaN) never count towards accuracy; they are counted and reported apart. Their
cost does count towards money spent, since the router bills failed calls too.

Intervals:
- a proportion (all scores 0 or 1) with independent samples: Wilson score interval;
- samples that share a `cluster` (an XQuAD paragraph, one MGSM question across languages, repeated
  epochs of a sample): the clustered standard error of Miller (2024), "Adding Error Bars to Evals",
  as a design effect (Wilson on n / deff for 0/1 scores, mean ± z·SE otherwise);
- any other metric (F1, ANLS): percentile bootstrap over samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from evalkit.errors import ConfigError

DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP = 2000
_KEYS = ["task", "sample_id", "epoch"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval. `method` names how the interval was computed."""

    value: float
    low: float
    high: float
    n: int
    method: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n}, {self.method})"


_EMPTY = Estimate(math.nan, math.nan, math.nan, 0, "none")


def _z(confidence: float) -> float:
    return float(sps.norm.ppf(0.5 + confidence / 2))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- proportions and means --------------------------------------------------------------------------


def wilson_interval(
    successes: float, n: float, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (NaNs when n is 0). Counts may be fractional
    (an effective sample size)."""
    if n <= 0:
        return math.nan, math.nan
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def clustered_se(values: Sequence[float], clusters: Sequence[object] | None = None) -> float:
    """Standard error of the mean allowing for correlation within clusters (Miller 2024, eq. 4).

    SE² = C/(C-1) · Σ_c (Σ_{i∈c} (x_i − x̄))² / n². With one sample per cluster this is the usual
    s/√n (ddof = 1); shared clusters add their within-cluster covariance.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return math.nan
    residuals = pd.Series(x - x.mean())
    groups = residuals.groupby(np.asarray(clusters) if clusters is not None else np.arange(n), sort=False)
    sums = groups.sum().to_numpy()
    c = len(sums)
    if c < 2:
        return math.nan
    return math.sqrt(c / (c - 1) * float(np.sum(sums**2)) / n**2)


def bootstrap_ci(
    values: Sequence[float],
    *,
    clusters: Sequence[object] | None = None,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling clusters (or samples) with replacement."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    sums, counts = _cluster_sums(x, np.ones_like(x), clusters)
    idx = _rng(seed).integers(0, len(sums), size=(n_boot, len(sums)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def _cluster_sums(
    numerator: np.ndarray, denominator: np.ndarray, clusters: Sequence[object] | None
) -> tuple[np.ndarray, np.ndarray]:
    if clusters is None:
        return numerator, denominator
    frame = pd.DataFrame({"num": numerator, "den": denominator, "c": np.asarray(clusters, dtype=object)})
    grouped = frame.groupby("c", sort=False)[["num", "den"]].sum()
    return grouped["num"].to_numpy(), grouped["den"].to_numpy()


def is_binary(values: Iterable[float]) -> bool:
    """True when every (non-NaN) value is exactly 0 or 1."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    return bool(len(x)) and bool(np.all((x == 0) | (x == 1)))


def accuracy_ci(
    scores: Sequence[float],
    clusters: Sequence[object] | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """Mean score with an interval; NaN scores (failed calls) are dropped first.

    Without shared clusters: Wilson for 0/1 scores, else a seeded bootstrap. When some cluster holds
    more than one sample, the clustered SE (Miller 2024) sets a design effect (never below 1, so
    clustering never narrows an interval; with few clusters it can come out spuriously small): 0/1
    scores get a Wilson interval on the effective sample size n / deff, others mean ± z·SE.
    """
    x = np.asarray(scores, dtype=float)
    keep = ~np.isnan(x)
    x = x[keep]
    n = len(x)
    if n == 0:
        return _EMPTY
    mean = float(x.mean())
    groups = None if clusters is None else np.asarray(clusters, dtype=object)[keep]
    clustered = groups is not None and len(pd.unique(groups)) < n
    deff = design_effect(x, groups) if clustered else 1.0
    note = f"design effect {deff:.2f}" if clustered else ""
    if is_binary(x):
        n_eff = n / deff
        low, high = wilson_interval(mean * n_eff, n_eff, confidence)
        return Estimate(mean, low, high, n, "wilson-clustered" if clustered else "wilson", note)
    if clustered:
        se = math.sqrt(deff) * clustered_se(x)
        half = _z(confidence) * se if not math.isnan(se) else math.nan
        return Estimate(mean, max(0.0, mean - half), min(1.0, mean + half), n, "clustered", note)
    low, high = bootstrap_ci(x, seed=seed, n_boot=n_boot, confidence=confidence)
    return Estimate(mean, low, high, n, "bootstrap")


def design_effect(values: Sequence[float], clusters: Sequence[object] | None) -> float:
    """(clustered SE / independent SE)², floored at 1: how much clustering inflates the variance."""
    independent = clustered_se(values)
    with_clusters = clustered_se(values, clusters)
    if math.isnan(independent) or math.isnan(with_clusters) or independent == 0:
        return 1.0
    return max(1.0, (with_clusters / independent) ** 2)


# --- pass@k -------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, stable product form)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1 (got n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem (got n={n})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_table(
    df: pd.DataFrame,
    ks: Sequence[int] = (1,),
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> pd.DataFrame:
    """pass@k per (task, model): per problem over its epochs (failed calls dropped), then the mean over
    problems with a bootstrap interval over problems. k larger than a problem's epochs gives NaN."""
    scored = df[df["score"].notna()]
    rows = []
    for (task, model), group in scored.groupby(["task", "model"], sort=True):
        per_problem = group.groupby("sample_id")["score"].agg(n="size", c=lambda s: int((s >= 1).sum()))
        row: dict[str, object] = {"task": task, "model": model, "problems": len(per_problem)}
        for k in ks:
            usable = per_problem[per_problem["n"] >= k]
            values = [pass_at_k(int(n), int(c), k) for n, c in zip(usable["n"], usable["c"], strict=True)]
            if values:
                low, high = bootstrap_ci(values, seed=seed, n_boot=n_boot, confidence=confidence)
                row |= {f"pass@{k}": float(np.mean(values)), f"pass@{k}_low": low, f"pass@{k}_high": high}
            else:
                row |= {f"pass@{k}": math.nan, f"pass@{k}_low": math.nan, f"pass@{k}_high": math.nan}
        rows.append(row)
    return pd.DataFrame(rows)


# --- paired comparison --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Model A minus model B on the same samples. Accuracies and differences are fractions in [0, 1]."""

    model_a: str
    model_b: str
    task: str | None
    n_pairs: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    low: float
    high: float
    p_value: float
    method: str
    confidence: float = DEFAULT_CONFIDENCE
    dropped_errors: int = 0
    a_only: int = 0
    b_only: int = 0

    @property
    def significant(self) -> bool:
        return bool(self.p_value < 1 - self.confidence)

    def sentence(self) -> str:
        """One line for people, e.g. 'A is 7.2 pp more accurate than B (95% CI 3.1 to 11.3, ...)'."""
        if self.n_pairs == 0:
            return f"{self.model_a} and {self.model_b} share no successfully scored samples to compare"
        pp = 100 * self.difference
        if abs(pp) < 0.05:
            head = f"{self.model_a} is as accurate as {self.model_b}"
        else:
            direction = "more" if pp > 0 else "less"
            head = f"{self.model_a} is {abs(pp):.1f} pp {direction} accurate than {self.model_b}"
        verdict = "significant" if self.significant else "not significant"
        level = f"{100 * self.confidence:g}%"
        return (
            f"{head} ({level} CI {100 * self.low:.1f} to {100 * self.high:.1f}, "
            f"{_format_p(self.p_value)}, n = {self.n_pairs} pairs): {verdict}"
        )

    def __str__(self) -> str:
        return self.sentence()


def _format_p(p: float) -> str:
    if math.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def paired_scores(
    df: pd.DataFrame, model_a: str, model_b: str, task: str | None = None
) -> tuple[pd.DataFrame, int]:
    """Rows of A and B aligned on (task, sample_id, epoch), with the number of pairs dropped because
    either call failed. Columns: score_a, score_b, cluster."""
    data = df if task is None else df[df["task"] == task]
    sides = []
    for model, suffix in ((model_a, "_a"), (model_b, "_b")):
        part = data[data["model"] == model]
        part = part.drop_duplicates(_KEYS, keep="last")  # a re-run of the same sample: the latest wins
        cols = {"score": f"score{suffix}", "cluster": f"cluster{suffix}"}
        part = part.assign(cluster=cluster_ids(part)).rename(columns=cols)
        sides.append(part[[*_KEYS, *cols.values()]])
    merged = sides[0].merge(sides[1], on=_KEYS, how="inner")
    ok = merged["score_a"].notna() & merged["score_b"].notna()
    pairs = merged[ok].rename(columns={"cluster_a": "cluster"}).drop(columns="cluster_b")
    return pairs.reset_index(drop=True), int((~ok).sum())


def cluster_ids(df: pd.DataFrame) -> pd.Series:
    """The cluster of each row, qualified by task; `sample_id` when the column is absent or empty."""
    base = df["cluster"] if "cluster" in df else pd.Series(index=df.index, dtype=object)
    base = base.astype(object).where(base.notna(), df["sample_id"].astype(object))
    return df["task"].astype(str) + "\x1f" + base.astype(str)


def compare_models(
    df: pd.DataFrame,
    model_a: str,
    model_b: str,
    task: str | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> Comparison:
    """Paired comparison of A and B on the samples both answered (pairs with a failed call are dropped).

    Binary scores: McNemar's exact test and a Newcombe (method 10) interval for the paired difference.
    Samples sharing clusters (design effect > 1): the interval widened by √deff and a z test with the
    clustered SE instead. Other metrics: clustered z test, or else a paired bootstrap (centred for the
    p-value).
    """
    _check_present(df, model_a, model_b, task)
    pairs, dropped = paired_scores(df, model_a, model_b, task)
    a = pairs["score_a"].to_numpy(float)
    b = pairs["score_b"].to_numpy(float)
    n = len(a)
    a_only = int(np.sum(a > b))
    b_only = int(np.sum(b > a))
    base = dict(model_a=model_a, model_b=model_b, task=task, n_pairs=n, confidence=confidence)
    base |= dict(dropped_errors=dropped, a_only=a_only, b_only=b_only)
    if n == 0:
        return Comparison(**base, accuracy_a=math.nan, accuracy_b=math.nan, difference=math.nan,
                          low=math.nan, high=math.nan, p_value=math.nan, method="none")  # fmt: skip
    diff = a - b
    clusters = pairs["cluster"].to_numpy(object)
    deff = design_effect(diff, clusters) if len(pd.unique(clusters)) < n else 1.0
    if is_binary(np.concatenate([a, b])):
        low, high = _newcombe_paired(a, b, confidence)
        p, method = mcnemar_exact(a_only, b_only), "mcnemar-exact"
        if deff > 1:  # shared clusters carry less information than their count: widen, and test on z
            low, high = _widen(float(diff.mean()), low, high, math.sqrt(deff))
            p, method = _clustered_z(diff, deff), "clustered-z"
    elif deff > 1:
        low, high, p, method = _clustered_test(diff, deff, confidence)
    else:
        low, high, p = _paired_bootstrap(diff, seed, n_boot, confidence)
        method = "paired-bootstrap"
    return Comparison(**base, accuracy_a=float(a.mean()), accuracy_b=float(b.mean()),
                      difference=float(diff.mean()), low=low, high=high, p_value=p, method=method)  # fmt: skip


def _check_present(df: pd.DataFrame, model_a: str, model_b: str, task: str | None) -> None:
    if task is not None and task not in set(df["task"]):
        known = ", ".join(sorted(map(str, df["task"].unique())))
        raise ConfigError(f"no results for task {task!r}; tasks in these results: {known}", where="task")
    data = df if task is None else df[df["task"] == task]
    present = set(data["model"])
    for model in (model_a, model_b):
        if model not in present:
            known = ", ".join(sorted(map(str, present)))
            raise ConfigError(
                f"no results for model {model!r}; models in these results: {known}", where="model"
            )


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (a binomial test at 1/2)."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    return float(sps.binomtest(a_only, discordant, 0.5).pvalue)


def _newcombe_paired(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Newcombe (1998) method 10: hybrid score interval for a difference of paired proportions."""
    n = len(a)
    n11 = int(np.sum((a == 1) & (b == 1)))
    n10 = int(np.sum((a == 1) & (b == 0)))
    n01 = int(np.sum((a == 0) & (b == 1)))
    n00 = n - n11 - n10 - n01
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = wilson_interval(n11 + n10, n, confidence)
    l2, u2 = wilson_interval(n11 + n01, n, confidence)
    denom = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    cross = n11 * n00 - n10 * n01
    # Newcombe's continuity adjustment of phi: shrink a positive association by n/2, keep a negative one.
    adjusted = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = 0.0 if denom == 0 else adjusted / math.sqrt(denom)
    d = p1 - p2
    dl = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    du = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, d - dl), min(1.0, d + du)


def _widen(centre: float, low: float, high: float, factor: float) -> tuple[float, float]:
    return max(-1.0, centre - factor * (centre - low)), min(1.0, centre + factor * (high - centre))


def _clustered_z(diff: np.ndarray, deff: float) -> float:
    """Two-sided p of a z test on the mean paired difference with the variance inflated by `deff`."""
    se = math.sqrt(deff) * clustered_se(diff)
    mean = float(diff.mean())
    if math.isnan(se) or se == 0:
        return 1.0 if mean == 0 else 0.0
    return float(2 * sps.norm.sf(abs(mean) / se))


def _clustered_test(diff: np.ndarray, deff: float, confidence: float) -> tuple[float, float, float, str]:
    se = math.sqrt(deff) * clustered_se(diff)
    mean = float(diff.mean())
    half = _z(confidence) * se
    return max(-1.0, mean - half), min(1.0, mean + half), _clustered_z(diff, deff), "clustered-z"


def _paired_bootstrap(
    diff: np.ndarray, seed: int, n_boot: int, confidence: float
) -> tuple[float, float, float]:
    idx = _rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    observed = diff.mean()
    centred = means - observed
    p = (1 + np.sum(np.abs(centred) >= abs(observed) - 1e-12)) / (n_boot + 1)
    return float(low), float(high), float(min(1.0, p))


# --- cost ---------------------------------------------------------------------------------------------


def effective_cost(df: pd.DataFrame) -> tuple[pd.Series, int]:
    """₽ per row: the router's `cost_rub`, else the price-card `cost_rub_estimated`; and how many rows
    fell back to the estimate. Rows with neither cost 0 (nothing was billed or known)."""
    router = _numeric(df, "cost_rub")
    estimate = _numeric(df, "cost_rub_estimated")
    fallback = router.isna() & estimate.notna()
    return router.fillna(estimate).fillna(0.0), int(fallback.sum())


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def _cost_note(fallback: int, n: int) -> str:
    if not fallback:
        return ""
    return f"router cost missing for {fallback} of {n} calls; used the price-card estimate there"


def cost_per_1000(
    df: pd.DataFrame,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """₽ per 1000 samples (every call, failed ones included) with a bootstrap interval over clusters."""
    if df.empty:
        return _EMPTY
    cost, fallback = effective_cost(df)
    low, high = bootstrap_ci(cost.to_numpy(), clusters=cluster_ids(df).to_numpy(), seed=seed, n_boot=n_boot,
                             confidence=confidence)  # fmt: skip
    note = _cost_note(fallback, len(df))
    return Estimate(1000 * float(cost.mean()), 1000 * low, 1000 * high, len(df), "bootstrap", note)


def cost_per_correct(
    df: pd.DataFrame,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """₽ spent per correct answer: Σ cost (all calls) / Σ score, a ratio estimator with a cluster
    bootstrap interval. Infinite when nothing was correct."""
    if df.empty:
        return _EMPTY
    cost, fallback = effective_cost(df)
    correct = _numeric(df, "score").fillna(0.0).to_numpy()
    note = _cost_note(fallback, len(df))
    total_correct = correct.sum()
    if total_correct <= 0:
        return Estimate(math.inf, math.nan, math.inf, len(df), "ratio", note or "no correct answers")
    num, den = _cluster_sums(cost.to_numpy(), correct, cluster_ids(df).to_numpy())
    idx = _rng(seed).integers(0, len(num), size=(n_boot, len(num)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    ratios = np.where(np.isnan(ratios), np.inf, ratios)
    alpha = (1 - confidence) / 2
    # inverted_cdf does not interpolate, so a resample with no correct answer (∞) cannot turn into NaN.
    low, high = np.quantile(ratios, [alpha, 1 - alpha], method="inverted_cdf")
    return Estimate(
        float(cost.sum() / total_correct), float(low), float(high), len(df), "ratio-bootstrap", note
    )


# --- latency ------------------------------------------------------------------------------------------

LATENCY_COLUMNS = {"total": "latency_s", "ttft": "ttft_s", "tokens_per_s": "output_tokens_per_s"}


def latency_percentiles(
    df: pd.DataFrame, column: str = "latency_s", percentiles: Sequence[float] = (50, 90, 95)
) -> dict[str, float]:
    """Percentiles of a timing column over successful, non-cached calls: {'p50': ..., 'p90': ...}.

    Cached responses are left out (their timing is a replay, not a measurement) unless every row is
    cached; failed calls are left out (a timeout is not a latency).
    """
    column = LATENCY_COLUMNS.get(column, column)
    values = timing_values(df, column)
    if len(values) == 0:
        return {f"p{p:g}": math.nan for p in percentiles}
    return {f"p{p:g}": float(np.percentile(values, p)) for p in percentiles}


def timing_values(df: pd.DataFrame, column: str) -> np.ndarray:
    if column not in df or df.empty:
        return np.array([])
    ok = df["error"].isna() if "error" in df else pd.Series(True, index=df.index)
    if "from_cache" in df:
        fresh = ok & ~df["from_cache"].fillna(False).astype(bool)
        ok = fresh if fresh.any() else ok
    values = pd.to_numeric(df.loc[ok, column], errors="coerce").to_numpy(float)
    return values[~np.isnan(values)]


def latency_table(df: pd.DataFrame) -> pd.DataFrame:
    """p50/p90/p95 of total latency, TTFT and output tokens/s per (task, model)."""
    rows = []
    for (task, model), group in df.groupby(["task", "model"], sort=True):
        row: dict[str, object] = {"task": task, "model": model}
        for name, column in LATENCY_COLUMNS.items():
            for key, value in latency_percentiles(group, column).items():
                row[f"{name}_{key}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


# --- tables -------------------------------------------------------------------------------------------


def _is_simulated(df: pd.DataFrame) -> bool:
    return bool("simulated" in df and df["simulated"].fillna(False).astype(bool).any())


def group_summary(
    group: pd.DataFrame,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> dict[str, object]:
    """The summary_table row for one group of rows (one task and model)."""
    errors = int(group["error"].notna().sum()) if "error" in group else 0
    acc = accuracy_ci(group["score"].to_numpy(float), cluster_ids(group).to_numpy(), confidence=confidence,
                      seed=seed, n_boot=n_boot)  # fmt: skip
    per_1000 = cost_per_1000(group, confidence=confidence, seed=seed, n_boot=n_boot)
    per_correct = cost_per_correct(group, confidence=confidence, seed=seed, n_boot=n_boot)
    latency = latency_percentiles(group, "latency_s", (50, 95))
    ttft = latency_percentiles(group, "ttft_s", (50, 95))
    cost, fallback = effective_cost(group)
    return {
        "n": len(group), "n_scored": acc.n, "errors": errors, "error_rate": errors / len(group) if len(group) else math.nan,
        "accuracy": acc.value, "accuracy_low": acc.low, "accuracy_high": acc.high, "ci_method": acc.method,
        "latency_p50_s": latency["p50"], "latency_p95_s": latency["p95"],
        "ttft_p50_s": ttft["p50"], "ttft_p95_s": ttft["p95"],
        "total_rub": float(cost.sum()), "rub_per_1000": per_1000.value,
        "rub_per_1000_low": per_1000.low, "rub_per_1000_high": per_1000.high,
        "rub_per_correct": per_correct.value, "rub_per_correct_low": per_correct.low,
        "rub_per_correct_high": per_correct.high, "cost_estimated_calls": fallback,
        **cost_split(group, float(cost.sum())),
        "simulated": _is_simulated(group),
    }  # fmt: skip


_COST_PARTS = {
    "rub_input": "cost_rub_input",
    "rub_output": "cost_rub_output",
    "rub_images": "cost_rub_images",
}


def cost_split(group: pd.DataFrame, total_rub: float) -> dict[str, float]:
    """The billed total split into input tokens, output tokens and images. The router bills one number
    per call, so the split follows the price card's proportions, scaled to what was really billed."""
    parts = {name: float(pd.to_numeric(group[column], errors="coerce").fillna(0).sum()) if column in group else 0.0
             for name, column in _COST_PARTS.items()}  # fmt: skip
    estimated = sum(parts.values())
    if estimated <= 0:
        return dict.fromkeys(_COST_PARTS, math.nan)
    return {name: total_rub * value / estimated for name, value in parts.items()}


def summary_table(
    df: pd.DataFrame,
    by: Sequence[str] = ("task", "model"),
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> pd.DataFrame:
    """One row per group (default: task and model): n (every call), n_scored (calls with an answer),
    errors, error_rate, accuracy with its interval (and the method), latency and TTFT p50/p95 (s), total
    ₽, ₽ per 1000 samples with interval, ₽ per correct answer with interval, how many calls used the
    price-card estimate, the total split into input / output / images (`cost_split`), and whether any
    row is simulated."""
    keys = list(by)
    rows = []
    for values, group in df.groupby(keys, sort=True, dropna=False):
        identity = dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True))
        row = identity | group_summary(group, confidence=confidence, seed=seed, n_boot=n_boot)
        if "score_forgeable" in group:  # code samples whose verdict the program could have decided
            row["n_forgeable"] = int(group["score_forgeable"].fillna(0).sum())
        rows.append(row)
    columns = [*keys, *group_summary(df.iloc[:0]).keys()] if not rows else None
    return pd.DataFrame(rows, columns=columns)


def value_ranking(df: pd.DataFrame, task: str | None = None, *, seed: int = 0) -> pd.DataFrame:
    """summary_table rows (of one task, or all), best value first: the lowest ₽ per correct answer,
    ties broken by higher accuracy. Models with no correct answer come last."""
    data = df if task is None else df[df["task"] == task]
    table = summary_table(data, seed=seed)
    return table.sort_values(["rub_per_correct", "accuracy"], ascending=[True, False]).reset_index(drop=True)


def by_language(
    df: pd.DataFrame, *, long: bool = False, confidence: float = DEFAULT_CONFIDENCE
) -> pd.DataFrame:
    """Accuracy per language for each (task, model), with `macro` (mean over languages) and `micro`
    (mean over samples) averages. Wide by default (a column per language); `long=True` gives one row per
    (task, model, language) with n and the interval. Rows without a language are left out."""
    data = df[df["language"].notna()] if "language" in df else df.iloc[:0]
    rows = []
    for (task, model, language), group in data.groupby(["task", "model", "language"], sort=True):
        acc = accuracy_ci(
            group["score"].to_numpy(float), cluster_ids(group).to_numpy(), confidence=confidence
        )
        rows.append({"task": task, "model": model, "language": language, "n": acc.n,
                     "accuracy": acc.value, "accuracy_low": acc.low, "accuracy_high": acc.high})  # fmt: skip
    table = pd.DataFrame(rows, columns=["task", "model", "language", "n", "accuracy", "accuracy_low",
                                        "accuracy_high"])  # fmt: skip
    if long:
        return table
    if table.empty:
        return pd.DataFrame(columns=["task", "model", "macro", "micro"])
    wide = table.pivot(index=["task", "model"], columns="language", values="accuracy")
    wide.columns.name = None
    wide["macro"] = wide.mean(axis=1, skipna=True)
    micro = data[data["score"].notna()].groupby(["task", "model"])["score"].mean()
    wide["micro"] = micro.reindex(wide.index)
    return wide.reset_index()
