"""Judge audit statistics: how far a judge's verdicts can be trusted (re-exported by `evalkit.stats`).

    votes = stats.judge_votes(df)                       # one row per judge call of a judged run
    stats.replicate_agreement(votes)                    # each judge with itself: Fleiss' kappa [95% CI]
    stats.judge_agreement(votes)                        # judges with each other
    stats.human_agreement(verdicts, labels)             # a judge against human labels
    stats.position_bias(*stats.swapped_pairs(votes))    # pairwise: does the verdict follow the order?
    stats.verbosity_bias(verdicts, lengths, reference)  # are long wrong answers passed more often?
    stats.length_preference(values, longer, reference)  # pairwise: does the longer answer win unearned?
    stats.self_preference(verdicts, reference, own)     # does the judge favour its own answers?

Agreement is chance-corrected (Cohen's kappa for two raters, Fleiss' kappa for more) with a percentile
bootstrap interval over items (fixed seed: the same numbers every time). Each bias check returns a
`BiasCheck` whose interval is the inversion of its own test, so `flagged` (p < alpha) holds exactly
when the interval excludes the no-bias value. Pure functions of their inputs; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
BOOTSTRAP = 2000
_PASS = {"pass": 1.0, "fail": 0.0}


@dataclass(frozen=True)
class Agreement:
    """A chance-corrected agreement statistic with its interval."""

    statistic: str  # "cohen_kappa" or "fleiss_kappa"
    value: float
    low: float
    high: float
    observed: float  # raw share of agreeing pairs of ratings
    n_items: int
    n_raters: int

    def sentence(self) -> str:
        return (
            f"{self.statistic.replace('_', ' ')} {self.value:.2f} [{self.low:.2f}, {self.high:.2f}] "
            f"({self.n_items} items, {self.n_raters} raters, raw agreement {self.observed:.1%})"
        )


@dataclass(frozen=True)
class BiasCheck:
    """One bias test: `effect` (0 means no bias) with its interval and p-value; all NaN (and not
    flagged) when there was nothing to test: never a "no bias found" made of no data."""

    name: str
    effect: float
    low: float
    high: float
    p_value: float
    n: int
    flagged: bool
    detail: str

    def sentence(self) -> str:
        if math.isnan(self.p_value):
            return f"{self.name}: cannot be checked ({self.detail})"
        verdict = "BIAS FOUND" if self.flagged else "no bias found"
        return (
            f"{self.name}: {verdict}; effect {self.effect:+.3f} [{self.low:+.3f}, {self.high:+.3f}], "
            f"p={self.p_value:.3g}, n={self.n} ({self.detail})"
        )


# --- agreement -------------------------------------------------------------------------------------


def _codes(ratings: np.ndarray) -> tuple[np.ndarray, int]:
    flat = ratings.ravel()
    missing = np.array([r is None or (isinstance(r, float) and math.isnan(r)) for r in flat])
    if missing.any():
        raise ValueError("ratings hold missing values; drop those items first")
    categories = sorted({str(r) for r in flat})
    lookup = {c: i for i, c in enumerate(categories)}
    return np.array([lookup[str(r)] for r in flat]).reshape(ratings.shape), len(categories)


def _fleiss(counts: np.ndarray) -> tuple[float, float]:
    """(kappa, observed agreement) from an items × categories count table (equal raters per item)."""
    raters = counts.sum(axis=1)[0]
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (raters * (raters - 1))
    observed = float(p_item.mean())
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    if expected >= 1.0:
        return math.nan, observed
    return (observed - expected) / (1 - expected), observed


def _cohen(a: np.ndarray, b: np.ndarray, k: int) -> tuple[float, float]:
    observed = float((a == b).mean())
    pa = np.bincount(a, minlength=k) / len(a)
    pb = np.bincount(b, minlength=k) / len(b)
    expected = float((pa * pb).sum())
    if expected >= 1.0:
        return math.nan, observed
    return (observed - expected) / (1 - expected), observed


def _boot(stat: Any, n: int, seed: int, n_boot: int, confidence: float) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    undefined = np.isnan(values)
    # Resamples where kappa is undefined (one category only) cannot just be dropped: on a few items
    # they are common, and the rest claim certainty ([1.00, 1.00] on 2 items). No interval then.
    if undefined.mean() > 1 - confidence:
        return math.nan, math.nan
    values = values[~undefined]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def cohen_kappa(
    a: Sequence[Any],
    b: Sequence[Any],
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    n_boot: int = BOOTSTRAP,
) -> Agreement:
    """Cohen's kappa between two raters' labels of the same items, with a bootstrap interval."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("cohen_kappa needs two equally long sequences of at least 2 labels")
    codes, k = _codes(np.array([list(a), list(b)], dtype=object).T)
    x, y = codes[:, 0], codes[:, 1]
    value, observed = _cohen(x, y, k)
    low, high = _boot(lambda i: _cohen(x[i], y[i], k)[0], len(x), seed, n_boot, confidence)
    return Agreement("cohen_kappa", value, low, high, observed, len(x), 2)


def fleiss_kappa(
    ratings: Sequence[Sequence[Any]],
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    n_boot: int = BOOTSTRAP,
) -> Agreement:
    """Fleiss' kappa of items × raters labels (every item rated by the same number of raters, ≥ 2)."""
    table = np.array([list(r) for r in ratings], dtype=object)
    if table.ndim != 2 or table.shape[0] < 2 or table.shape[1] < 2:
        raise ValueError("fleiss_kappa needs at least 2 items, each rated by the same number (≥ 2) of raters")
    codes, k = _codes(table)
    counts = np.stack([(codes == c).sum(axis=1) for c in range(k)], axis=1)
    value, observed = _fleiss(counts)
    low, high = _boot(lambda i: _fleiss(counts[i])[0], len(counts), seed, n_boot, confidence)
    return Agreement("fleiss_kappa", value, low, high, observed, table.shape[0], table.shape[1])


# --- from a judged run -----------------------------------------------------------------------------


VOTE_COLUMNS = ["task", "model", "sample_id", "epoch", "language", "judge", "replicate", "order", "verdict"]


def judge_votes(df: pd.DataFrame) -> pd.DataFrame:
    """One row per judge verdict of a judged run (`judge_votes` column): task, model, sample_id, epoch,
    language, judge, replicate, order ("ab", "ba" or None), verdict ("pass"/"fail" or "a"/"b"/"tie"
    as the judge saw the answers), and `value` (pass 1, fail 0; pairwise: 1 when the tested model's
    answer won, 0.5 a tie, 0 a loss)."""
    import pandas as pd

    rows = []
    if "judge_votes" in df:
        for record in df.to_dict("records"):
            for vote in record.get("judge_votes") or []:
                rows.append({
                    **{c: record.get(c) for c in VOTE_COLUMNS[:5]},
                    **{c: vote.get(c) for c in VOTE_COLUMNS[5:]},
                    "value": vote.get("value"),
                })  # fmt: skip
    return pd.DataFrame(rows, columns=[*VOTE_COLUMNS, "value"])


_ITEM = ["task", "model", "sample_id", "epoch", "order"]


def replicate_agreement(votes: pd.DataFrame, **options: Any) -> dict[str, Agreement]:
    """Per judge, Fleiss' kappa across its k replicates of each item (needs k ≥ 2)."""
    found = {}
    for judge, rows in votes.groupby("judge", sort=True):
        table = rows.pivot_table(
            index=[c for c in _ITEM if rows[c].notna().any()], columns="replicate", values="verdict",
            aggfunc="first",
        ).dropna()  # fmt: skip
        if table.shape[1] >= 2 and len(table) >= 2:
            found[str(judge)] = fleiss_kappa(table.to_numpy(), **options)
    return found


def judge_agreement(votes: pd.DataFrame, **options: Any) -> Agreement:
    """Agreement between judges on the same items (each judge's first replicate): Cohen's kappa for
    two judges, Fleiss' kappa for more."""
    first = votes[votes["replicate"] == votes["replicate"].min()]
    table = first.pivot_table(
        index=[c for c in _ITEM if first[c].notna().any()], columns="judge", values="verdict", aggfunc="first"
    ).dropna()  # fmt: skip
    if table.shape[1] < 2:
        raise ValueError("judge_agreement needs the verdicts of at least two judges")
    if table.shape[1] == 2:
        return cohen_kappa(table.iloc[:, 0].tolist(), table.iloc[:, 1].tolist(), **options)
    return fleiss_kappa(table.to_numpy(), **options)


def human_agreement(
    verdicts: Sequence[str], labels: Sequence[str], **options: Any
) -> tuple[Agreement, tuple[float, float, float]]:
    """A judge against human labels: Cohen's kappa [CI], and accuracy with its Wilson interval."""
    from scipy import stats as sps

    kappa = cohen_kappa(verdicts, labels, **options)
    right = sum(str(v) == str(h) for v, h in zip(verdicts, labels, strict=True))
    wilson = sps.binomtest(right, len(labels)).proportion_ci(options.get("confidence", CONFIDENCE), "wilson")
    return kappa, (right / len(labels), float(wilson.low), float(wilson.high))


def swapped_pairs(votes: pd.DataFrame, judge: str | None = None) -> tuple[list[str], list[str]]:
    """From a pairwise run's votes (`judge_votes`): each pair's verdict in order "ab" and in order "ba",
    as the judge saw them, ready for `position_bias` (one judge: `judge`, else every judge)."""
    rows = votes[votes["order"].isin(["ab", "ba"])]
    if judge is not None:
        rows = rows[rows["judge"] == judge]
    table = rows.pivot_table(
        index=["task", "model", "sample_id", "epoch", "judge", "replicate"], columns="order", values="verdict",
        aggfunc="first",
    ).dropna()  # fmt: skip
    if table.empty:
        return [], []
    return table["ab"].tolist(), table["ba"].tolist()


# --- biases ----------------------------------------------------------------------------------------


_SWAP = {"a": "b", "b": "a", "tie": "tie"}


def position_bias(first: Sequence[str], swapped: Sequence[str], *, alpha: float = 0.05) -> BiasCheck:
    """Pairwise verdicts of the same pairs shown in both orders (each as the judge saw it: "a" means
    the first shown). A judge that reads content picks the same answer in both orders; one swayed by
    position picks the same *slot* twice (a/a or b/b). Without position bias a/a and b/b are equally
    likely: an exact sign test on those counts. `effect` is the share of a/a among them minus 0.5,
    with the Clopper-Pearson interval (which inverts this doubled-tail test)."""
    if len(first) != len(swapped):
        raise ValueError("position_bias needs the two orders' verdicts of the same pairs")
    aa = sum(1 for x, y in zip(first, swapped, strict=True) if x == "a" and y == "a")
    bb = sum(1 for x, y in zip(first, swapped, strict=True) if x == "b" and y == "b")
    consistent = sum(1 for x, y in zip(first, swapped, strict=True) if _SWAP.get(x) == y)
    n = aa + bb
    detail = f"{consistent}/{len(first)} pairs consistent under swap; slot A twice {aa}, slot B twice {bb}"
    if not first:  # e.g. a pairwise run without `swap`
        return _untestable("position bias", 0, "no pair was judged in both orders (pairwise with swap)")
    if n == 0:  # every pair kept its verdict under the swap: no sign of position bias
        return BiasCheck("position bias", 0.0, -0.5, 0.5, 1.0, 0, False, detail)
    return _sign_test("position bias", aa, n, alpha, detail)


def _untestable(name: str, n: int, why: str) -> BiasCheck:
    return BiasCheck(name, math.nan, math.nan, math.nan, math.nan, n, False, why)


def _two_means(x: np.ndarray, y: np.ndarray, alpha: float, bound: float) -> tuple[float, float, float, float]:
    """Difference of means with the z test under the null (both groups one population: the pooled
    variance) and the interval that inverts it. The pooled variance, not each group's own, because on
    few answers a group's own variance is often 0 (all passed): that claimed certainty (p=0 on 4
    answers) and flagged fair judges too often."""
    from scipy import stats as sps

    diff = float(x.mean() - y.mean())
    pooled = np.concatenate([x, y]).var(ddof=1)
    se = math.sqrt(pooled * (1 / len(x) + 1 / len(y)))
    if not se > 0:  # every value the same: no difference, and nothing to test
        return diff, diff, diff, 1.0
    z = float(sps.norm.ppf(1 - alpha / 2))
    p = float(2 * sps.norm.sf(abs(diff) / se))
    return diff, max(diff - z * se, -bound), min(diff + z * se, bound), p  # a difference within ±bound


def _binary(values: Sequence[Any]) -> np.ndarray:
    return np.array([_PASS.get(str(v).casefold(), v) for v in values], dtype=float)


def verbosity_bias(
    verdicts: Sequence[Any],
    lengths: Sequence[float],
    reference: Sequence[Any] | None = None,
    *,
    alpha: float = 0.05,
) -> BiasCheck:
    """Are long answers passed more often than short ones that deserve the same verdict?

    With `reference` (human labels or a trusted judge), among the answers the reference FAILS: the pass
    rate of the longer half minus that of the shorter half (split at the median length). Without it,
    the same over all answers, which also moves when long answers are simply better: say so when you
    report it. A z test on the difference, whose interval it inverts."""
    v, lengths_ = _binary(verdicts), np.asarray(lengths, dtype=float)
    keep = np.ones(len(v), dtype=bool) if reference is None else _binary(reference) == 0
    v, lengths_ = v[keep], lengths_[keep]
    long = lengths_ > np.median(lengths_)
    if long.sum() < 2 or (~long).sum() < 2:
        return _untestable("verbosity bias", len(v), "too few answers: fewer than 2 on a side of the median")
    diff, low, high, p = _two_means(v[long], v[~long], alpha, bound=1.0)
    among = (
        "answers the reference fails" if reference is not None else "all answers (no reference: confounded)"
    )
    detail = f"pass rate long {v[long].mean():.1%} vs short {v[~long].mean():.1%} among {among}"
    return BiasCheck("verbosity bias", diff, low, high, p, len(v), p < alpha, detail)


def length_preference(
    values: Sequence[float],
    tested_longer: Sequence[bool],
    reference: Sequence[float] | None = None,
    *,
    alpha: float = 0.05,
) -> BiasCheck:
    """Pairwise: does the judge prefer the longer of two answers more than it deserves?

    `values`: per pair, the judge's value for the tested answer (1 a win, 0.5 a tie, 0 a loss: a
    pairwise run's `score`, or a vote's `value`); `tested_longer`: whether the tested answer is the
    longer of the two (leave out pairs of equal length); `reference`: the same pairs' values from a
    reference (human preferences, or a trusted judge). Each value is read as the longer answer's.
    With `reference`, among the pairs where the judge and the reference differ: the share where the
    judge favours the longer answer more, minus 0.5. Without it, among the judge's decisive verdicts:
    the share the longer answer wins, minus 0.5, which also moves when longer answers are simply
    better: say so when you report it. An exact sign test; the Clopper-Pearson interval inverts it."""
    longer = np.asarray(tested_longer, dtype=bool)
    judged = _for_longer(values, longer)
    if reference is None:
        decisive = judged[judged != 0.5]
        up, n = int((decisive == 1).sum()), len(decisive)
        among = "decisive verdicts, no reference: confounded with quality"
    else:
        if len(reference) != len(judged):
            raise ValueError("length_preference needs the reference's values of the same pairs")
        excess = judged - _for_longer(reference, longer)
        up, n = int((excess > 0).sum()), int((excess != 0).sum())
        among = "pairs where the judge and the reference differ"
    detail = f"the longer answer favoured in {up}/{n} {among}"
    if n == 0 and reference is not None and len(judged):  # the judge agreed with the reference on every pair
        return BiasCheck("length preference", 0.0, -0.5, 0.5, 1.0, 0, False, detail)
    if n == 0:
        return _untestable("length preference", len(judged), f"no pair to test among {among}")
    return _sign_test("length preference", up, n, alpha, detail)


def _for_longer(values: Sequence[Any], tested_longer: np.ndarray) -> np.ndarray:
    """Each pair's value for its longer answer (a tie stays 0.5)."""
    v = np.asarray(values, dtype=float)
    if len(v) != len(tested_longer):
        raise ValueError("length_preference needs one tested_longer per pair")
    if np.isnan(v).any():
        raise ValueError("length_preference got a missing value: leave out the pairs without a verdict")
    return np.where(tested_longer, v, 1.0 - v)


def _sign_test(name: str, up: int, n: int, alpha: float, detail: str) -> BiasCheck:
    """`up` of `n` against a fair coin: exact two-sided p, Clopper-Pearson interval, as share − 0.5."""
    from scipy import stats as sps

    p = min(1.0, 2 * min(sps.binom.cdf(up, n, 0.5), sps.binom.sf(up - 1, n, 0.5)))
    low = 0.0 if up == 0 else float(sps.beta.ppf(alpha / 2, up, n - up + 1))
    high = 1.0 if up == n else float(sps.beta.ppf(1 - alpha / 2, up + 1, n - up))
    return BiasCheck(name, up / n - 0.5, low - 0.5, high - 0.5, float(p), n, p < alpha, detail)


def self_preference(
    verdicts: Sequence[Any],
    reference: Sequence[Any],
    own: Sequence[bool],
    *,
    alpha: float = 0.05,
) -> BiasCheck:
    """Does a judge that is also a tested model favour its own answers? Its excess over the reference
    (verdict minus reference: human labels, another judge, or a panel) on its own answers, minus the same
    excess on the other models' answers. A z test on the difference, whose interval it inverts."""
    excess = _binary(verdicts) - _binary(reference)
    mine = np.asarray(own, dtype=bool)
    if mine.sum() < 2 or (~mine).sum() < 2:
        return _untestable("self-preference", len(excess), "too few answers: fewer than 2 own or other")
    diff, low, high, p = _two_means(excess[mine], excess[~mine], alpha, bound=2.0)
    detail = f"excess over the reference: own answers {excess[mine].mean():+.3f}, others {excess[~mine].mean():+.3f}"
    return BiasCheck("self-preference", diff, low, high, p, len(excess), p < alpha, detail)


__all__ = [
    "Agreement",
    "BiasCheck",
    "cohen_kappa",
    "fleiss_kappa",
    "human_agreement",
    "judge_agreement",
    "judge_votes",
    "length_preference",
    "position_bias",
    "replicate_agreement",
    "self_preference",
    "swapped_pairs",
    "verbosity_bias",
]
