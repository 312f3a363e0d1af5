"""A self-contained HTML report of a results DataFrame, and the plots saved as PNG and SVG.

    write_report(df, "report.html", manifests=[...])   # one file, no external resources
    save_plots(df, "plots/")                             # accuracy_vs_cost.png/.svg, ...

Every value taken from the results (outputs, targets, error messages, manifests) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from evalkit import plots, stats
from evalkit.common.errors import ConfigError
from evalkit.common.money import format_rub
from evalkit.common.text import encodable

OUTPUT_CHARS = 600
WORST_PER_TASK = 15
_SECRET_FIELDS = ("api_key", "apikey", "authorization", "secret", "token_value", "password")
_KEY_VARIABLES = ("ROUTERAI_API_KEY", "OPENAI_API_KEY")
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def report_plots(df: pd.DataFrame) -> dict[str, Callable[[], Figure]]:
    """The plots a report shows for these results, by file stem, as zero-argument builders."""
    builders: dict[str, Callable[[], Figure]] = {
        "accuracy_vs_cost": lambda: plots.accuracy_vs_cost(df),
        "accuracy_vs_latency": lambda: plots.accuracy_vs_latency(df, latency="total"),
    }
    if "ttft_s" in df and pd.to_numeric(df["ttft_s"], errors="coerce").notna().any():
        builders["accuracy_vs_ttft"] = lambda: plots.accuracy_vs_latency(df, latency="ttft")
    if "language" in df and df["language"].notna().any():
        builders["language_heatmap"] = lambda: plots.language_heatmap(df)
    builders["cost_breakdown"] = lambda: plots.cost_breakdown(df)
    builders["latency_distribution"] = lambda: plots.latency_distribution(df)
    return builders


def save_plots(df: pd.DataFrame, out_dir: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save every report plot into `out_dir` (created if needed) in each format; returns the paths."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in report_plots(df).items():
        figure = build()
        for fmt in formats:
            path = directory / f"{name}.{fmt}"
            figure.savefig(path, format=fmt, dpi=120)
            written.append(path)
    return written


def write_report(
    df: pd.DataFrame,
    out_path: str | Path,
    manifests: list[dict] | None = None,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML report (tables, embedded plots, per-language accuracy, pass@k,
    paired comparisons, the worst failures and wrong answers, the run manifests) and return its path."""
    path = Path(out_path)
    if path.is_dir():
        raise ConfigError("is a folder; give the HTML file to write, e.g. report.html", where=str(path))
    html = encodable(render_report(df, manifests, title))  # a lone surrogate in an output cannot be UTF-8
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report: {exc.strerror or exc}", where=str(path)) from None
    return path


def render_report(df: pd.DataFrame, manifests: list[dict] | None = None, title: str | None = None) -> str:
    """The report as an HTML string (see `write_report`)."""
    title = title or _default_title(df)
    simulated = bool("simulated" in df and df["simulated"].fillna(False).astype(bool).any())
    sections = [
        _banner() if simulated else "",
        _shard_banner(manifests or []),
        _section("Summary", _summary_html(df)),
        _section("Thinking, truncation and caching", _thinking_html(df)),
        _section("Paired comparisons", _comparisons_html(df)),
        _section("Plots", _plots_html(df)),
        _section("Latency", _latency_html(df)),
        _section("Accuracy by language", _languages_html(df)),
        _section("pass@k", _pass_at_k_html(df)),
        _section("Failed calls", _failures_html(df)),
        _section("Wrong answers", _wrong_html(df)),
        _section("Run manifests", _manifests_html(manifests or [])),
    ]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(s for s in sections if s)
    return _page(_e(title), body, generated, len(df))


def _default_title(df: pd.DataFrame) -> str:
    tasks = sorted(map(str, df["task"].unique())) if "task" in df else []
    models = df["model"].nunique() if "model" in df else 0
    return f"evalkit report: {', '.join(tasks) or 'no tasks'} × {models} model{'s' if models != 1 else ''}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _section(heading: str, content: str) -> str:
    if not content:
        return ""
    anchor = heading.lower().replace(" ", "-").replace("@", "")
    return f'<section id="{anchor}"><h2>{_e(heading)}</h2>\n{content}\n</section>'


def _banner() -> str:
    return (
        '<div class="banner">SIMULATED: these results come from the local simulator, not from real '
        "models. Accuracy, latency and ₽ are synthetic.</div>"
    )


def _shard_banner(manifests: list[dict]) -> str:
    """A shard holds part of a run's samples (and maybe only some epochs of a problem, for pass@k)."""
    shards = [
        f"{m.get('run_id')} is shard {(m.get('config') or {}).get('shard')}"
        for m in manifests
        if (m.get("config") or {}).get("shard")
    ]
    if not shards:
        return ""
    return (
        f'<div class="banner">SHARD: {_e("; ".join(shards))} of a run. Its numbers, pass@k included, cover '
        "its own part of the samples; merge the shards (evalkit merge) for the whole run.</div>"
    )


# --- formatting ---------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _ci(value: float, low: float, high: float, fmt: Callable[[float], str]) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{fmt(value)} <small>[{fmt(low)}, {fmt(high)}]</small>"


def _seconds(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], raw: bool = False, wrap: bool = False
) -> str:
    """An HTML table; cells are escaped unless `raw` (only for cells this module formatted itself)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else _e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    opening = '<table class="wrap">' if wrap else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- sections -----------------------------------------------------------------------------------------


def _summary_html(df: pd.DataFrame) -> str:
    table = stats.summary_table(df)
    if table.empty:
        return "<p>No results.</p>"
    header = ["task", "model", "n", "errors", "accuracy, % [95% CI]", "CI method", "latency p50 / p95, s",
              "TTFT p50 / p95, s", "total ₽", "₽ per 1000 samples [95% CI]", "₽ per correct [95% CI]"]  # fmt: skip
    rows = []
    for r in table.itertuples():
        rows.append([
            _e(r.task), _e(r.model), str(r.n),
            f"{r.errors} ({_pct(r.error_rate)}%)" if r.errors else "0",
            _ci(r.accuracy, r.accuracy_low, r.accuracy_high, _pct), _e(r.ci_method),
            f"{_seconds(r.latency_p50_s)} / {_seconds(r.latency_p95_s)}",
            f"{_seconds(r.ttft_p50_s)} / {_seconds(r.ttft_p95_s)}", format_rub(r.total_rub),
            _ci(r.rub_per_1000, r.rub_per_1000_low, r.rub_per_1000_high, format_rub),
            _ci(r.rub_per_correct, r.rub_per_correct_low, r.rub_per_correct_high, format_rub),
        ])  # fmt: skip
    notes = []
    estimated = int(table["cost_estimated_calls"].sum())
    if estimated:
        notes.append(
            f"The router did not report a cost for {estimated} calls; ₽ there is the price-card estimate."
        )
    unknown = int(table["cost_unknown_calls"].sum())
    if unknown:
        notes.append(
            f"The router reported neither a cost nor token counts for {unknown} calls: their ₽ are unknown and "
            "counted as 0 here, so the totals are too low (the budget kept their worst case)."
        )
    notes.append("Failed calls are excluded from accuracy and counted under errors; their cost is included.")
    if "judge_rub" in table:  # judged tasks: the judge's ₽ are never in the totals above
        judged = table[table["judge_rub"].notna()]
        notes += [
            f"{r.task} / {r.model}: the judge cost {format_rub(r.judge_rub)} ₽ more, not in the totals above; "
            f"₽ per 1000 samples with the judge {format_rub(r.rub_per_1000_with_judge)}."
            for r in judged.itertuples()
        ]
    return _table(header, rows, raw=True) + "".join(f'<p class="note">{_e(n)}</p>' for n in notes)


def _thinking_html(df: pd.DataFrame) -> str:
    """Only for runs that thought, were cut at max_tokens, or read a prompt cache (else no section)."""
    table = stats.summary_table(df)
    shown = table[
        (table["truncated_rate"] > 0)
        | (table["rub_reasoning"].fillna(0) > 0)
        | (table["rub_cache_saved"] != 0)
        | (table["cache_saved_unknown_calls"] > 0)
    ]
    if shown.empty:
        return ""
    header = ["task", "model", "thinking tokens per call", "thinking, % of ₽", "truncated, %",
              "accuracy, % (all / without truncated)", "caching saved ₽"]  # fmt: skip
    rows = [[
        _e(r.task), _e(r.model),
        "–" if r.reasoning_tokens_mean != r.reasoning_tokens_mean else f"{r.reasoning_tokens_mean:.0f}",
        _pct(r.rub_reasoning / r.total_rub) if r.total_rub else "–", _pct(r.truncated_rate),
        f"{_pct(r.accuracy)} / {_pct(r.accuracy_untruncated)}", _cache_saved_cell(r),
    ] for r in shown.itertuples()]  # fmt: skip
    note = ("Thinking tokens are billed as output; their share is the price card's, scaled to what was billed. "
            "A truncated answer (finish_reason=length) is the model's answer and is scored; accuracy is also "
            "shown without those. Caching saved: cached prompt tokens at the full prompt price minus the "
            "cache-read price, net of what cache writes cost extra; calls whose cache price the catalog "
            "lacks are counted apart (their saving is unknown).")  # fmt: skip
    return _table(header, rows, raw=True) + f'<p class="note">{_e(note)}</p>'


def _cache_saved_cell(r: Any) -> str:
    saved, unknown = r.rub_cache_saved, r.cache_saved_unknown_calls
    return format_rub(saved) if not unknown else f"{format_rub(saved)} + unknown on {unknown} calls"


def _comparisons_html(df: pd.DataFrame) -> str:
    """For each task, the most accurate model against every other one (paired on the same samples),
    with Holm-adjusted p-values over every comparison shown."""
    found = []
    for task, part in df.groupby("task", sort=True):
        ranking = part.groupby("model")["score"].mean().sort_values(ascending=False)
        for other in ranking.index[1:]:
            found.append(stats.compare_models(part, ranking.index[0], other, task=task))
    if not found:
        return ""
    items = [f"<li><b>{_e(c.task)}</b>: {_e(c.sentence())} <small>({_e(c.method)})</small></li>"
             for c in stats.adjust(found)]  # fmt: skip
    note = (
        '<p class="note">Each interval is the inversion of its own test: it excludes 0 exactly when p &lt; 0.05. '
        f"With {len(found)} comparisons some small p-values turn up by chance; Holm's adjustment allows for "
        "that (the adjusted verdict is the one to trust when scanning the list).</p>"
        if len(found) > 1
        else ""
    )
    return f"<ul>{''.join(items)}</ul>{note}"


def _png_data_url(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots_html(df: pd.DataFrame) -> str:
    if df.empty:
        return ""
    figures = []
    for name, build in report_plots(df).items():
        caption = name.replace("_", " ")
        figures.append(f'<figure><img alt="{_e(caption)}" src="{_png_data_url(build())}">'
                       f"<figcaption>{_e(caption)}</figcaption></figure>")  # fmt: skip
    return "\n".join(figures)


def _latency_html(df: pd.DataFrame) -> str:
    table = stats.latency_table(df)
    if table.empty:
        return ""
    names = {"total": "latency, s", "ttft": "TTFT, s", "tokens_per_s": "output tokens/s"}
    header = ["task", "model", *(f"{label} p50 / p90 / p95" for label in names.values())]
    rows = []
    for _, r in table.iterrows():
        cells = [" / ".join(_seconds(r[f"{name}_p{q}"]) for q in (50, 90, 95)) for name in names]
        rows.append([str(r["task"]), str(r["model"]), *cells])
    note = '<p class="note">Successful calls only; cached responses are left out when fresh ones exist.</p>'
    return _table(header, rows) + note


def _languages_html(df: pd.DataFrame) -> str:
    wide = stats.by_language(df)
    if wide.empty:
        return ""
    languages = [c for c in wide.columns if c not in ("task", "model", "macro", "micro")]
    header = ["task", "model", *languages, "macro", "micro"]
    below = _significantly_below_best(df)
    rows = [[_e(r["task"]), _e(r["model"]),
             *(_pct(r[c]) + ("*" if (r["task"], r["model"], c) in below else "") for c in languages),
             _pct(r["macro"]), _pct(r["micro"])] for _, r in wide.iterrows()]  # fmt: skip
    note = (
        '<p class="note">Accuracy, %. Macro: the mean over languages; micro: the mean over samples. '
        "* : below the best model of that task and language, paired test with p &lt; 0.05 after Holm's "
        "adjustment over every model × language compared.</p>"
    )
    return _table(header, rows, raw=True) + note


def _significantly_below_best(df: pd.DataFrame) -> set[tuple[str, str, str]]:
    long = stats.by_language(df, long=True)
    hits = long[long["p_vs_best_holm"] < 0.05]
    return {(r.task, r.model, r.language) for r in hits.itertuples()}


def _pass_at_k_html(df: pd.DataFrame) -> str:
    if "epoch" not in df or df["epoch"].nunique() < 2:
        return ""
    binary = [task for task, part in df.groupby("task") if stats.is_binary(part["score"])]
    df = df[df["task"].isin(binary)]  # pass@k means pass or fail: tasks with partial credit have none
    if df.empty:
        return ""
    epochs = int(df.groupby(["task", "model", "sample_id"]).size().max())
    ks = [k for k in (1, 5, 10) if k <= epochs]
    table = stats.pass_at_k_table(df, ks=ks)
    header = ["task", "model", "problems", *(f"pass@{k}, % [95% CI]" for k in ks)]
    rows = [[_e(r["task"]), _e(r["model"]), str(r["problems"]), *(_pass_cell(r, k) for k in ks)]
            for _, r in table.iterrows()]  # fmt: skip
    return _table(header, rows, raw=True)


def _pass_cell(r: Any, k: int) -> str:
    """pass@k with its interval, and how many problems it covers when some had fewer than k answers."""
    cell = _ci(r[f"pass@{k}"], r[f"pass@{k}_low"], r[f"pass@{k}_high"], _pct)
    used = r[f"pass@{k}_problems"]
    return cell if used == r["problems"] else f"{cell} ({used} of {r['problems']} problems)"


def _clip(text: Any, limit: int = OUTPUT_CHARS) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _failures_html(df: pd.DataFrame) -> str:
    if "error" not in df or not df["error"].notna().any():
        return ""
    failed = df[df["error"].notna()]
    counts = failed.groupby(["task", "model", "error"]).size().reset_index(name="calls")
    first = failed.drop_duplicates(["task", "model", "error"]).set_index(["task", "model", "error"])
    rows = []
    for r in counts.itertuples():
        message = first.loc[(r.task, r.model, r.error)].get("error_message")
        rows.append([r.task, r.model, r.error, str(r.calls), _clip(message, 300)])
    return _table(["task", "model", "error class", "calls", "example message"], rows, wrap=True)


def _wrong_html(df: pd.DataFrame) -> str:
    if "score" not in df:
        return ""
    wrong = df[df["score"].notna() & (df["score"] < 1)]
    if wrong.empty:
        return ""
    cost, _ = stats.effective_cost(wrong)
    wrong = wrong.assign(_cost=cost).sort_values(["task", "score", "_cost"], ascending=[True, True, False])
    wrong = wrong.groupby("task", sort=True).head(WORST_PER_TASK)
    columns = [
        "task",
        "model",
        "sample_id",
        "language",
        "score",
        "target",
        "extracted",
        "output",
        "explanation",
    ]
    rows = []
    for _, r in wrong.iterrows():
        cells = [_clip(r.get(c)) if c in r else "" for c in columns]
        cells[4] = f"{r['score']:.2f}"
        rows.append(cells)
    note = (
        f'<p class="note">Lowest scores first (then the most expensive), up to {WORST_PER_TASK} per task.</p>'
    )
    return note + _table(columns, rows, wrap=True)


def _redact(value: Any) -> Any:
    """Manifests should never hold a key; this is a second line of defence before they are shown.
    A null stays null (nothing to hide), and `*_env` fields name a variable, which is no secret."""
    secrets = {os.environ.get(name) for name in _KEY_VARIABLES} - {None, ""}
    if isinstance(value, dict):
        return {k: "[redacted]" if _secret_field(str(k), v) else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[redacted]")
    return value


def _secret_field(name: str, value: Any) -> bool:
    if value is None:
        return False
    if name.lower().endswith("_env") and isinstance(value, str) and _VARIABLE_NAME.fullmatch(value):
        return False
    return any(s in name.lower() for s in _SECRET_FIELDS)


def _manifests_html(manifests: list[dict]) -> str:
    blocks = []
    for manifest in manifests:
        run_id = manifest.get("run_id", "run")
        text = json.dumps(_redact(manifest), indent=2, ensure_ascii=False, default=str)
        blocks.append(f"<details><summary>{_e(run_id)}</summary><pre>{_e(text)}</pre></details>")
    return "\n".join(blocks)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .85em; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: .3em .55em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; position: sticky; top: 0; }
td { white-space: nowrap; }
table.wrap td { white-space: pre-wrap; overflow-wrap: anywhere; max-width: 36em; min-width: 4em; }
tbody tr:nth-child(even) { background: #fafafa; }
small { color: #666; } .note { color: #555; font-size: .85em; }
.banner { background: #b00020; color: white; font-weight: bold; padding: .8em 1em; border-radius: 4px;
          font-size: 1.1em; letter-spacing: .02em; }
figure { display: inline-block; margin: .5em 1em .5em 0; } figure img { max-width: 100%; }
figcaption { text-align: center; color: #555; font-size: .85em; }
pre { background: #f6f6f8; padding: .8em; overflow-x: auto; font-size: .8em; }
footer { margin-top: 3em; color: #888; font-size: .8em; }
"""


def _page(title: str, body: str, generated: str, rows: int) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{title}</h1>
{body}
<footer>Generated by evalkit on {generated} from {rows} result rows.</footer>
</body>
</html>
"""
