"""Plots of the results DataFrame: quality against money and time, per language, cost split, latency.

Each function takes the results DataFrame and returns a matplotlib Figure built without pyplot (so
nothing is shown or kept in global state; the Agg renderer draws it). In Jupyter the figure displays
itself as PNG. When any row is simulated, the title says so and a diagonal "SIMULATED" watermark is drawn.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from evalkit import stats
from evalkit.common.errors import ConfigError

LOG_SPREAD = 10.0
WATERMARK = "SIMULATED"
_LATENCY = {"total": ("latency_s", "Total latency"), "ttft": ("ttft_s", "Time to first token")}


class EvalFigure(Figure):
    """A Figure that renders itself as PNG in Jupyter even when no pyplot backend is active."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, quality) that no other point beats: lower-or-equal cost and
    higher-or-equal quality, strictly better in one. Sorted by cost; NaN points are never on it."""
    candidates = [
        (cost, -quality, i)
        for i, (cost, quality) in enumerate(points)
        if not (math.isnan(cost) or math.isnan(quality))
    ]
    front: list[int] = []
    best = -math.inf
    previous: tuple[float, float] | None = None
    for cost, neg_quality, i in sorted(candidates):
        quality = -neg_quality
        if quality > best:
            front.append(i)
            best = quality
            previous = (cost, quality)
        elif previous == (cost, quality):  # an exact tie with a front point is not dominated
            front.append(i)
    return front


# --- shared helpers -----------------------------------------------------------------------------------


def _tasks(df: pd.DataFrame, task: str | None) -> list[str]:
    if task is not None:
        if task not in set(df["task"]):
            known = ", ".join(sorted(map(str, df["task"].unique())))
            raise ConfigError(f"no task {task!r} in the results (tasks: {known})", where="task")
        return [task]
    return sorted(df["task"].unique())


def _is_simulated(df: pd.DataFrame) -> bool:
    return bool("simulated" in df and df["simulated"].fillna(False).astype(bool).any())


def _figure(
    panels: int, *, width: float = 6.4, height: float = 4.6, max_cols: int = 3
) -> tuple[EvalFigure, list]:
    cols = min(panels, max_cols)
    rows = math.ceil(panels / cols)
    fig = EvalFigure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for extra in axes[panels:]:
        extra.set_visible(False)
    return fig, axes[:panels]


def _finish(fig: Figure, df: pd.DataFrame, title: str) -> Figure:
    simulated = _is_simulated(df)
    text = f"{title} [{WATERMARK}]" if simulated else title
    fig.suptitle(textwrap.fill(text, width=int(fig.get_figwidth() * 11)), fontsize=12)
    if simulated:
        fig.text(0.5, 0.5, WATERMARK, fontsize=64, color="tab:red", alpha=0.13, rotation=30,
                 ha="center", va="center", zorder=0)  # fmt: skip
    return fig


def _samples_phrase(df: pd.DataFrame) -> str:
    """'40 samples' or '30–40 samples' per model and task, counting every epoch."""
    counts = df.groupby(["task", "model"]).size()
    if counts.empty:
        return "0 samples"
    low, high = int(counts.min()), int(counts.max())
    return f"{low} samples" if low == high else f"{low}–{high} samples"


def _colors(models: Sequence[str]) -> dict[str, object]:
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(models) <= 10 else "tab20"]
    return {model: palette(i % palette.N) for i, model in enumerate(sorted(models))}


def _short(model: str) -> str:
    return model.split("/", 1)[-1]


def wants_log(values: Sequence[float]) -> bool:
    """True when the positive values spread more than LOG_SPREAD× (decided once per figure, so every
    panel of a figure shares one scale type)."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return len(positive) >= 2 and max(positive) / min(positive) > LOG_SPREAD


_NARROW = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)


def _set_x_scale(ax, log: bool) -> None:
    """Log x with ticks at 1, 2 and 5 of every decade labelled as plain numbers (0.2, 0.5, 1, 2); an
    axis spanning less than a decade gets more (1.5, 2, 2.5, 3), so it never shows a lone tick. Call
    after the data is drawn."""
    if not log:
        return
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    spread = high / low if low > 0 else math.inf
    subs = (1.0, 2.0, 5.0) if spread >= 10 else (1.0, 2.0, 3.0, 5.0) if spread >= 5 else _NARROW
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _tick(value)))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(float(k) for k in range(1, 10))))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tick(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}".replace(",", " ")


def _log_note(ax, inside: bool = False) -> str:
    """', log scale' inside an existing parenthesis, ' (log scale)' after a label; '' on linear axes."""
    if ax.get_xscale() != "log":
        return ""
    return ", log scale" if inside else " (log scale)"


def _draw_front(ax, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str]) -> list[int]:
    if not any(y > 0 for y in ys):  # every model scored 0: no front to speak of
        ax.text(0.5, 0.5, "every model scored 0", transform=ax.transAxes, ha="center", va="center",
                fontsize=10, color="0.3")  # fmt: skip
        return []
    front = pareto_front(list(zip(xs, ys, strict=True)))
    if front:
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="0.35", lw=1.2,
                label="Pareto front", zorder=1)  # fmt: skip
        for i in front:
            ax.annotate(_short(labels[i]), (xs[i], ys[i]), textcoords="offset points", xytext=(6, 6),
                        fontsize=8, fontweight="bold")  # fmt: skip
    return front


# --- accuracy against cost and latency ----------------------------------------------------------------


def _point_table(df: pd.DataFrame, seed: int, n_boot: int) -> pd.DataFrame:
    rows = []
    for (task, model), group in df.groupby(["task", "model"], sort=True):
        acc = stats.accuracy_ci(group["score"].to_numpy(float), stats.cluster_ids(group).to_numpy(),
                                seed=seed, n_boot=n_boot)  # fmt: skip
        cost = stats.cost_per_1000(group, seed=seed, n_boot=n_boot)
        total = stats.latency_percentiles(group, "latency_s", (50, 95))
        ttft = stats.latency_percentiles(group, "ttft_s", (50, 95))
        rows.append({"task": task, "model": model, "acc": 100 * acc.value, "acc_low": 100 * acc.low,
                     "acc_high": 100 * acc.high,
                     "cost": cost.value, "cost_low": cost.low, "cost_high": cost.high,
                     "total_p50": total["p50"], "total_p95": total["p95"],
                     "ttft_p50": ttft["p50"], "ttft_p95": ttft["p95"]})  # fmt: skip
    return pd.DataFrame(rows)


def _yerr(part: pd.DataFrame) -> np.ndarray:
    return np.vstack([part["acc"] - part["acc_low"], part["acc_high"] - part["acc"]]).clip(min=0)


def _accuracy_figure(df: pd.DataFrame, task: str | None, seed: int, n_boot: int) -> tuple[Any, ...]:
    """What both accuracy plots start from: the tasks, their rows, a point per (task, model), a colour
    per model, and a figure with a panel per task."""
    tasks = _tasks(df, task)
    data = df[df["task"].isin(tasks)]
    fig, axes = _figure(len(tasks))
    return tasks, data, _point_table(data, seed, n_boot), _colors(list(data["model"].unique())), fig, axes


def _accuracy_panel(
    ax: Any,
    name: str,
    part: pd.DataFrame,
    x: pd.Series,
    xerr: np.ndarray,
    log: bool,
    colors: dict[str, Any],
) -> None:
    """One task's panel: a point per model with both error bars, the Pareto front, log x when wide.
    Accuracy is in % (as in every table)."""
    for i, row in part.iterrows():
        ax.errorbar(x[i], row["acc"], xerr=xerr[:, [i]], yerr=_yerr(part)[:, [i]], fmt="o",
                    color=colors[row["model"]], capsize=3, label=row["model"], zorder=2)  # fmt: skip
    _draw_front(ax, list(x), list(part["acc"]), list(part["model"]))
    ax.margins(x=0.12)  # room for the labels of the outermost points
    _set_x_scale(ax, log)
    ax.set_ylabel("Accuracy, % (95% CI)")
    ax.set_ylim(-2, 102)
    ax.set_title(name, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def accuracy_vs_cost(
    df: pd.DataFrame, task: str | None = None, *, seed: int = 0, n_boot: int = stats.DEFAULT_BOOTSTRAP
) -> Figure:
    """Accuracy against ₽ per 1000 samples, one panel per task, error bars on both axes (accuracy CI,
    cost CI by bootstrap over samples), the Pareto front (higher accuracy, lower cost) drawn and its
    models labelled. The cost axis is logarithmic when costs spread more than 10×."""
    tasks, data, table, colors, fig, axes = _accuracy_figure(df, task, seed, n_boot)
    log = (
        wants_log(list(table["cost_low"]) + list(table["cost_high"]) + list(table["cost"]))
        if len(table)
        else False
    )
    for ax, name in zip(axes, tasks, strict=True):
        part = table[table["task"] == name].reset_index(drop=True)
        xerr = np.vstack([part["cost"] - part["cost_low"], part["cost_high"] - part["cost"]]).clip(min=0)
        _accuracy_panel(ax, name, part, part["cost"], xerr, log, colors)
        ax.set_xlabel(f"Cost, ₽ per 1000 samples{_log_note(ax)}")
    return _finish(fig, data, f"Accuracy vs cost ({_samples_phrase(data)} per model and task)")


def accuracy_vs_latency(
    df: pd.DataFrame,
    task: str | None = None,
    latency: Literal["total", "ttft"] = "total",
    *,
    seed: int = 0,
    n_boot: int = stats.DEFAULT_BOOTSTRAP,
) -> Figure:
    """Accuracy against latency: the median (p50) as the point, a whisker out to p95, accuracy CI as
    the vertical bar; the Pareto front on p50 drawn. `latency` is "total" or "ttft" (time to first token)."""
    if latency not in _LATENCY:
        raise ConfigError(f"must be 'total' or 'ttft', not {latency!r}", where="latency")
    _, label = _LATENCY[latency]
    tasks, data, table, colors, fig, axes = _accuracy_figure(df, task, seed, n_boot)
    log = wants_log(list(table[f"{latency}_p50"]) + list(table[f"{latency}_p95"])) if len(table) else False
    for ax, name in zip(axes, tasks, strict=True):
        part = table[table["task"] == name].reset_index(drop=True)
        p50, p95 = part[f"{latency}_p50"], part[f"{latency}_p95"]
        xerr = np.vstack([np.zeros(len(part)), (p95 - p50).clip(lower=0)])
        _accuracy_panel(ax, name, part, p50, xerr, log, colors)
        ax.set_xlabel(f"{label}, s (point p50, whisker to p95{_log_note(ax, inside=True)})")
    return _finish(fig, data, f"Accuracy vs {label.lower()} ({_samples_phrase(data)} per model and task)")


# --- languages, cost split, latency distribution ------------------------------------------------------


def language_heatmap(df: pd.DataFrame, task: str | None = None) -> Figure:
    """Accuracy per model (rows) and language (columns), one panel per task with languages, annotated."""
    long = stats.by_language(df if task is None else df[df["task"] == task], long=True)
    tasks = sorted(long["task"].unique())
    if not tasks:
        fig, axes = _figure(1)
        axes[0].text(0.5, 0.5, "no per-language results", ha="center", va="center")
        axes[0].set_axis_off()
        return _finish(fig, df, "Accuracy by language")
    languages = long.groupby("task")["language"].nunique().max()
    width = max(6.0, 0.6 * languages + 3.5)
    # One panel per row: a 13-language grid shrunk to a third of the page has unreadable cells.
    fig, axes = _figure(len(tasks), width=width, height=1.8 + 0.55 * long["model"].nunique(), max_cols=1)
    image = None
    for ax, name in zip(axes, tasks, strict=True):
        grid = long[long["task"] == name].pivot(index="model", columns="language", values="accuracy")
        counts = long[long["task"] == name].pivot(index="model", columns="language", values="n")
        image = ax.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap=_HEAT, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), list(grid.columns))
        ax.set_yticks(range(grid.shape[0]), list(grid.index))
        for (r, c), value in np.ndenumerate(grid.to_numpy(float)):
            if not math.isnan(value):
                ax.text(c, r, f"{100 * value:.0f}", ha="center", va="center", fontsize=10, fontweight="bold",
                        color=_ink(value))  # fmt: skip
        ax.set_xlabel("Language")
        ax.set_ylabel("Model")
        low, high = int(counts.min().min()), int(counts.max().max())
        per_cell = f"{low}" if low == high else f"{low}–{high}"
        ax.set_title(f"{name} (n = {per_cell} per cell)", fontsize=10)
    fig.colorbar(image, ax=axes, label="Accuracy, %", format=lambda v, _: f"{100 * v:.0f}")
    data = df if task is None else df[df["task"] == task]
    return _finish(fig, data, f"Accuracy by language, % ({_samples_phrase(data)} per model and task)")


_HEAT = "RdYlGn"


def _ink(value: float) -> str:
    """Black or white, whichever reads better on the heat-map colour of `value`."""
    from matplotlib import colormaps

    r, g, b, _ = colormaps[_HEAT](value)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def cost_breakdown(df: pd.DataFrame) -> Figure:
    """Per task (not every model runs every task, so tasks are never pooled): stacked bars per model of
    the price-card split (input, output, images) in ₽ per 1000 samples, with the router's billed ₽ per
    1000 samples (the truth) as a marker."""
    tasks = _tasks(df, None)
    widest = max((df[df["task"] == t]["model"].nunique() for t in tasks), default=1)
    fig, axes = _figure(max(1, len(tasks)), width=max(5.5, 1.0 * widest + 2.5))
    for ax, name in zip(axes, tasks, strict=False):
        data = df[df["task"] == name]
        models = sorted(data["model"].unique())
        bottom = np.zeros(len(models))
        for label, values in _cost_parts(data, models):
            ax.bar(range(len(models)), values, bottom=bottom, label=f"{label} (price card)")
            bottom += values
        billed = [1000 * stats.effective_cost(data[data["model"] == m])[0].mean() for m in models]
        ax.scatter(range(len(models)), billed, marker="D", color="black", zorder=3, label="billed by router")
        ax.set_xticks(range(len(models)), [_short(m) for m in models], rotation=20, ha="right")
        ax.set_ylabel("₽ per 1000 samples")
        ax.set_title(name, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_ylim(0, 1.35 * max([*billed, *bottom, 1e-12]))  # headroom for the legend and markers
        ax.legend(fontsize=8, loc="upper left", ncols=2)
    return _finish(fig, df, f"Cost per 1000 samples by component ({_samples_phrase(df)} per model and task)")


def _cost_parts(data: pd.DataFrame, models: list[str]) -> list[tuple[str, np.ndarray]]:
    """₽ per 1000 samples per model of each price-card part; output is split into the answer and the
    thinking when any model thought."""

    def per_1000(column: str) -> np.ndarray:
        return np.array([1000 * pd.to_numeric(data.loc[data["model"] == m, column], errors="coerce")
                         .fillna(0).mean() for m in models])  # fmt: skip

    parts = [(label, per_1000(column)) for column, label in
             (("cost_rub_input", "input tokens"), ("cost_rub_output", "output tokens"), ("cost_rub_images", "images"))
             if column in data]  # fmt: skip
    thinking = per_1000("cost_rub_reasoning") if "cost_rub_reasoning" in data else np.zeros(len(models))
    if thinking.any() and "cost_rub_output" in data:
        at = [label for label, _ in parts].index("output tokens")
        answer = parts[at][1] - thinking
        parts[at : at + 1] = [("answer tokens", answer), ("thinking tokens", thinking)]
    return parts


def latency_distribution(df: pd.DataFrame, latency: Literal["total", "ttft"] = "total") -> Figure:
    """Per task, the empirical CDF of per-call latency for each model (successful, non-cached calls);
    the legend gives p50 and p95. One log time axis for every panel when latencies spread more than 10×."""
    if latency not in _LATENCY:
        raise ConfigError(f"must be 'total' or 'ttft', not {latency!r}", where="latency")
    column, label = _LATENCY[latency]
    tasks = _tasks(df, None)
    colors = _colors(list(df["model"].unique()))
    fig, axes = _figure(max(1, len(tasks)))
    log = wants_log(list(stats.timing_values(df, column)))
    for ax, name in zip(axes, tasks, strict=False):
        data = df[df["task"] == name]
        for model in sorted(data["model"].unique()):
            rows = data[data["model"] == model]
            values = np.sort(stats.timing_values(rows, column))
            if len(values) == 0:
                continue
            p = stats.latency_percentiles(rows, column, (50, 95))
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", color=colors[model],
                    label=f"{_short(model)} (p50 {p['p50']:.2f} s, p95 {p['p95']:.2f} s)")  # fmt: skip
        _set_x_scale(ax, log)
        ax.set_xlabel(f"{label}, s{_log_note(ax)}")
        ax.set_ylabel("Fraction of calls")
        ax.set_ylim(0, 1.02)
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return _finish(fig, df, f"{label} distribution ({_samples_phrase(df)} per model and task)")
