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
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

# the judge audit (its own module) is part of `evalkit.stats`: re-exported by name
from evalkit.audit import (  # noqa: F401
    Agreement,
    BiasCheck,
    cohen_kappa,
    fleiss_kappa,
    human_agreement,
    judge_agreement,
    judge_votes,
    length_preference,
    position_bias,
    replicate_agreement,
    self_preference,
    swapped_pairs,
    verbosity_bias,
)
from evalkit.common.errors import ConfigError

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
    # the standard library's normal quantile (exact to 1 ulp): a run's summary needs no scipy, whose
    # import costs every `evalkit` command about a second
    return NormalDist().inv_cdf(0.5 + confidence / 2)


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
    shared = 0 if groups is None else len(pd.unique(groups))
    clustered = groups is not None and 1 < shared < n
    deff = design_effect(x, groups) if clustered else 1.0
    note = f"design effect {deff:.2f}" if clustered else ""
    if shared == 1 and n > 1:  # no second cluster to compare with: the clustering cannot be measured
        note = (
            "one cluster: its design effect cannot be estimated; the interval treats samples as independent"
        )
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
    problems with a bootstrap interval over problems. A problem with fewer than k answered epochs
    cannot be estimated and is left out: `pass@k_problems` says how many problems each value covers
    (`problems` counts them all); NaN when none has k. Scores must be pass or fail (0/1): a partial
    credit is neither, so such a task is refused rather than counted as failed."""
    scored = df[df["score"].notna()]
    if not is_binary(scored["score"]) and len(scored):
        odd = scored[~scored["score"].isin([0, 1])].iloc[0]
        raise ConfigError(
            f"pass@k needs pass/fail scores (0 or 1); task {odd['task']!r} has {odd['score']:g} "
            f"(sample {odd['sample_id']!r}, model {odd['model']!r})",
            where="pass_at_k_table",
        )
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
            row[f"pass@{k}_problems"] = len(values)
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
    p_adjusted: float = math.nan
    family: int = 1
    language: str | None = None
    unmatched: int = 0

    @property
    def significant(self) -> bool:
        """p < α for this comparison alone; exactly when the interval excludes 0."""
        return bool(self.p_value < 1 - self.confidence)

    @property
    def significant_adjusted(self) -> bool:
        """Holm-adjusted p < α: significant after allowing for the `family` of comparisons."""
        return bool(self.p_adjusted < 1 - self.confidence)

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
        left_out = [f"{self.dropped_errors} pairs with a failed call"] if self.dropped_errors else []
        left_out += [f"{self.unmatched} answers the other model lacks"] if self.unmatched else []
        pairs = f"n = {self.n_pairs} pairs" + (f"; left out: {', '.join(left_out)}" if left_out else "")
        text = (
            f"{head} ({level} CI {100 * self.low:.1f} to {100 * self.high:.1f}, "
            f"{_format_p(self.p_value)}, {pairs}): {verdict}"
        )
        if self.family > 1 and not math.isnan(self.p_adjusted):
            adjusted = "significant" if self.significant_adjusted else "not significant"
            text += (
                f"; Holm-adjusted over {self.family} comparisons: "
                f"{_format_p(self.p_adjusted).replace('p', 'p_adj', 1)}, {adjusted}"
            )
        return text

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

    The interval is always the inversion of the test, so "the interval excludes 0" holds exactly when
    "p < 1 − confidence":
    - binary scores, independent samples: McNemar's asymptotic test (no continuity correction) and
      Tango's score interval, which inverts that same score test (Fagerland et al. 2013 recommend both);
    - samples sharing clusters (design effect > 1), or any other metric: a z test on the mean paired
      difference with the clustered SE (Miller 2024), and the interval mean ± z·SE.
    `seed` and `n_boot` are kept for callers; no comparison resamples any more.
    """
    del seed, n_boot
    _check_present(df, model_a, model_b, task)
    pairs, dropped = paired_scores(df, model_a, model_b, task)
    data = df if task is None else df[df["task"] == task]
    answers = data[data["model"].isin([model_a, model_b])].drop_duplicates(["model", *_KEYS])
    unmatched = len(answers) - 2 * (len(pairs) + dropped) if model_a != model_b else 0
    a = pairs["score_a"].to_numpy(float)
    b = pairs["score_b"].to_numpy(float)
    n = len(a)
    a_only = int(np.sum(a > b))
    b_only = int(np.sum(b > a))
    base = dict(model_a=model_a, model_b=model_b, task=task, n_pairs=n, confidence=confidence)
    base |= dict(dropped_errors=dropped, a_only=a_only, b_only=b_only, unmatched=unmatched)
    if n == 0:
        return Comparison(**base, accuracy_a=math.nan, accuracy_b=math.nan, difference=math.nan,
                          low=math.nan, high=math.nan, p_value=math.nan, method="none")  # fmt: skip
    diff = a - b
    clusters = pairs["cluster"].to_numpy(object)
    deff = design_effect(diff, clusters) if len(pd.unique(clusters)) < n else 1.0
    if is_binary(np.concatenate([a, b])) and deff <= 1:
        low, high = tango_interval(a_only, b_only, n, confidence)
        p, method = mcnemar_p(a_only, b_only), "mcnemar-score"
    else:
        low, high, p, method = _clustered_test(diff, deff, confidence, len(pd.unique(clusters)))
    return Comparison(**base, accuracy_a=float(a.mean()), accuracy_b=float(b.mean()),
                      difference=float(diff.mean()), low=low, high=high, p_value=p, method=method)  # fmt: skip


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided p of McNemar's asymptotic test without continuity correction: z = (b − c)/√(b + c).
    It is the score test of "no difference" that `tango_interval` inverts."""
    from scipy import stats as sps

    if a_only + b_only == 0:
        return 1.0
    return float(2 * sps.norm.sf(abs(a_only - b_only) / math.sqrt(a_only + b_only)))


def tango_score(a_only: int, b_only: int, n: int, delta: float) -> float:
    """Tango's (1998) score statistic for H0: p(A right) − p(B right) = delta, from the discordant counts
    of n pairs. At delta = 0 it equals McNemar's z; it falls as delta rises."""
    b, c = a_only, b_only
    qa, qb, qc = 2 * n, -b - c + (2 * n - b + c) * delta, -c * delta * (1 - delta)
    p01 = (-qb + math.sqrt(max(0.0, qb * qb - 4 * qa * qc))) / (2 * qa)  # the constrained MLE of P(B only)
    variance = n * (2 * p01 + delta * (1 - delta))
    numerator = b - c - n * delta
    if variance <= 0:
        return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def tango_interval(
    a_only: int, b_only: int, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """The deltas Tango's score test does not reject: the interval that agrees with `mcnemar_p`."""
    from scipy.optimize import brentq

    z = _z(confidence)
    estimate = (a_only - b_only) / n

    def bound(target: float, lo: float, hi: float) -> float:
        f = lambda d: tango_score(a_only, b_only, n, d) - target  # noqa: E731
        if f(lo) * f(hi) > 0:  # the statistic never reaches the critical value inside [-1, 1]
            return lo if target > 0 else hi
        return float(brentq(f, lo, hi, xtol=1e-12))

    return bound(z, -1.0, estimate), bound(-z, estimate, 1.0)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: controls the chance of any false "significant" across the family.
    NaN p-values are left NaN and do not count towards the family size."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def adjust(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The same comparisons with Holm-adjusted p-values over the whole family."""
    adjusted = holm([c.p_value for c in comparisons])
    family = int(np.sum(~np.isnan([c.p_value for c in comparisons])))
    return [replace(c, p_adjusted=p, family=family) for c, p in zip(comparisons, adjusted, strict=True)]


def compare_groups(
    df: pd.DataFrame,
    model_a: str,
    model_b: str,
    by: Sequence[str] = ("task", "language"),
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[Comparison]:
    """A paired comparison of A and B in every group (by task, and language when the rows have one)
    where both answered, with Holm-adjusted p-values over the whole family."""
    keys = [k for k in by if k in df and df[k].notna().any()]
    data = df[df["model"].isin([model_a, model_b])]
    found = []
    for values, group in data.groupby(keys, sort=True) if keys else [((), data)]:
        label = dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True))
        if group["model"].nunique() < 2:
            continue
        result = compare_models(group, model_a, model_b, confidence=confidence)
        found.append(replace(result, task=label.get("task"), language=label.get("language")))
    return adjust(found)


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
    from scipy import stats as sps

    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    return float(sps.binomtest(a_only, discordant, 0.5).pvalue)


def _clustered_test(
    diff: np.ndarray, deff: float, confidence: float, units: int
) -> tuple[float, float, float, str]:
    """mean ± z·SE and the two-sided p of the same z: one SE for both, so they always agree.

    When every pair differs by the same amount the SE is 0 and a z test would call any difference
    certain, even from two pairs. Then the exact sign test over the `units` independent clusters
    decides (p = 2 · 2^−units), and its inversion is the interval: the one difference seen when
    p < α, else every difference from −1 to 1."""
    from scipy import stats as sps

    se = math.sqrt(deff) * clustered_se(diff)
    mean = float(diff.mean())
    method = "clustered-z" if deff > 1 else "paired-z"
    if math.isnan(se):  # a single pair: nothing to test
        return math.nan, math.nan, math.nan, method
    if se == 0:  # every pair differs by the same amount
        if mean == 0:
            return 0.0, 0.0, 1.0, method
        p = min(1.0, 2.0 ** (1 - units))
        low, high = (mean, mean) if p < 1 - confidence else (-1.0, 1.0)
        return low, high, p, "sign-exact"
    half = _z(confidence) * se
    p = float(2 * sps.norm.sf(abs(mean) / se))
    return max(-1.0, mean - half), min(1.0, mean + half), p, method


# --- cost ---------------------------------------------------------------------------------------------


def effective_cost(df: pd.DataFrame) -> tuple[pd.Series, int]:
    """₽ per row: the router's `cost_rub`, else the price-card `cost_rub_estimated`; and how many rows
    fell back to the estimate. Rows with neither cost 0 (nothing was billed or known)."""
    router = _numeric(df, "cost_rub")
    estimate = _numeric(df, "cost_rub_estimated")
    fallback = router.isna() & estimate.notna()
    return router.fillna(estimate).fillna(0.0), int(fallback.sum())


def cost_unknown_calls(df: pd.DataFrame) -> int:
    """Answered calls that came back with neither `usage.cost` nor token counts: billed, but for how
    much nothing says, so `effective_cost` counts them 0 and every ₽ total is that much short."""
    if df.empty:
        return 0
    answered = df["error"].isna() if "error" in df else pd.Series(True, index=df.index)
    if "from_cache" in df:  # a replay from the response cache is not billed again
        answered &= ~df["from_cache"].fillna(False).astype(bool)
    unknown = answered & _numeric(df, "cost_rub").isna() & _numeric(df, "cost_rub_estimated").isna()
    return int(unknown.sum())


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
        "cost_unknown_calls": cost_unknown_calls(group),
        **cost_split(group, float(cost.sum())),
        **thinking_and_caching(group, float(cost.sum())),
        **judge_cost(group, cost),
        "simulated": _is_simulated(group),
    }  # fmt: skip


def judge_cost(group: pd.DataFrame, cost: pd.Series) -> dict[str, float]:
    """For a judged task: what the judge cost (`judge_rub`, never mixed into `total_rub`) and ₽ per
    1000 samples with the judge (`rub_per_1000_with_judge`; `rub_per_1000` is without it)."""
    if "judge_setup" not in group or not group["judge_setup"].notna().any():  # not a judged task
        return {}
    judge = _numeric(group, "cost_rub_judge").fillna(_numeric(group, "cost_rub_judge_estimated")).fillna(0.0)
    with_judge = 1000 * float((cost + judge).mean()) if len(group) else math.nan
    return {"judge_rub": float(judge.sum()), "rub_per_1000_with_judge": with_judge}


def thinking_and_caching(group: pd.DataFrame, total_rub: float) -> dict[str, float]:
    """truncated_rate (answers cut at max_tokens, of the answered calls), accuracy_untruncated (the
    accuracy without them: a truncated answer is scored, so both are shown), reasoning_tokens_mean,
    rub_reasoning (the thinking's share of the billed ₽, in the price card's proportions, as in
    `cost_split`), rub_cache_saved (what cached prompt tokens cost less than at the full price, net of
    cache writes; negative when writing the cache cost more than reading it saved) and
    cache_saved_unknown_calls (calls whose cache price the catalog lacks: left out of rub_cache_saved)."""
    answered = group[group["error"].isna()] if "error" in group else group
    truncated = answered["truncated"].fillna(False).astype(bool) if "truncated" in answered else None
    scores = pd.to_numeric(answered["score"], errors="coerce") if "score" in answered else pd.Series()
    kept = scores[~truncated] if truncated is not None else scores
    thinking = (
        pd.to_numeric(answered["reasoning_tokens"], errors="coerce")
        if "reasoning_tokens" in answered
        else None
    )
    estimated = sum(_column_sum(group, column) for column in _COST_PARTS.values())
    share = _column_sum(group, "cost_rub_reasoning") / estimated if estimated > 0 else math.nan
    return {
        "truncated_rate": float(truncated.mean()) if truncated is not None and len(truncated) else 0.0,
        "accuracy_untruncated": float(kept.mean()) if kept.notna().any() else math.nan,
        "reasoning_tokens_mean": float(thinking.mean()) if thinking is not None and thinking.notna().any() else math.nan,
        "rub_reasoning": total_rub * share,
        "rub_cache_saved": _column_sum(group, "cost_rub_cache_saved"),
        "cache_saved_unknown_calls": _cache_saved_unknown(group),
    }  # fmt: skip


def _cache_saved_unknown(group: pd.DataFrame) -> int:
    """Calls that read or wrote the prompt cache, priced by a card without that cache price: what the
    cache saved on them is unknown, so `rub_cache_saved` covers only the others."""
    if "cost_rub_cache_saved" not in group or "cost_rub_estimated" not in group:
        return 0
    cache = _numeric(group, "cached_tokens").fillna(0) + _numeric(group, "cache_write_tokens").fillna(0)
    unknown = (
        (cache > 0)
        & _numeric(group, "cost_rub_estimated").notna()
        & _numeric(group, "cost_rub_cache_saved").isna()
    )
    return int(unknown.sum())


_COST_PARTS = {
    "rub_input": "cost_rub_input",
    "rub_output": "cost_rub_output",
    "rub_images": "cost_rub_images",
}


def _column_sum(group: pd.DataFrame, column: str) -> float:
    return float(pd.to_numeric(group[column], errors="coerce").fillna(0).sum()) if column in group else 0.0


def cost_split(group: pd.DataFrame, total_rub: float) -> dict[str, float]:
    """The billed total split into input tokens, output tokens and images. The router bills one number
    per call, so the split follows the price card's proportions, scaled to what was really billed."""
    parts = {name: _column_sum(group, column) for name, column in _COST_PARTS.items()}
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
    price-card estimate and how many had no cost at all (`cost_unknown_calls`, counted 0), the total
    split into input / output / images (`cost_split`), thinking and caching (`thinking_and_caching`:
    truncated_rate, accuracy_untruncated, reasoning_tokens_mean, rub_reasoning, rub_cache_saved,
    cache_saved_unknown_calls), and whether any row is simulated."""
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
    (task, model, language) with n, the interval, and a paired comparison with the best model of that
    task and language: `vs_best`, `p_vs_best` and `p_vs_best_holm` (Holm-adjusted over every row
    compared, since with many models × languages some p < 0.05 turn up by chance). Rows without a
    language are left out."""
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
        return _versus_best(data, table, confidence)
    if table.empty:
        return pd.DataFrame(columns=["task", "model", "macro", "micro"])
    wide = table.pivot(index=["task", "model"], columns="language", values="accuracy")
    wide.columns.name = None
    wide["macro"] = wide.mean(axis=1, skipna=True)
    micro = data[data["score"].notna()].groupby(["task", "model"])["score"].mean()
    wide["micro"] = micro.reindex(wide.index)
    return wide.reset_index()


def _versus_best(data: pd.DataFrame, table: pd.DataFrame, confidence: float) -> pd.DataFrame:
    versus, p_values = [], []
    groups = {key: group for key, group in data.groupby(["task", "language"], sort=False)}
    best = table.sort_values("accuracy", ascending=False, kind="stable").drop_duplicates(["task", "language"])
    leader = {(r.task, r.language): r.model for r in best.itertuples()}
    for r in table.itertuples():
        top = leader[(r.task, r.language)]
        if top == r.model or math.isnan(r.accuracy):
            versus.append(None)
            p_values.append(math.nan)
            continue
        versus.append(top)
        p_values.append(
            compare_models(groups[(r.task, r.language)], top, r.model, confidence=confidence).p_value
        )
    return table.assign(vs_best=versus, p_vs_best=p_values, p_vs_best_holm=holm(p_values))


# --- planning: how many samples (and rubles) to tell two models apart --------------------------------


@dataclass(frozen=True)
class Plan:
    """Paired samples needed to detect a difference `delta` between A and B with the test
    `compare_models` runs, and what running them costs in ₽ per model."""

    model_a: str
    model_b: str
    delta: float
    power: float
    alpha: float
    discordance: float
    design_effect: float
    cluster_size: float
    n_independent: int
    n_samples: int
    rub_per_sample: dict[str, float]
    source: str
    task: str | None = None

    @property
    def intraclass_correlation(self) -> float:
        """The within-cluster correlation of the paired difference implied by the design effect:
        deff = 1 + (m − 1)·ρ for clusters of m samples (0 without clusters)."""
        if self.cluster_size <= 1:
            return 0.0
        return (self.design_effect - 1) / (self.cluster_size - 1)

    @property
    def cost_rub(self) -> dict[str, float]:
        """₽ for `n_samples` of each model (NaN where no price is known)."""
        return {model: self.n_samples * rub for model, rub in self.rub_per_sample.items()}

    @property
    def total_rub(self) -> float:
        return float(sum(self.cost_rub.values()))

    def sentence(self) -> str:
        """'to tell A from B at a 5.0 pp difference you need 620 samples ≈ 12.40 ₽ (...)'."""
        clusters = f", design effect {self.design_effect:.2f}" if self.design_effect > 1 else ""
        terms = f"power {self.power:.0%}, α {self.alpha:g}, paired{clusters}"
        head = (
            f"to tell {self.model_a} from {self.model_b} at a {100 * self.delta:.1f} pp difference you need "
            f"{self.n_samples} samples"
        )
        if all(math.isnan(rub) for rub in self.rub_per_sample.values()):
            return f"{head} ({terms}; no prices without a pilot run)"
        money = " + ".join(f"{_rub(rub)} ₽ {model}" for model, rub in self.cost_rub.items())
        return f"{head} ≈ {_rub(self.total_rub)} ₽ ({money}; {terms})"

    def shortfall(self, available: int, what: str) -> str | None:
        """A plain warning when `what` (e.g. "task 'mgsm'") has fewer samples than the plan needs, with
        what all of them can detect at the plan's power; None when they suffice."""
        if available >= self.n_samples:
            return None
        head = f"the plan needs {self.n_samples} samples but {what} has only {available}"
        reach = detectable_difference(
            available, self.discordance, power=self.power, alpha=self.alpha, design_effect=self.design_effect
        )
        if math.isnan(reach):
            return (
                f"{head}: with all of them no difference up to {100 * self.discordance:.1f} pp (the share of "
                f"samples the two disagree on) reaches power {self.power:.0%}"
            )
        return (
            f"{head}: with all of them the smallest difference detectable at power {self.power:.0%} is "
            f"{100 * reach:.1f} pp, not {100 * self.delta:.1f} pp"
        )

    def __str__(self) -> str:
        return self.sentence()


def _rub(value: float) -> str:
    if math.isnan(value):
        return "?"
    return f"{value:,.0f}".replace(",", " ") if value >= 100 else f"{value:.2f}"


def paired_sample_size(delta: float, discordance: float, *, power: float = 0.8, alpha: float = 0.05) -> float:
    """Independent pairs for McNemar's test to detect p(A) − p(B) = delta with this power, where
    `discordance` is P(A and B disagree) (Connor 1987): n = (z_α/2·√ψ + z_β·√(ψ − δ²))² / δ²."""
    if not 0 < abs(delta) <= discordance <= 1:
        raise ConfigError(
            f"needs 0 < |delta| <= discordance <= 1 (got delta={delta:g}, discordance={discordance:g}): "
            "two models can differ by at most the share of samples where they disagree",
            where="plan",
        )
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ConfigError(f"power and alpha must lie in (0, 1) (got {power:g}, {alpha:g})", where="plan")
    za, zb = _z(1 - alpha), NormalDist().inv_cdf(power)
    return (za * math.sqrt(discordance) + zb * math.sqrt(discordance - delta**2)) ** 2 / delta**2


def mcnemar_power(n: int, delta: float, discordance: float, *, alpha: float = 0.05) -> float:
    """The exact power of `mcnemar_p` (the test `compare_models` runs on independent pairs) with n pairs,
    P(A only) − P(B only) = delta and P(A only) + P(B only) = discordance: summed over the binomial
    number of discordant pairs, not a normal approximation."""
    from scipy import stats as sps

    d = np.arange(1, n + 1)
    z = _z(1 - alpha)
    share = (discordance + abs(delta)) / (2 * discordance)  # P(A only | the pair disagrees)
    upper = sps.binom.sf(np.floor((d + z * np.sqrt(d)) / 2), d, share)  # A only > (d + z√d) / 2
    lower = sps.binom.cdf(np.ceil((d - z * np.sqrt(d)) / 2) - 1, d, share)  # A only < (d − z√d) / 2
    return float(np.sum(sps.binom.pmf(d, n, discordance) * (upper + lower)))


_EXACT_UP_TO = 20_000  # pairs; past this the normal approximation is as good and the sum slower


def _exact_sample_size(n_approx: float, delta: float, discordance: float, power: float, alpha: float) -> int:
    """The fewest pairs whose exact McNemar power reaches `power`, searched from the normal
    approximation, which overshoots (up to 15 points of power) when the disagreements mostly go one
    way. Power rises with n in a sawtooth; the search stops at the first n below that falls short."""
    n = max(2, math.ceil(n_approx - 1e-9))
    if n > _EXACT_UP_TO or discordance >= 1:
        return n
    while mcnemar_power(n, delta, discordance, alpha=alpha) < power:
        n += 1
    while n > 2 and mcnemar_power(n - 1, delta, discordance, alpha=alpha) >= power:
        n -= 1
    return n


def detectable_difference(
    n_samples: int, discordance: float, *, power: float = 0.8, alpha: float = 0.05, design_effect: float = 1.0
) -> float:
    """The smallest |p(A) − p(B)| that `n_samples` paired samples detect with this power, the inverse of
    `paired_sample_size` (n / design effect independent pairs); NaN when even a difference as large as
    the `discordance` allows needs more."""
    from scipy.optimize import brentq

    pairs = n_samples / max(1.0, design_effect)
    if pairs <= 0 or discordance <= 0:
        return math.nan
    need = lambda d: paired_sample_size(d, discordance, power=power, alpha=alpha) - pairs  # noqa: E731
    if need(discordance) > 0:  # falls as the difference grows: the largest possible one is out of reach
        return math.nan
    return float(brentq(need, discordance * 1e-9, discordance, xtol=1e-12))


def plan(
    df: pd.DataFrame | None = None,
    model_a: str | None = None,
    model_b: str | None = None,
    *,
    task: str | None = None,
    delta: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    accuracy_a: float | None = None,
    accuracy_b: float | None = None,
    correlation: float = 0.0,
    design_effect: float = 1.0,
    cluster_size: float = 1.0,
    catalog: object | None = None,
    rub_per_sample: dict[str, float] | None = None,
) -> Plan:
    """How many samples it takes to tell A from B, and what that costs in ₽.

    From a pilot (`df` with both models): the discordance, the design effect of the paired difference
    over the task's clusters and each model's ₽ per sample are measured there; `delta` defaults to the
    difference the pilot saw. ₽ come from the price cards in `catalog` applied to the pilot's real token
    counts, else from what the pilot was billed. Without a pilot, give `accuracy_a`, `accuracy_b` (and
    the `correlation` of their right/wrong answers, 0 by default; a `design_effect` if samples cluster).

    Independent pairs: the fewest whose exact McNemar power reaches `power` (`mcnemar_power`); with
    clusters, Connor's count × the design effect, rounded up (the pilot's cluster sizes are assumed to
    hold in the full run).
    """
    if df is not None:
        if model_a is None or model_b is None:
            raise ConfigError("plan from a pilot needs model_a and model_b", where="plan")
        return _plan_from_pilot(df, model_a, model_b, task, delta, power, alpha, catalog)
    if accuracy_a is None or accuracy_b is None:
        raise ConfigError("plan needs a pilot DataFrame or both accuracy_a and accuracy_b", where="plan")
    for name, value in (("accuracy_a", accuracy_a), ("accuracy_b", accuracy_b)):
        if not 0 <= value <= 1:
            raise ConfigError(f"{name} is a fraction in [0, 1], got {value:g}", where="plan")
    both = accuracy_a * accuracy_b + correlation * math.sqrt(
        accuracy_a * (1 - accuracy_a) * accuracy_b * (1 - accuracy_b)
    )
    discordance = accuracy_a + accuracy_b - 2 * both
    delta = accuracy_a - accuracy_b if delta is None else delta
    names = (model_a or "A", model_b or "B")
    prices = rub_per_sample or dict.fromkeys(names, math.nan)
    return _make_plan(names, task, delta, power, alpha, discordance, max(1.0, design_effect), cluster_size,
                      prices, "stated accuracies")  # fmt: skip


def _make_plan(names, task, delta, power, alpha, discordance, deff, cluster_size, prices, source) -> Plan:
    n_independent = paired_sample_size(delta, discordance, power=power, alpha=alpha)
    if deff <= 1:  # independent pairs are tested by McNemar's test, whose power can be summed exactly
        n_independent = _exact_sample_size(n_independent, delta, discordance, power, alpha)
    n_samples = n_independent * deff
    if cluster_size > 1:  # whole clusters: a paragraph's questions come together
        n_samples = math.ceil(n_samples / cluster_size - 1e-9) * cluster_size
    return Plan(model_a=names[0], model_b=names[1], task=task, delta=abs(delta), power=power, alpha=alpha,
                discordance=discordance, design_effect=deff, cluster_size=cluster_size,
                n_independent=math.ceil(n_independent - 1e-9), n_samples=math.ceil(n_samples - 1e-9),
                rub_per_sample=prices, source=source)  # fmt: skip


def _plan_from_pilot(df, model_a, model_b, task, delta, power, alpha, catalog) -> Plan:
    _check_present(df, model_a, model_b, task)
    pairs, _ = paired_scores(df, model_a, model_b, task)
    if len(pairs) < 2:
        raise ConfigError(f"the pilot has {len(pairs)} scored pairs of {model_a} and {model_b}", where="plan")
    diff = (pairs["score_a"] - pairs["score_b"]).to_numpy(float)
    if not is_binary(np.concatenate([pairs["score_a"], pairs["score_b"]])):
        raise ConfigError("plan needs 0/1 scores (accuracy); this task scores on a scale", where="plan")
    clusters = pairs["cluster"].to_numpy(object)
    deff = design_effect(diff, clusters)
    cluster_size = len(pairs) / len(pd.unique(clusters))
    observed = float(diff.mean())
    if delta is None:
        if observed == 0:
            raise ConfigError("the pilot shows no difference; give the delta to detect", where="plan")
        delta = observed
    data = df if task is None else df[df["task"] == task]
    prices = {
        model: _rub_per_sample(data[data["model"] == model], model, catalog) for model in (model_a, model_b)
    }
    carded = [m for m in (model_a, model_b) if catalog is not None and catalog.get(_router_id(m)) is not None]  # type: ignore[attr-defined]
    source = "pilot; ₽ from price cards × the pilot's tokens" if len(carded) == 2 else (
        "pilot; ₽ as the pilot was billed" + (f" ({', '.join(carded)} from its price card)" if carded else "")
    )  # fmt: skip
    return _make_plan((model_a, model_b), task, delta, power, alpha, float(np.mean(diff != 0)), deff,
                      cluster_size, prices, source)  # fmt: skip


def _router_id(model: str) -> str:
    """The router's id of a model or of a variant of it (`id@effort=high`)."""
    from evalkit.client.variants import parse_variant

    return parse_variant(model).router_id


def _rub_per_sample(rows: pd.DataFrame, model: str, catalog: object | None) -> float:
    """Mean ₽ of one call: the price card applied to the pilot's mean token and image counts, or
    (no catalog, or the model missing from it) the mean the pilot was billed."""
    info = catalog.get(_router_id(model)) if catalog is not None else None  # type: ignore[attr-defined]
    if info is None:
        return float(effective_cost(rows)[0].mean()) if len(rows) else math.nan
    prompt = float(_numeric(rows, "prompt_tokens").mean())
    completion = float(_numeric(rows, "completion_tokens").mean())
    images = float(_numeric(rows, "images").fillna(0).mean())
    if math.isnan(prompt) or math.isnan(completion):
        return float(effective_cost(rows)[0].mean())
    card = info.pricing
    return prompt * card.prompt + completion * card.completion + images * card.image
