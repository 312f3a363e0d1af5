"""Terminal tables for the CLI: a compact summary that fits the terminal, the full one on request,
and CSV or JSON for other programs. Accuracy is in % here, as in the report."""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from evalkit.common.money import format_rub

if TYPE_CHECKING:
    import pandas as pd

Format = Literal["table", "wide", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "wide", "csv", "json")
WIDE_WIDTH = 640

COMPACT = {
    "model": "model",
    "n": "n",
    "accuracy": "accuracy % [95% CI]",
    "errors": "errors",
    "latency_p50_s": "p50 s",
    "rub_per_1000": "₽/1000",
    "rub_per_correct": "₽/correct",
}


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def render(
    frame: pd.DataFrame,
    fmt: Format = "table",
    *,
    columns: dict[str, str] | None = None,
    cells: dict[str, Any] | None = None,
    title: str | None = None,
    width: int | None = None,
) -> str:
    """`frame` as text: a rich table of `columns` (name → header; default every column) with cells
    formatted by `cells` (name → function of the row), or every column at full precision as CSV/JSON."""
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return json.dumps(_records(frame), ensure_ascii=False, indent=2)
    from rich import box
    from rich.console import Console
    from rich.table import Table

    headers = columns or {name: str(name) for name in frame.columns}
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  header_style="bold", title_style="bold", collapse_padding=True)  # fmt: skip
    for name, header in headers.items():
        numeric = name in frame and frame[name].dtype.kind in "iuf"
        names = name in ("model", "run_id", "task", "created_at", "status") or name in (cells or {})  # whole
        lists = name in ("tasks", "models")  # lists wrap between items and share what width is left
        table.add_column(header, justify="right" if numeric or name in (cells or {}) else "left",
                         no_wrap=names, overflow="ellipsis", ratio=1 if lists else None)  # fmt: skip
    for _, row in frame.iterrows():
        table.add_row(*(_cell(row, name, cells) for name in headers))
    buffer = io.StringIO()
    size = WIDE_WIDTH if fmt == "wide" else width or terminal_width()
    Console(file=buffer, width=size, color_system=None, soft_wrap=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def _cell(row: Any, name: str, cells: dict[str, Any] | None) -> str:
    if cells and name in cells:
        return cells[name](row)
    value = row.get(name)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return "–" if value is None else str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN becomes null, infinity stays a string ("inf")."""
    out = []
    for record in frame.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif isinstance(value, float) and math.isinf(value):
                value = "inf" if value > 0 else "-inf"
            elif hasattr(value, "item"):
                value = value.item()
            clean[str(key)] = value
        out.append(clean)
    return out


# --- the summary table ------------------------------------------------------------------------------


def pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


rub = format_rub  # the tables' short name


def seconds(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


SUMMARY_CELLS = {
    "accuracy": lambda r: f"{pct(r['accuracy'])} [{pct(r['accuracy_low'])}, {pct(r['accuracy_high'])}]",
    "errors": lambda r: f"{r['errors']} ({pct(r['error_rate'])}%)" if r["errors"] else "0",
    "latency_p50_s": lambda r: seconds(r["latency_p50_s"]),
    "rub_per_1000": lambda r: rub(r["rub_per_1000"]),
    "rub_per_correct": lambda r: rub(r["rub_per_correct"]),
}


def summary(frame: pd.DataFrame, fmt: Format = "table", *, width: int | None = None) -> str:
    """A `summary_table` for people (compact by default; every column with "wide") or programs."""
    if fmt != "table":
        return render(frame, fmt)
    if "task" not in frame or frame.empty:
        return render(frame, fmt, columns=COMPACT, cells=SUMMARY_CELLS, width=width)
    return "\n\n".join(  # a table per task keeps model names whole within 100 columns
        "\n".join([render(part, fmt, columns=COMPACT, cells=SUMMARY_CELLS, title=f"task: {task}", width=width),
                   *thinking_notes(part)])
        for task, part in frame.groupby("task", sort=True)
    )  # fmt: skip


def thinking_notes(part: pd.DataFrame) -> list[str]:
    """Lines under a task's table, only for models that need them: answers cut at max_tokens (and the
    accuracy without them), the thinking's share of the ₽, and what prompt caching saved."""
    lines = []
    for _, r in part.iterrows():
        said = []
        if r.get("truncated_rate", 0) > 0:
            said.append(f"{pct(r['truncated_rate'])}% truncated at max_tokens (accuracy without them "
                        f"{pct(r['accuracy_untruncated'])}%)")  # fmt: skip
        thinking, total = r.get("rub_reasoning", math.nan), r.get("total_rub", math.nan)
        if thinking == thinking and thinking > 0 and total > 0:
            said.append(
                f"thinking {100 * thinking / total:.0f}% of the ₽ ({r['reasoning_tokens_mean']:.0f} tokens a call)"
            )
        if caching := cache_note(r):
            said.append(caching)
        if unknown := r.get("cost_unknown_calls", 0):
            said.append(f"{unknown} calls came back without a cost or token counts: ₽ shown are too low")
        with_judge = r.get("rub_per_1000_with_judge", math.nan)
        if with_judge is not None and with_judge == with_judge:  # a judged task (NaN for the others)
            said.append(f"judge {rub(r['judge_rub'])} ₽ apart: ₽/1000 {rub(r['rub_per_1000'])} without it, "
                        f"{rub(with_judge)} with it")  # fmt: skip
        if said:
            lines.append(f"  {r['model']}: " + "; ".join(said))
    return lines


def cache_note(r: Any) -> str:
    """What prompt caching saved (or cost, when writes outweighed reads), and what is not known."""
    saved, unknown = r.get("rub_cache_saved", 0), r.get("cache_saved_unknown_calls", 0) or 0
    said = (
        f"caching saved {rub(saved)} ₽"
        if saved > 0
        else f"caching cost {rub(-saved)} ₽ more"
        if saved < 0
        else ""
    )
    if unknown:
        gap = f"{unknown} calls read or wrote the cache at a price the catalog lacks, saving unknown"
        said = f"{said} on the other calls ({gap})" if said else f"caching saved ? ₽ ({gap})"
    return said


def runs(frame: pd.DataFrame, fmt: Format = "table", *, width: int | None = None) -> str:
    """The `list_runs` table: id, status, tasks, models, ₽ billed and date."""
    if fmt != "table" and fmt != "wide":
        return render(frame, fmt)
    columns = {"run_id": "run", "status": "status", "tasks": "tasks", "models": "models",
               "spent_rub": "₽ billed", "created_at": "created (UTC)"}  # fmt: skip
    frame = frame.assign(
        models=[", ".join(m.split("/", 1)[-1] for m in str(v).split(", ") if m) for v in frame["models"]]
    )
    cells = {
        "spent_rub": lambda r: rub(r["spent_rub"]) if r["spent_rub"] is not None else "–",
        "created_at": lambda r: str(r["created_at"] or "–")[:16].replace("T", " "),
        "status": lambda r: f"{r['status']}{'*' if r['simulated'] else ''}",
    }
    table = render(frame, fmt, columns=columns, cells=cells, width=width)
    return table + ("\n* simulated" if frame["simulated"].any() else "")


def comparisons(
    found: Sequence[Any], fmt: Format = "table", *, pooled: Any = None, width: int | None = None
) -> str:
    """Per-group paired comparisons (from `stats.compare_groups`) with their Holm-adjusted p. As CSV or
    JSON, the `pooled` comparison (`stats.compare_models`, the table's first line) comes first, with
    `scope` "pooled" and no Holm p: it is the one primary test, not a member of the groups' family."""
    import pandas as pd

    def row(c: Any, scope: str) -> dict[str, Any]:
        return {
            "scope": scope, "model_a": c.model_a, "model_b": c.model_b, "task": c.task,
            "language": c.language, "n_pairs": c.n_pairs, "dropped_errors": c.dropped_errors,
            "unmatched": c.unmatched,
            "accuracy_a": c.accuracy_a, "accuracy_b": c.accuracy_b, "difference": c.difference,
            "low": c.low, "high": c.high, "p_value": c.p_value,
            "p_holm": math.nan if scope == "pooled" else c.p_adjusted, "method": c.method,
        }  # fmt: skip

    if fmt in ("csv", "json"):
        rows = [row(pooled, "pooled")] if pooled is not None else []
        return render(pd.DataFrame(rows + [row(c, "group") for c in found]), fmt)
    frame = pd.DataFrame([row(c, "group") for c in found])
    level = 1 - (found[0].confidence if found else 0.95)

    def p(value: float) -> str:
        return "–" if math.isnan(value) else ("<0.001" if value < 0.001 else f"{value:.3f}")

    columns = {"task": "task", "language": "language", "n_pairs": "pairs", "accuracy_a": "A, %",
               "accuracy_b": "B, %", "difference": "A − B, pp [CI]", "p_value": "p", "p_holm": "p Holm",
               "verdict": "after Holm"}  # fmt: skip
    if frame["language"].isna().all():
        columns.pop("language")
    cells = {
        "accuracy_a": lambda r: pct(r["accuracy_a"]),
        "accuracy_b": lambda r: pct(r["accuracy_b"]),
        "difference": lambda r: f"{pct(r['difference'])} [{pct(r['low'])}, {pct(r['high'])}]",
        "p_value": lambda r: p(r["p_value"]),
        "p_holm": lambda r: p(r["p_holm"]),
        "verdict": lambda r: "significant" if r["p_holm"] < level else "–",
        "language": lambda r: r["language"] or "–",
    }
    return render(frame, fmt, columns=columns, cells=cells, width=width)


def languages(wide: pd.DataFrame, fmt: Format = "table", *, width: int | None = None) -> str:
    """`stats.by_language` (wide) for people: a table per task of accuracy in % (whole numbers, so 13
    languages fit 100 columns) for the languages that task has, then macro and micro."""
    if fmt in ("csv", "json"):
        return render(wide, fmt)
    tables = []
    for task, part in wide.groupby("task", sort=True):
        part = part.dropna(axis=1, how="all")
        values = [c for c in part.columns if c not in ("task", "model")]
        columns = {"model": "model", **{c: c for c in values}}
        cells = {c: (lambda r, c=c: "–" if r[c] != r[c] else f"{100 * r[c]:.0f}") for c in values}
        title = f"accuracy by language, %: {task}"
        tables.append(render(part, fmt, columns=columns, cells=cells, title=title, width=width))
    return "\n\n".join(tables)
