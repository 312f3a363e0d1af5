"""`stats.plan`: the sample size to tell two models apart, checked by simulating the planned design.

Each check simulates the planned experiment thousands of times with a seeded RNG, runs the very test
`compare_models` runs, and requires the share of rejections (the achieved power) to be within 3 points
of the target. The simulation is vectorised; `test_vectorised_test_is_compare_models` ties it to
`compare_models` itself.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from evalkit import stats
from evalkit.client.catalog import Catalog, ModelInfo, PriceCard
from evalkit.common.errors import ConfigError

SIMULATIONS = 4000


def _simulate_clusters(rng, clusters: int, size: int, p10: float, p01: float, kappa: float | None):
    """Discordant counts (A only, B only) per cluster, shape (simulations, clusters). `kappa` is the
    Dirichlet concentration of each cluster's own probabilities (None: no clustering)."""
    probs = np.array([p10, p01, 1 - p10 - p01])
    if kappa is None:
        counts = rng.multinomial(size, probs, size=(SIMULATIONS, clusters))
    else:
        local = rng.dirichlet(kappa * probs, size=(SIMULATIONS, clusters))
        counts = rng.multinomial(size, local)
    return counts[..., 0], counts[..., 1]


def _rejects(a_only: np.ndarray, b_only: np.ndarray, size: int, alpha: float) -> np.ndarray:
    """compare_models' decision, vectorised: clustered z when clusters inflate the SE, else McNemar."""
    clusters = a_only.shape[1]
    n = clusters * size
    b, c = a_only.sum(axis=1), b_only.sum(axis=1)
    mean = (b - c) / n
    independent = np.sqrt(np.maximum(b + c - n * mean**2, 0) / (n - 1) / n)
    residual = (a_only - b_only) - size * mean[:, None]
    clustered = np.sqrt(clusters / (clusters - 1) * (residual**2).sum(axis=1) / n**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_mcnemar = np.abs(b - c) / np.sqrt(b + c)
        z_clustered = np.abs(mean) / clustered
    z = np.where((size > 1) & (clustered > independent), z_clustered, z_mcnemar)
    return np.nan_to_num(z) > sps.norm.ppf(1 - alpha / 2)


def _power(rng, plan: stats.Plan, p10: float, p01: float, kappa: float | None) -> float:
    size = int(plan.cluster_size)
    a_only, b_only = _simulate_clusters(rng, plan.n_samples // size, size, p10, p01, kappa)
    return float(_rejects(a_only, b_only, size, plan.alpha).mean())


@pytest.mark.parametrize(
    ("accuracy_a", "accuracy_b", "correlation", "power"),
    [(0.75, 0.70, 0.5, 0.8), (0.62, 0.50, 0.2, 0.8), (0.90, 0.86, 0.6, 0.9), (0.40, 0.30, 0.0, 0.8)],
)
def test_planned_power_is_achieved_for_independent_samples(
    accuracy_a, accuracy_b, correlation, power
) -> None:
    plan = stats.plan(accuracy_a=accuracy_a, accuracy_b=accuracy_b, correlation=correlation, power=power)
    p10 = (plan.discordance + plan.delta) / 2
    p01 = (plan.discordance - plan.delta) / 2
    achieved = _power(np.random.default_rng(1), plan, p10, p01, kappa=None)
    assert abs(achieved - power) <= 0.03, (plan, achieved)
    # Half the samples fall well short: the check can fail.
    half = stats.Plan(**{**plan.__dict__, "n_samples": plan.n_samples // 2})
    assert _power(np.random.default_rng(2), half, p10, p01, kappa=None) < power - 0.15


@pytest.mark.parametrize(("size", "kappa"), [(3, 4.0), (5, 2.0), (4, 9.0)])
def test_planned_power_is_achieved_with_clusters_measured_in_a_pilot(size: int, kappa: float) -> None:
    rng = np.random.default_rng(size)
    p10, p01 = 0.16, 0.08
    pilot = _pilot_frame(rng, clusters=1500, size=size, p10=p10, p01=p01, kappa=kappa)
    plan = stats.plan(pilot, "A", "B", delta=p10 - p01)
    true_deff = 1 + (size - 1) / (1 + kappa)
    assert plan.design_effect == pytest.approx(true_deff, rel=0.12)
    assert plan.intraclass_correlation == pytest.approx(1 / (1 + kappa), abs=0.05)
    assert plan.n_samples >= plan.n_independent * true_deff * 0.85 and plan.n_samples % size == 0
    achieved = _power(np.random.default_rng(7), plan, p10, p01, kappa)
    assert abs(achieved - 0.8) <= 0.03, (plan, achieved)
    # Ignoring the clusters would plan too few samples: the power falls short.
    naive = stats.Plan(**{**plan.__dict__, "n_samples": plan.n_independent // size * size})
    assert _power(np.random.default_rng(8), naive, p10, p01, kappa) < 0.8 - 0.05


def _pilot_frame(rng, clusters: int, size: int, p10: float, p01: float, kappa: float) -> pd.DataFrame:
    local = rng.dirichlet(kappa * np.array([p10, p01, 1 - p10 - p01]), size=clusters)
    rows = []
    for c, probs in enumerate(local):
        for j in range(size):
            kind = rng.choice(3, p=probs)
            both = rng.random() < 0.5  # agreeing pairs: both right or both wrong
            a, b = (1.0, 0.0) if kind == 0 else (0.0, 1.0) if kind == 1 else (float(both), float(both))
            for model, score in (("A", a), ("B", b)):
                rows.append({"task": "t", "model": model, "sample_id": f"s{c}-{j}", "epoch": 0, "score": score,
                             "error": None, "cluster": f"c{c}", "prompt_tokens": 1000 if model == "A" else 400,
                             "completion_tokens": 200, "images": 0, "cost_rub": 0.5})  # fmt: skip
    return pd.DataFrame(rows)


def test_vectorised_test_is_compare_models() -> None:
    rng = np.random.default_rng(3)
    for size, kappa in ((1, None), (4, 1.5), (4, 30.0)):
        for _ in range(12):
            frame = _pilot_frame(rng, clusters=30, size=size, p10=0.2, p01=0.1, kappa=kappa or 1e6)
            result = stats.compare_models(frame, "A", "B")
            wide = frame.pivot(index="sample_id", columns="model", values="score")
            per_cluster = (
                frame[frame["model"] == "A"]
                .assign(
                    a_only=(wide["A"] > wide["B"])
                    .reindex(frame[frame["model"] == "A"]["sample_id"])
                    .to_numpy(),
                    b_only=(wide["B"] > wide["A"])
                    .reindex(frame[frame["model"] == "A"]["sample_id"])
                    .to_numpy(),
                )
                .groupby("cluster", sort=False)[["a_only", "b_only"]]
                .sum()
            )
            decision = _rejects(per_cluster["a_only"].to_numpy()[None], per_cluster["b_only"].to_numpy()[None],
                                size, 0.05)[0]  # fmt: skip
            assert decision == result.significant, result


def _info(model: str, card: PriceCard) -> ModelInfo:
    return ModelInfo(id=model, name=model, context_length=8192, input_modalities=["text"],
                     output_modalities=["text"], pricing=card)  # fmt: skip


def test_plan_prices_each_model_from_cards_and_pilot_tokens() -> None:
    pilot = _pilot_frame(np.random.default_rng(0), clusters=200, size=1, p10=0.2, p01=0.1, kappa=1e6)
    catalog = Catalog(models={"A": _info("A", PriceCard(prompt=1e-4, completion=4e-4)),
                              "B": _info("B", PriceCard(prompt=1e-5, completion=2e-5))})  # fmt: skip
    plan = stats.plan(pilot, "A", "B", delta=0.05, catalog=catalog)
    assert plan.rub_per_sample["A"] == pytest.approx(1000 * 1e-4 + 200 * 4e-4)
    assert plan.rub_per_sample["B"] == pytest.approx(400 * 1e-5 + 200 * 2e-5)
    assert plan.cost_rub["A"] == pytest.approx(plan.n_samples * 0.18)
    billed = stats.plan(pilot, "A", "B", delta=0.05)  # no catalog: what the pilot was billed
    assert billed.rub_per_sample == {"A": pytest.approx(0.5), "B": pytest.approx(0.5)}
    assert f"you need {plan.n_samples} samples ≈ " in plan.sentence()
    assert plan.sentence().startswith("to tell A from B at a 5.0 pp difference")


def test_plan_matches_connor_worked_value_and_refuses_nonsense() -> None:
    # ψ = 0.3, δ = 0.1, α = 0.05, power 0.9: (1.96·√0.3 + 1.2816·√0.29)² / 0.01 = 310.6 -> 311 pairs.
    n = stats.paired_sample_size(0.1, 0.3, power=0.9, alpha=0.05)
    assert n == pytest.approx((1.959964 * math.sqrt(0.3) + 1.281552 * math.sqrt(0.29)) ** 2 / 0.01, rel=1e-5)
    with pytest.raises(ConfigError, match="at most the share of samples where they disagree"):
        stats.paired_sample_size(0.2, 0.1)
    with pytest.raises(ConfigError, match="accuracy_a is a fraction"):
        stats.plan(accuracy_a=75, accuracy_b=0.7)
    with pytest.raises(ConfigError, match="needs a pilot DataFrame or both"):
        stats.plan(accuracy_a=0.7)
    same = pd.DataFrame([{"task": "t", "model": m, "sample_id": f"s{i}", "epoch": 0, "score": float(i % 2),
                          "error": None} for m in ("A", "B") for i in range(10)])  # fmt: skip
    with pytest.raises(ConfigError, match="shows no difference; give the delta"):
        stats.plan(same, "A", "B")


def test_a_delta_beyond_the_pilots_disagreement_is_refused() -> None:
    pilot = _pilot_frame(np.random.default_rng(4), clusters=100, size=1, p10=0.06, p01=0.04, kappa=1e6)
    disagree = stats.plan(pilot, "A", "B", delta=0.01).discordance
    with pytest.raises(ConfigError, match="at most the share of samples where they disagree"):
        stats.plan(pilot, "A", "B", delta=disagree + 0.05)
