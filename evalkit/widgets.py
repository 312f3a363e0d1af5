"""Jupyter widgets: a live run monitor and a sample explorer.

    monitor = RunMonitor()                       # shows itself in the cell
    res = evalkit.run(tasks, models, progress=monitor)

    sample_explorer(res.df)                      # browse prompts, images, outputs; two models side by side

Only the DataFrame and the progress snapshots are read; nothing here touches the network.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from evalkit.common.text import encodable
from evalkit.runner.progress import ProgressSnapshot

MIN_INTERVAL_S = 0.2  # at most 5 redraws a second: each one is a message to the browser
_DONE_STATUSES = {"done", "completed", "complete", "finished", "ok"}


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _e(value: Any) -> str:
    # the notebook's wire is UTF-8 JSON: a lone surrogate in an output would break the widget
    return html.escape(encodable("" if value is None else str(value)), quote=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


# --- live run monitor ---------------------------------------------------------------------------------


class RunMonitor:
    """A progress sink for the runner (`update`, `close`) that draws a progress bar, running accuracy,
    ₽ spent, errors, concurrency and any back-off. Redraws at most every `min_interval_s`; `close`
    always draws the final state. Each redraw only sets a few widget values, so it is cheap from the
    kernel's loop or from the runner's thread."""

    def __init__(
        self,
        description: str = "evalkit",
        *,
        display: bool = True,
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bar = w.IntProgress(value=0, min=0, max=1, description=description, bar_style="info")
        self.stats = w.HTML(value="waiting for the first result…")
        self.notice = w.HTML(value="")
        self.widget = w.VBox([self.bar, self.stats, self.notice])
        self.redraws = 0
        self._min_interval = min_interval_s
        self._clock = clock
        self._last_draw = -math.inf
        self._pending: ProgressSnapshot | None = None
        if display and _in_notebook():
            from IPython.display import display as show

            show(self.widget)

    def _ipython_display_(self) -> None:
        from IPython.display import display as show

        show(self.widget)

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Called by the runner a few times a second; redraws when the last redraw is old enough."""
        now = self._clock()
        if now - self._last_draw < self._min_interval:
            self._pending = snapshot
            return
        self._last_draw = now
        self._draw(snapshot)

    def close(self, snapshot: ProgressSnapshot) -> None:
        """The run ended: draw the final state and colour the bar by the outcome."""
        self._draw(snapshot)
        failed = snapshot.status not in _DONE_STATUSES
        self.bar.bar_style = "danger" if failed else ("warning" if snapshot.errors else "success")
        if failed:
            self.notice.value = f'<span style="color:#b00020">run ended: {_e(snapshot.status)}</span>'

    def _draw(self, snapshot: ProgressSnapshot) -> None:
        self._pending = None
        self.redraws += 1
        self.bar.max = max(1, snapshot.total)
        self.bar.value = min(snapshot.done, self.bar.max)
        self.stats.value = describe_html(snapshot)
        backing_off = snapshot.backing_off
        self.notice.value = (
            f'<span style="color:#b36b00">⏸ backing off: {_e(backing_off)}</span>' if backing_off else ""
        )


def describe_html(snapshot: ProgressSnapshot) -> str:
    """One line: done / total, accuracy, ₽ spent, errors, concurrency, rate and time left."""
    parts = [f"<b>{snapshot.done}</b> / {snapshot.total} samples"]
    if snapshot.accuracy is not None:
        parts.append(f"accuracy <b>{100 * snapshot.accuracy:.1f}%</b> (n={snapshot.scored})")
    parts.append(f"<b>₽{snapshot.spent_rub:.4f}</b> spent")
    if snapshot.errors:
        rate = snapshot.errors / snapshot.done if snapshot.done else 0.0
        parts.append(f'<span style="color:#b00020">{snapshot.errors} errors ({100 * rate:.1f}%)</span>')
    else:
        parts.append("0 errors")
    parts.append(f"concurrency {snapshot.concurrency} ({snapshot.in_flight} in flight)")
    if snapshot.rate > 0:
        left = max(0, snapshot.total - snapshot.done) / snapshot.rate
        parts.append(f"{snapshot.rate:.1f}/s, ~{left:.0f} s left")
    return " · ".join(parts)


# --- sample explorer ----------------------------------------------------------------------------------

ALL = "(all)"
NONE = "(none)"
OUTCOMES = ("all", "correct", "wrong", "error", "A right, B wrong", "A wrong, B right", "judges split")
_KEY = ["task", "sample_id", "epoch"]


def outcome_of(row: pd.Series | dict) -> str:
    """'error' when the call failed, 'correct' for full marks (score 1), else 'wrong'."""
    if not _missing(row.get("error")):
        return "error"
    score = row.get("score")
    if _missing(score):
        return "error"
    return "correct" if float(score) >= 1 else "wrong"


class SampleExplorer:
    """Browse results one sample at a time: filters (task, model A, model B, language, outcome), the
    prompt, the images, and each model's output, extracted answer, target, score, cost and latency;
    for a judged task, each judge's verdict and reason and the judge's ₽ apart ("judges split" finds
    the answers the judges disagreed on)."""

    def __init__(self, df: pd.DataFrame, model_a: str | None = None, model_b: str | None = None) -> None:
        if df.empty:
            raise ValueError("the results are empty: nothing to explore")
        self.df = df.reset_index(drop=True)
        models = sorted(map(str, self.df["model"].unique()))
        tasks = sorted(map(str, self.df["task"].unique()))
        self.task = w.Dropdown(options=tasks, description="task")
        self.model_a = w.Dropdown(options=models, value=model_a or models[0], description="model A")
        default_b = model_b or (models[1] if len(models) > 1 else NONE)
        self.model_b = w.Dropdown(options=[NONE, *models], value=default_b, description="model B")
        self.language = w.Dropdown(options=[ALL], description="language")
        self.outcome = w.Dropdown(options=OUTCOMES, value="all", description="outcome")
        self.sample = w.Dropdown(options=[], description="sample", layout=w.Layout(width="420px"))
        self.previous = w.Button(description="◀", layout=w.Layout(width="40px"))
        self.next = w.Button(description="▶", layout=w.Layout(width="40px"))
        self.count = w.HTML()
        self.prompt = w.HTML()
        self.images = w.HBox([])
        self.view_a = w.HTML(layout=w.Layout(width="50%"))
        self.view_b = w.HTML(layout=w.Layout(width="50%"))
        self.widget = self._layout()
        self._wire()
        self._refresh_languages()
        self._refresh_samples()

    def _layout(self) -> w.Widget:
        filters = w.HBox([self.task, self.language, self.outcome])
        models = w.HBox([self.model_a, self.model_b])
        navigation = w.HBox([self.previous, self.sample, self.next, self.count])
        return w.VBox(
            [filters, models, navigation, self.prompt, self.images, w.HBox([self.view_a, self.view_b])]
        )

    def _wire(self) -> None:
        self.task.observe(lambda _: (self._refresh_languages(), self._refresh_samples()), names="value")
        for control in (self.model_a, self.model_b, self.language, self.outcome):
            control.observe(lambda _: self._refresh_samples(), names="value")
        self.sample.observe(lambda _: self._show(), names="value")
        self.previous.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(1))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # state -> rows

    def _rows(self, model: str) -> pd.DataFrame:
        part = self.df[(self.df["task"] == self.task.value) & (self.df["model"] == model)]
        if self.language.value != ALL:
            part = part[part["language"].astype(str) == self.language.value]
        return part.drop_duplicates(_KEY, keep="last").set_index(["sample_id", "epoch"])

    def matching(self) -> list[tuple[str, int]]:
        """(sample_id, epoch) of the samples that pass the filters, in the order of the results."""
        rows_a = self._rows(self.model_a.value)
        outcomes_a = rows_a.apply(outcome_of, axis=1) if len(rows_a) else pd.Series(dtype=str)
        wanted = self.outcome.value
        if wanted in ("correct", "wrong", "error"):
            return [key for key, outcome in outcomes_a.items() if outcome == wanted]
        if wanted == "judges split":
            return [key for key, row in rows_a.iterrows() if judges_split(row)]
        if wanted == "all" or self.model_b.value == NONE:
            return list(rows_a.index)
        rows_b = self._rows(self.model_b.value)
        outcomes_b = rows_b.apply(outcome_of, axis=1) if len(rows_b) else pd.Series(dtype=str)
        a_wins = wanted == "A right, B wrong"
        keep = []
        for key, outcome in outcomes_a.items():
            other = outcomes_b.get(key)
            if (a_wins and outcome == "correct" and other == "wrong") or (
                not a_wins and outcome == "wrong" and other == "correct"
            ):
                keep.append(key)
        return keep

    def _refresh_languages(self) -> None:
        part = self.df[self.df["task"] == self.task.value]
        languages = sorted(map(str, part["language"].dropna().unique())) if "language" in part else []
        self.language.options = [ALL, *languages]
        self.language.value = ALL

    def _refresh_samples(self) -> None:
        keys = self.matching()
        languages = self._rows(self.model_a.value)["language"] if "language" in self.df else None
        options = []
        for sample_id, epoch in keys:
            label = str(sample_id)
            if languages is not None and not _missing(languages.get((sample_id, epoch))):
                label += f" · {languages.get((sample_id, epoch))}"
            if self.df["epoch"].nunique() > 1:
                label += f" · epoch {epoch}"
            options.append((label, (sample_id, epoch)))
        self.sample.options = options
        self.sample.value = options[0][1] if options else None
        self.count.value = f"{len(options)} matching"
        self._show()

    def _step(self, delta: int) -> None:
        values = [value for _, value in self.sample.options]
        if values and self.sample.value in values:
            self.sample.value = values[(values.index(self.sample.value) + delta) % len(values)]

    # rows -> view

    def _show(self) -> None:
        key = self.sample.value
        if key is None:
            self.prompt.value = "<i>no sample matches these filters</i>"
            self.images.children = ()
            self.view_a.value = self.view_b.value = ""
            return
        row_a = self._row(self.model_a.value, key)
        row_b = self._row(self.model_b.value, key) if self.model_b.value != NONE else None
        first = row_a if row_a is not None else row_b
        self.prompt.value = _prompt_html(first)
        self.images.children = tuple(_image_widgets(first))
        self.view_a.value = _answer_html(self.model_a.value, row_a)
        self.view_b.value = _answer_html(self.model_b.value, row_b) if self.model_b.value != NONE else ""

    def _row(self, model: str, key: tuple[str, int]) -> dict | None:
        rows = self._rows(model)
        return rows.loc[key].to_dict() if key in rows.index else None


def sample_explorer(
    df: pd.DataFrame, model_a: str | None = None, model_b: str | None = None
) -> SampleExplorer:
    """An ipywidgets browser over the results; shows itself when it is the last value in a cell."""
    return SampleExplorer(df, model_a=model_a, model_b=model_b)


_PRE = "white-space:pre-wrap;background:#f6f6f8;padding:6px;margin:2px 0;max-height:260px;overflow:auto"


def _prompt_html(row: dict | None) -> str:
    if row is None:
        return ""
    prompt = row.get("prompt")
    text = (
        "<i>(the prompt is not in these results)</i>"
        if _missing(prompt)
        else f'<pre style="{_PRE}">{_e(prompt)}</pre>'
    )
    return f"<b>Prompt</b>{text}<b>Target</b>: <code>{_e(row.get('target'))}</code>"


def _answer_html(model: str, row: dict | None) -> str:
    if row is None:
        return f"<h4>{_e(model)}</h4><i>no result for this sample</i>"
    outcome = outcome_of(row)
    colour = {"correct": "#1b7f3b", "wrong": "#b36b00", "error": "#b00020"}[outcome]
    lines = [f'<h4>{_e(model)} <span style="color:{colour}">{outcome}</span></h4>']
    if outcome == "error":
        lines.append(f"<b>error</b>: {_e(row.get('error'))}: {_e(row.get('error_message'))}")
    else:
        lines.append(
            f"<b>score</b>: {float(row['score']):.3f} &nbsp; <b>extracted</b>: <code>{_e(row.get('extracted'))}</code>"
        )
    votes = _votes(row)
    if votes:
        lines.append(_judge_html(row, votes))
    elif not _missing(row.get("explanation")) and row.get("explanation"):
        lines.append(f"<b>why</b>: {_e(row.get('explanation'))}")
    lines.append(_cost_line(row))
    output = row.get("output")
    cut = " (truncated at max_tokens)" if row.get("truncated") is True else ""
    lines.append(f'<b>output</b>{cut}<pre style="{_PRE}">{_e("" if _missing(output) else output)}</pre>')
    if (thinking := _thinking_html(row)) is not None:
        lines.append(thinking)
    return "<br>".join(lines)


def _votes(row: dict | pd.Series) -> list[dict]:
    votes = row.get("judge_votes")
    return [v for v in votes if isinstance(v, dict)] if isinstance(votes, (list, tuple)) else []


def judges_split(row: dict | pd.Series) -> bool:
    """The judges' verdicts on this answer differ: between judges, replicates, or the two orders of a
    pairwise comparison (each vote's value is from the tested answer's side, so orders compare)."""
    return len({v.get("value") for v in _votes(row)}) > 1


def _judge_html(row: dict, votes: list[dict]) -> str:
    """Each judge verdict with its reason; pairwise, the order the judge saw the answers in."""
    head = "<tr><th>judge</th><th>#</th><th>order</th><th>verdict</th><th>value</th><th>reason</th></tr>"
    cells = "".join(
        f"<tr><td>{_e(v.get('judge'))}</td><td>{_e(v.get('replicate'))}</td>"
        f"<td>{_e(v.get('order') or '')}</td><td>{_e(v.get('verdict'))}</td>"
        f"<td>{_e(v.get('value'))}</td><td>{_e(v.get('reason'))}</td></tr>"
        for v in votes
    )
    split = ' <span style="color:#b36b00">judges split</span>' if judges_split(row) else ""
    setup = "" if _missing(row.get("judge_setup")) else _e(row.get("judge_setup"))
    return (f"<b>judged</b>{split}: {setup}"
            f'<table style="font-size:90%">{head}{cells}</table>')  # fmt: skip


def _thinking_html(row: dict) -> str | None:
    """The model's thinking, folded away: it was billed but never scored."""
    text, tokens = row.get("reasoning"), row.get("reasoning_tokens")
    if _missing(text) and (_missing(tokens) or not tokens):
        return None
    count = "" if _missing(tokens) else f"{int(tokens)} tokens, "
    body = "(not returned by the router)" if _missing(text) else text
    return (f'<details><summary><b>thinking</b> ({count}billed as output, not scored)</summary>'
            f'<pre style="{_PRE}">{_e(body)}</pre></details>')  # fmt: skip


def _cost_line(row: dict) -> str:
    cost = row.get("cost_rub")
    source = "router"
    if _missing(cost):
        cost, source = row.get("cost_rub_estimated"), "estimate"
    money = "₽ –" if _missing(cost) else f"₽{float(cost):.6f} ({source})"
    latency = row.get("latency_s")
    ttft = row.get("ttft_s")
    timing = "–" if _missing(latency) else f"{float(latency):.2f} s"
    if not _missing(ttft):
        timing += f" (TTFT {float(ttft):.2f} s)"
    cached = " · from cache" if row.get("from_cache") is True else ""
    return f"<b>cost</b>: {money}{_judge_cost(row)} · <b>latency</b>: {timing}{cached}"


def _judge_cost(row: dict) -> str:
    """The judge's ₽, never part of the model's: what the router reported, and what was billed
    (0 for replies from the cache)."""
    cost = row.get("cost_rub_judge")
    if _missing(cost):
        return ""
    billed = row.get("cost_rub_judge_billed")
    paid = "" if _missing(billed) else f", ₽{float(billed):.6f} billed"
    return f" + judge ₽{float(cost):.6f} ({int(row.get('judge_calls') or 0)} calls{paid})"


def _image_widgets(row: dict | None, max_width: int = 420) -> list[w.Widget]:
    refs = row.get("image_refs") if row else None
    if refs is None or (not isinstance(refs, (list, tuple)) and _missing(refs)):
        return []
    shown: list[w.Widget] = []
    for ref in list(refs):
        path = Path(str(ref.get("ref", ""))) if isinstance(ref, dict) else Path(str(ref))
        if path.is_file():
            fmt = path.suffix.lstrip(".").lower().replace("jpg", "jpeg") or "png"
            width = min(max_width, int(ref.get("width") or max_width)) if isinstance(ref, dict) else max_width
            shown.append(w.Image(value=path.read_bytes(), format=fmt, width=width))
        else:
            shown.append(w.HTML(f"<i>image not available here: {_e(path)}</i>"))
    return shown
