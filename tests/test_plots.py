"""Plots on synthetic results: the Pareto set, units on the axes, the SIMULATED mark, the log switch."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from test_stats import make_results

from evalkit import plots
from evalkit.common.errors import ConfigError

N_BOOT = 200  # enough for the drawing; the intervals themselves are tested in test_stats


def _texts(fig: Figure) -> list[str]:
    found = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        found.append(fig._suptitle.get_text())
    for ax in fig.axes:
        found += [t.get_text() for t in ax.texts]
    return found


def _front_line(ax):
    lines = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.9)], [0, 1, 3]),  # (3, 0.6) is beaten by (2, 0.7)
        ([(5, 0.9), (1, 0.9)], [1]),  # same accuracy, cheaper wins
        ([(1, 0.5), (1, 0.7)], [1]),  # same cost, more accurate wins
        ([(1, 0.5), (1, 0.5), (2, 0.4)], [0, 1]),  # exact ties are both on the front
        ([(math.nan, 0.9), (2, 0.4)], [1]),
        ([], []),
    ],
)
def test_pareto_front(points: list[tuple[float, float]], front: list[int]) -> None:
    assert plots.pareto_front(points) == front


def test_accuracy_vs_cost_axes_front_and_log_scale() -> None:
    models = {
        "a/cheap-bad": {"accuracy": 0.3, "cost": 0.01, "latency": 1},
        "b/cheap-good": {"accuracy": 0.8, "cost": 0.02, "latency": 1},
        "c/dear-worse": {"accuracy": 0.5, "cost": 1.0, "latency": 1},
        "d/dear-best": {"accuracy": 0.99, "cost": 1.5, "latency": 1},
    }
    df = make_results(models, n=100, seed=4)
    fig = plots.accuracy_vs_cost(df, n_boot=N_BOOT)
    ax = fig.axes[0]
    assert "₽ per 1000 samples" in ax.get_xlabel() and "log scale" in ax.get_xlabel()
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == "Accuracy, % (95% CI)"
    means = 100 * df.groupby("model")["score"].mean()
    front_acc = sorted(_front_line(ax).get_ydata())
    assert front_acc == pytest.approx(
        sorted([means["a/cheap-bad"], means["b/cheap-good"], means["d/dear-best"]])
    )
    labelled = {t.get_text() for t in ax.texts}
    assert labelled == {"cheap-bad", "cheap-good", "dear-best"}
    assert "100 samples" in fig._suptitle.get_text()
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_linear_cost_axis_when_spread_is_small_and_one_panel_per_task() -> None:
    models = {"x/one": {"accuracy": 0.5, "cost": 0.10, "latency": 1},
              "y/two": {"accuracy": 0.6, "cost": 0.15, "latency": 2}}  # fmt: skip
    df = make_results(models, tasks=("qa", "code"), n=30)
    fig = plots.accuracy_vs_cost(df, n_boot=N_BOOT)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["code", "qa"]
    assert all(ax.get_xscale() == "linear" and "log" not in ax.get_xlabel() for ax in visible)
    single = plots.accuracy_vs_cost(df, task="qa", n_boot=N_BOOT)
    assert [ax.get_title() for ax in single.axes if ax.get_visible()] == ["qa"]
    with pytest.raises(ConfigError, match="no task 'nope'"):
        plots.accuracy_vs_cost(df, task="nope")


def test_simulated_mark_present_only_for_simulated_rows() -> None:
    real = make_results(n=20)
    sim = real.copy()
    sim.loc[sim.index[0], "simulated"] = True
    for draw in (plots.accuracy_vs_cost, plots.accuracy_vs_latency, plots.cost_breakdown,
                 plots.latency_distribution):  # fmt: skip
        assert not any("SIMULATED" in t for t in _texts(draw(real))), draw.__name__
        marked = draw(sim)
        assert "SIMULATED" in marked._suptitle.get_text(), draw.__name__
        assert any(t.get_text() == "SIMULATED" and t.get_rotation() != 0 for t in marked.texts), draw.__name__


def test_accuracy_vs_latency_whiskers_and_units() -> None:
    df = make_results(n=40)
    fig = plots.accuracy_vs_latency(df, latency="ttft", n_boot=N_BOOT)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("Time to first token, s")
    ok = df[df["error"].isna()]
    p50 = ok.groupby("model")["ttft_s"].median().sort_values()
    front = _front_line(ax)
    assert sorted(front.get_xdata()) == pytest.approx(list(p50))  # faster models are also cheaper-worse here
    with pytest.raises(ConfigError, match="latency"):
        plots.accuracy_vs_latency(df, latency="p99")


def test_language_heatmap_annotates_accuracy() -> None:
    df = make_results(n=60, languages=("en", "ru", "th"))
    fig = plots.language_heatmap(df)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["en", "ru", "th"]
    expected = df[(df["model"] == "big/large") & (df["language"] == "ru")]["score"].mean()
    row = [t.get_text() for t in ax.get_yticklabels()].index("big/large")
    cell = [t for t in ax.texts if t.get_position() == (1, row)][0]
    assert cell.get_text() == f"{100 * expected:.0f}"
    empty = plots.language_heatmap(make_results(n=5))
    assert "no per-language results" in _texts(empty)


def test_cost_breakdown_stacks_the_price_card_split() -> None:
    df = make_results(n=30)
    ax = plots.cost_breakdown(df).axes[0]
    assert ax.get_title() == "qa"
    assert ax.get_ylabel() == "₽ per 1000 samples"
    heights: dict[float, float] = {}
    for patch in ax.patches:
        heights[patch.get_x()] = heights.get(patch.get_x(), 0) + patch.get_height()
    models = sorted(df["model"].unique())
    for (x, height), model in zip(sorted(heights.items()), models, strict=True):
        assert height == pytest.approx(1000 * df.loc[df["model"] == model, "cost_rub_estimated"].mean()), x


def test_latency_distribution_legend_gives_percentiles() -> None:
    df = make_results(n=30)
    ax = plots.latency_distribution(df).axes[0]
    assert ax.get_xlabel() == "Total latency, s (log scale)"  # 0.35 to 3.9 s spreads over 10x
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    small = df[(df["model"] == "cheap/small") & df["error"].isna()]["latency_s"]
    assert f"small (p50 {small.median():.2f} s" in legend[1]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=12))
def test_pareto_front_is_exactly_the_undominated_points(raw: list[tuple[int, int]]) -> None:
    points = [(float(c), q / 8) for c, q in raw]

    def dominated(p: tuple[float, float]) -> bool:
        return any(o[0] <= p[0] and o[1] >= p[1] and o != p for o in points)

    front = plots.pareto_front(points)
    assert sorted(front) == [i for i, p in enumerate(points) if not dominated(p)]
    assert [points[i][0] for i in front] == sorted(points[i][0] for i in front)


def _tick_labels(fig: Figure, ax) -> list[str]:
    fig.canvas.draw()  # tick labels exist once drawn
    low, high = ax.get_xlim()
    return [t.get_text() for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high and t.get_text()]


def test_log_latency_axis_has_readable_ticks_and_says_log_scale() -> None:
    models = {"fast/one": {"accuracy": 0.6, "cost": 0.1, "latency": 0.15},
              "slow/two": {"accuracy": 0.8, "cost": 0.1, "latency": 2.5}}  # fmt: skip
    df = make_results(models, n=40, seed=2)
    for fig in (plots.accuracy_vs_latency(df, n_boot=N_BOOT), plots.latency_distribution(df)):
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
        labels = _tick_labels(fig, ax)
        assert {"0.2", "0.5", "1", "2"} <= set(labels), labels
        assert all(float(label) > 0 for label in labels)  # plain numbers, no 10^x


def test_a_narrow_panel_on_a_log_figure_still_has_several_ticks() -> None:
    fast = make_results({"a/x": {"accuracy": 0.5, "cost": 0.1, "latency": 0.1},
                         "b/y": {"accuracy": 0.6, "cost": 0.1, "latency": 4}}, tasks=("qa",), n=30)  # fmt: skip
    narrow = make_results({"a/x": {"accuracy": 0.5, "cost": 0.1, "latency": 1.1},
                           "b/y": {"accuracy": 0.6, "cost": 0.1, "latency": 2.6}}, tasks=("vision",), n=30)  # fmt: skip
    fig = plots.accuracy_vs_latency(pd.concat([fast, narrow], ignore_index=True), n_boot=N_BOOT)
    panel = [ax for ax in fig.axes if ax.get_title() == "vision"][0]
    assert panel.get_xscale() == "log"
    assert len(_tick_labels(fig, panel)) >= 3, _tick_labels(fig, panel)


def test_every_panel_of_a_figure_shares_one_scale_type() -> None:
    # qa alone spreads 2x (linear on its own), code spreads 40x: both panels must still be log.
    qa = make_results({"a/x": {"accuracy": 0.5, "cost": 0.10, "latency": 1},
                       "b/y": {"accuracy": 0.6, "cost": 0.20, "latency": 2}}, tasks=("qa",), n=30)  # fmt: skip
    code = make_results({"a/x": {"accuracy": 0.5, "cost": 0.01, "latency": 0.1},
                         "b/y": {"accuracy": 0.6, "cost": 0.40, "latency": 4}}, tasks=("code",), n=30)  # fmt: skip
    df = pd.concat([qa, code], ignore_index=True)
    for fig in (plots.accuracy_vs_cost(df, n_boot=N_BOOT), plots.accuracy_vs_latency(df, n_boot=N_BOOT),
                plots.latency_distribution(df)):  # fmt: skip
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        assert len(visible) == 2 and {ax.get_xscale() for ax in visible} == {"log"}


def test_accuracy_is_in_percent_in_every_plot() -> None:
    df = make_results(n=40, languages=("en", "ru"))
    for fig in (plots.accuracy_vs_cost(df, n_boot=N_BOOT), plots.accuracy_vs_latency(df, n_boot=N_BOOT)):
        ax = fig.axes[0]
        assert "%" in ax.get_ylabel() and ax.get_ylim()[1] > 100
        assert max(line.get_ydata().max() for line in ax.get_lines()) > 1  # values in %, not 0–1
    heat = plots.language_heatmap(df)
    assert heat.axes[-1].get_ylabel() == "Accuracy, %"


def test_pooled_charts_are_split_per_task() -> None:
    # The vision task was run by one model only: pooling would compare it with nothing.
    qa = make_results(tasks=("qa",), n=20)
    vision = make_results(
        {"big/large": {"accuracy": 0.5, "cost": 5.0, "latency": 9}}, tasks=("vision",), n=20
    )
    df = pd.concat([qa, vision], ignore_index=True)
    for fig in (plots.cost_breakdown(df), plots.latency_distribution(df)):
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in visible] == ["qa", "vision"]
    vision_ax = [ax for ax in plots.cost_breakdown(df).axes if ax.get_title() == "vision"][0]
    assert [t.get_text() for t in vision_ax.get_xticklabels()] == ["large"]
    heights = [p.get_height() for p in vision_ax.patches]
    assert sum(heights) == pytest.approx(1000 * vision["cost_rub_estimated"].mean())


def test_all_zero_task_draws_no_pareto_line() -> None:
    models = {
        "a/x": {"accuracy": 0.0, "cost": 0.1, "latency": 1},
        "b/y": {"accuracy": 0.0, "cost": 0.3, "latency": 2},
    }
    fig = plots.accuracy_vs_cost(make_results(models, n=20), n_boot=N_BOOT)
    ax = fig.axes[0]
    assert not [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert "every model scored 0" in [t.get_text() for t in ax.texts]


def test_heatmap_cells_are_readable() -> None:
    df = make_results(n=60, languages=("en", "ru", "th", "sw"))
    ax = plots.language_heatmap(df).axes[0]
    cells = [t for t in ax.texts if t.get_text().isdigit()]
    assert cells and all(t.get_fontsize() >= 9 for t in cells)
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    def luminance(rgb) -> float:
        return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]

    for cell in cells:  # the ink contrasts with its cell colour
        background = luminance(colormaps["RdYlGn"](int(cell.get_text()) / 100))
        assert abs(luminance(to_rgb(cell.get_color())) - background) > 0.4, (
            cell.get_text(),
            cell.get_color(),
        )
