"""The `evalkit` command: a thin layer over the public API. Heavy imports happen inside commands."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import EvalkitError, EvalkitWarning
from evalkit.common.redact import redact

if TYPE_CHECKING:
    from evalkit.common.clock import Clock

DEMO_LIMIT = 26


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run one command; returns its exit code. `clock`: the time a run's retries, backoff and deadlines
    read (default real time; a `ManualClock` lets a test of backoff take no wall time)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.clock = clock
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    terminated = _stop_on_sigterm()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", EvalkitWarning)
            warnings.showwarning = _show_warning
            code = args.handler(args) or 0
            sys.stdout.flush()  # here, so a closed pipe is met inside this try, not at exit
        return code
    except BrokenPipeError:  # `evalkit show RUN | head -1`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 0
    except EvalkitError as exc:
        print(f"evalkit: error: {redact(_with_flag(str(exc), exc.option))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command was pointed at (a folder for a file, a full disk, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"evalkit: error: {redact(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Our warnings as one line, like our errors; other libraries' as Python shows them."""
    if issubclass(category, EvalkitWarning):
        print(f"evalkit: warning: {redact(str(message))}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, *args, **kwargs)


_SHOW_WARNING = warnings.showwarning


def _stop_on_sigterm() -> list[bool]:
    """SIGTERM (`timeout`, `docker stop`, a batch scheduler) stops the command as Ctrl-C does: the run
    is cancelled, its journal flushed and its manifest says `interrupted` with the resume command.
    Returns a flag that turns true once it arrived (the exit code is then 143, not 130)."""
    arrived: list[bool] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        arrived.append(True)
        on_ctrl_c = signal.getsignal(signal.SIGINT)  # asyncio.run's while a run is going
        if not callable(on_ctrl_c):  # SIGINT ignored (a background job): still stop
            raise KeyboardInterrupt
        on_ctrl_c(signal.SIGINT, frame)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)
    return arrived


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalkit", description="Evaluate LLMs behind an OpenAI-compatible router that bills in rubles."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, help_text, add, handler in _COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add(sub)
        sub.set_defaults(handler=handler)
    return parser


# ---- run ---------------------------------------------------------------------------------------


def _add_run(parser: argparse.ArgumentParser) -> None:
    from evalkit.runner.config import DEFAULT_CONCURRENCY

    parser.add_argument("tasks", nargs="*", help="task names (see `evalkit list`) or YAML paths")
    parser.add_argument(
        "--model", "-m", action="append", dest="models", default=[], help="model id (repeatable)"
    )
    _add_selection(parser)
    parser.add_argument("--epochs", type=int, help="repeat each sample K times (pass@k, variance)")
    parser.add_argument(
        "--concurrency", "-c", type=int, help=f"most requests in flight (default {DEFAULT_CONCURRENCY})"
    )
    parser.add_argument(
        "--budget-rub",
        type=float,
        help="never spend more than this many ₽ in this run; with --shard, in this shard alone "
        "(N shards may spend N times it; one ceiling for all: --executor ray)",
    )
    _add_endpoint(parser)
    parser.add_argument(
        "--sim-latency-scale",
        type=float,
        metavar="S",
        help="with --sim: the simulator's latencies × S (default 1; 0 answers at once)",
    )
    parser.add_argument("--resume", metavar="RUN_ID", help="finish the missing samples of a run")
    parser.add_argument(
        "--retry-errors", action="store_true", help="on resume, retry samples whose calls failed"
    )
    parser.add_argument("--force", action="store_true", help="resume even if a task definition changed")
    parser.add_argument("--no-cache", action="store_true", help="do not reuse recorded responses")
    parser.add_argument("--no-stream", action="store_true", help="non-streaming requests (no TTFT)")
    parser.add_argument(
        "--out", default=None, help="results folder (default results/, or $EVALKIT_RESULTS_DIR)"
    )
    parser.add_argument("--run-id", help="name the run (default: timestamp + random)")
    parser.add_argument(
        "--phase",
        choices=("all", "generate"),
        help="generate: record responses only, score later with `evalkit score RUN` (default all)",
    )
    parser.add_argument(
        "--shard", metavar="I/N", help="run only shard I of N (1-based); join the shards with `evalkit merge`"
    )
    _add_executor(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_format(parser)


def _add_executor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        metavar="local|ray|ray://HOST:PORT",
        help="where calls and code scoring run (default local; ray needs the `evalkit[ray]` extra)",
    )


def _add_format(parser: argparse.ArgumentParser) -> None:
    """--wide, --csv, --json: how a command prints its table (default: a compact one that fits)."""
    group = parser.add_mutually_exclusive_group()
    for flag, fmt, text in (("--wide", "wide", "every column (wider than most terminals)"),
                            ("--csv", "csv", "every column as CSV"), ("--json", "json", "every column as JSON")):  # fmt: skip
        group.add_argument(flag, dest="fmt", action="store_const", const=fmt, help=text)
    parser.set_defaults(fmt="table")


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", "-n", type=int, help="at most N samples per task")
    parser.add_argument("--limit-per-language", type=int, help="at most N samples per language")
    parser.add_argument(
        "--language", action="append", dest="languages", help="only this language (repeatable)"
    )
    parser.add_argument("--seed", type=int, help="shuffle samples with this seed before limiting")


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sim", action="store_true", help="run on the bundled router simulator (no key, offline)"
    )
    parser.add_argument("--base-url", help="router base URL (default https://routerai.ru/api/v1)")
    parser.add_argument("--api-key-env", help="read the key from this environment variable")
    parser.add_argument(
        "--route",
        action="append",
        dest="routes",
        metavar="MODEL=URL[,KEY_ENV]",
        help="serve MODEL from another endpoint (and key variable) than the default (repeatable)",
    )


def _run(args: argparse.Namespace) -> int:
    from evalkit.runner.api import run

    if not args.resume and (not args.tasks or not args.models):
        raise EvalkitError("give at least one task and one --model (or --resume RUN_ID)")
    result = run(
        args.tasks,
        args.models,
        limit=args.limit,
        limit_per_language=args.limit_per_language,
        languages=args.languages,
        seed=args.seed,
        epochs=args.epochs,
        concurrency=args.concurrency,
        budget_rub=args.budget_rub,
        sim=args.sim,
        sim_latency_scale=args.sim_latency_scale,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        model_routes=args.routes,
        resume=args.resume,
        retry_errors=args.retry_errors,
        force=args.force,
        cache=not args.no_cache,
        stream=not args.no_stream,
        out=args.out,
        run_id=args.run_id,
        progress=not args.quiet,
        phase=args.phase or "all",
        shard=args.shard,
        executor=args.executor or "local",
        **({"clock": args.clock} if args.clock else {}),
    )
    _print_outcome(result, args.fmt)
    return 0 if result.status in ("completed", "completed_with_errors") else 3


_FIXED_BY = {"budget_exhausted": "budget_rub"}  # a run status and the option that lets a resume go on


def _with_flag(message: str, option: str | None) -> str:
    """A message that names a run option, with the flag that sets it on the command line."""
    return f"{message} (--{option.replace('_', '-')})" if option else message


def _print_outcome(result: Any, fmt: str = "table") -> None:
    from evalkit.cli import display

    if fmt in ("csv", "json"):  # machine output: the table alone
        print(display.summary(result.summary(), fmt) if len(result.df) else "")
        return
    print(
        f"run {result.run_id}: {result.status}"
        + (f" — {redact(_with_flag(result.message, _FIXED_BY.get(result.status)))}" if result.message else "")
    )
    print(f"results: {result.path}")
    if shard := _shard_of(result.path):
        print(
            f"shard {shard}: these numbers cover this shard's samples only, and its ₽ budget was its own; "
            "join the shards with: evalkit merge RUN... --into RUN"
        )
    if len(result.df):
        print(display.summary(result.summary(), fmt))


def _shard_of(directory: Path) -> str | None:
    from evalkit.runner.journal import read_manifest

    try:
        return (read_manifest(directory).get("config") or {}).get("shard")
    except EvalkitError:
        return None


# ---- demo --------------------------------------------------------------------------------------


def _add_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="results folder (default results/)")
    parser.add_argument("--limit", type=int, default=DEMO_LIMIT, help="samples per task")
    parser.add_argument("--quiet", "-q", action="store_true")


def _demo(args: argparse.Namespace) -> int:
    from evalkit import plots
    from evalkit.results import load_results, results_dir
    from evalkit.runner.api import run
    from evalkit.sim import DEFAULT_MODELS

    out = results_dir(args.out)
    options = {"limit": args.limit, "sim": True, "out": str(out), "seed": 0, "progress": not args.quiet}
    every_model = [model.id for model in DEFAULT_MODELS if model.thinking == "none"]
    seeing_models = [model.id for model in DEFAULT_MODELS if "image" in model.input_modalities]
    runs = [
        run(["builtin_qa", "builtin_code"], every_model, **options),
        run(["builtin_vision"], seeing_models, **options),  # text-only models cannot take its images
    ]
    for result in runs:
        _print_outcome(result)
    frame = load_results([result.path for result in runs])
    png = out / f"demo-{runs[0].run_id}-accuracy_vs_cost.png"
    plots.accuracy_vs_cost(frame).savefig(png, dpi=120, bbox_inches="tight")
    print(f"plot: {png}")
    print("SIMULATED: these numbers come from the bundled router simulator, not from real models.")
    print(f"next: evalkit report {' '.join(r.run_id for r in runs)} --results {out} --html report.html")
    return 0


# ---- inspect -----------------------------------------------------------------------------------


def _add_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="task YAML files, FILE.py:NAME, or names")
    parser.add_argument(
        "--limit", type=int, default=None, help="check only the first N samples (default all)"
    )


def _validate(args: argparse.Namespace) -> int:
    from evalkit.task.spec import resolve_task
    from evalkit.task.validate import check_task

    failed = False
    for name in args.files:
        report = check_task(resolve_task(name), args.limit)
        print("\n".join(report.lines()))
        failed = failed or bool(report.problems)
    return 2 if failed else 0


def _scorer_name(task: Any) -> str:
    return getattr(task.scorer, "name", repr(task.scorer))


def _add_rescore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="the run id (or run directory) whose recorded answers to score again")
    parser.add_argument(
        "--scorer", help='a scorer name, or JSON {"name": ..., "params": {...}}, for every task'
    )
    parser.add_argument("--out", default=None, help="results folder (default results/)")
    parser.add_argument("--run-id", help="the new run's id")


def _rescore(args: argparse.Namespace) -> int:
    import json

    from evalkit.runner.rescore import rescore

    scorer = args.scorer
    if scorer and scorer.lstrip().startswith("{"):
        try:
            scorer = json.loads(scorer)
        except ValueError as exc:
            raise EvalkitError(f"--scorer: not valid JSON: {exc}") from None
    result = rescore(args.run, out=args.out, scorer=scorer, run_id=args.run_id)
    _print_outcome(result)
    print("0 requests sent")
    return 0


def _add_score(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="the run id (or directory) made with --phase generate")
    parser.add_argument("--out", default=None, help="results folder (default results/)")
    parser.add_argument("--force", action="store_true", help="score even if a task definition changed")
    _add_executor(parser)


def _score(args: argparse.Namespace) -> int:
    from evalkit.runner.rescore import score

    result = score(args.run, out=args.out, force=args.force, executor=args.executor or "local")
    _print_outcome(result)
    print("0 requests sent")
    return 0 if result.status in ("completed", "completed_with_errors") else 3


def _add_merge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="the shard runs (ids or directories) of one run")
    parser.add_argument("--into", required=True, metavar="RUN_ID", help="the merged run's id")
    parser.add_argument("--out", default=None, help="results folder (default results/)")


def _merge(args: argparse.Namespace) -> int:
    from evalkit.runner.merge import merge

    result = merge(args.runs, into=args.into, out=args.out)
    _print_outcome(result)
    return 0


def _add_list(parser: argparse.ArgumentParser) -> None:
    pass


def _list(args: argparse.Namespace) -> int:
    from evalkit.task.spec import load_task, tasks_dir

    for path in sorted(tasks_dir().glob("*.yaml")):
        try:
            task = load_task(path)
            print(
                f"{task.name:<18} {task.family:<7} {_scorer_name(task):<11} {task.description.strip().splitlines()[0] if task.description else ''}"
            )
        except EvalkitError as exc:
            print(f"{path.stem:<18} INVALID  {exc}")
    return 0


def _add_models(parser: argparse.ArgumentParser) -> None:
    _add_endpoint(parser)
    parser.add_argument("--refresh", action="store_true", help="ignore the cached catalog")


def _models(args: argparse.Namespace) -> int:
    import asyncio

    from evalkit.client.catalog import format_models_table, load_catalog

    with _endpoint_for(args) as endpoint:
        catalog = asyncio.run(load_catalog(endpoint, refresh=args.refresh))
    print(format_models_table(catalog))
    return 0


def _endpoint_for(args: argparse.Namespace) -> Any:
    import contextlib

    from evalkit.client import Endpoint

    if args.sim:
        from evalkit import sim

        @contextlib.contextmanager
        def simulated() -> Any:
            with sim.serve(latency_scale=0) as server:
                yield Endpoint(base_url=server.base_url, api_key="sim", simulated=True)

        return simulated()
    return contextlib.nullcontext(
        Endpoint.from_env(base_url=args.base_url, api_key_env=args.api_key_env, required=False)
    )


def _add_estimate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--model", "-m", action="append", dest="models", default=[], required=True)
    _add_selection(parser)
    parser.add_argument("--epochs", type=int, default=1)
    _add_endpoint(parser)


def _estimate(args: argparse.Namespace) -> int:
    import asyncio

    from evalkit.client.catalog import load_catalog
    from evalkit.runner.estimate import estimate_run, format_estimate
    from evalkit.task.spec import resolve_task

    tasks = [resolve_task(t) for t in args.tasks]
    with _endpoint_for(args) as endpoint:
        catalog = asyncio.run(load_catalog(endpoint))
    rows = estimate_run(
        tasks,
        args.models,
        catalog,
        limit=args.limit,
        limit_per_language=args.limit_per_language,
        languages=args.languages,
        seed=args.seed,
        epochs=args.epochs,
    )
    if args.limit is not None:  # the estimate silently shrinks to the task: say so, with the numbers
        sizes = {
            row.task: row.calls // max(1, args.epochs) for row in rows if not row.model.startswith("judge: ")
        }
        for task, size in sizes.items():
            if size < args.limit:
                among = " in the languages asked" if args.languages else ""
                print(f"evalkit: warning: --limit {args.limit} asks for more samples than task {task!r} "
                      f"has{among} ({size}); the estimate is for {size}", file=sys.stderr)  # fmt: skip
    print(format_estimate(rows))
    return 0


def _add_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", help="run ids or run directories (none: list every run)")
    parser.add_argument("--out", default=None, help="results folder (default results/)")
    parser.add_argument("--by-language", action="store_true", help="accuracy per language too")
    _add_format(parser)


def _show(args: argparse.Namespace) -> int:
    from evalkit.cli import display
    from evalkit.results import expand_runs, list_runs, load_results, summarize

    if not args.runs:
        print(display.runs(list_runs(args.out), args.fmt))
        return 0
    frame = load_results(args.runs, args.out)
    if args.fmt not in ("csv", "json"):
        for directory in expand_runs(args.runs, args.out):
            _print_run_header(_manifest(directory), frame)
    print(display.summary(summarize(frame), args.fmt))
    if args.by_language:
        from evalkit.stats import by_language

        long = args.fmt in ("csv", "json")  # machines get one row per language with n, interval and p
        table = by_language(frame, long=long)
        print(display.render(table, args.fmt) if long else display.languages(table, args.fmt))
    return 0


def _print_run_header(manifest: dict[str, Any], frame: Any) -> None:
    """Status, then ₽ two ways: billed now (what the manifest counts; cached answers cost nothing) and
    what the same answers would cost without the cache."""
    from evalkit.common.money import format_rub
    from evalkit.stats import effective_cost

    mark = " [SIMULATED]" if manifest.get("simulated") else ""
    print(f"run {manifest['run_id']}: {manifest['status']}{mark} {manifest.get('message') or ''}".rstrip())
    rows = frame[frame["run_id"] == manifest["run_id"]] if "run_id" in frame else frame.iloc[:0]
    cached = rows["from_cache"].fillna(False).astype(bool) if "from_cache" in rows else rows.index.isin([])
    uncached = float(effective_cost(rows)[0].sum()) if len(rows) else 0.0
    billed = (manifest.get("totals") or {}).get("spent_rub")
    billed = float(effective_cost(rows[~cached])[0].sum()) if billed is None and len(rows) else billed or 0.0
    print(f"  ₽ billed now {format_rub(billed)} · uncached it would cost {format_rub(uncached)} "
          f"({int(cached.sum())} of {len(rows)} answers from the cache)")  # fmt: skip


def _manifest(directory: Path) -> dict[str, Any]:
    from evalkit.runner.journal import read_manifest

    return read_manifest(directory)


def _add_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument(
        "--run", action="append", dest="runs", required=True, help="run id(s) holding both models"
    )
    parser.add_argument("--task", help="only this task")
    parser.add_argument("--out", default=None)
    _add_format(parser)


def _compare(args: argparse.Namespace) -> int:
    """The pooled comparison, then one per task (and language), Holm-adjusted over that family."""
    from evalkit.cli import display
    from evalkit.results import load_results
    from evalkit.stats import compare_groups, compare_models

    frame = load_results(args.runs, args.out)
    pooled = compare_models(frame, args.model_a, args.model_b, task=args.task)
    data = frame if args.task is None else frame[frame["task"] == args.task]
    groups = compare_groups(data, args.model_a, args.model_b)
    if args.fmt in ("csv", "json"):
        print(display.comparisons(groups, args.fmt, pooled=pooled))
        return 0
    print(pooled.sentence())
    if len(groups) > 1:
        print(f"\nBy task and language ({len(groups)} comparisons; Holm-adjusted p allows for their number):")
        print(display.comparisons(groups))
    return 0


# ---- plan --------------------------------------------------------------------------------------


def _add_plan(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("--run", action="append", dest="runs", help="pilot run id(s) holding both models")
    parser.add_argument(
        "--task",
        help="only this task of the pilot; without a pilot, the task the plan is for (its size is checked)",
    )
    parser.add_argument("--delta", type=float, help="difference to detect, in pp (default: the pilot's)")
    parser.add_argument("--power", type=float, default=0.8, help="chance of detecting it (default 0.8)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--accuracy-a", type=float, help="without a pilot: A's expected accuracy, %%")
    parser.add_argument("--accuracy-b", type=float, help="without a pilot: B's expected accuracy, %%")
    parser.add_argument(
        "--correlation",
        type=float,
        default=0.0,
        help="without a pilot: how A's and B's right answers go together",
    )
    parser.add_argument(
        "--design-effect", type=float, default=1.0, help="without a pilot: variance inflation from clusters"
    )
    parser.add_argument(
        "--cluster-size", type=float, default=1.0, help="without a pilot: samples per cluster"
    )
    parser.add_argument("--out", default=None, help="results folder (default results/)")
    parser.add_argument("--no-prices", action="store_true", help="price from what the pilot was billed")
    _add_endpoint(parser)
    _add_format(parser)


def _plan(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from evalkit.stats import plan

    delta = None if args.delta is None else args.delta / 100
    if args.runs:
        from evalkit.results import load_results

        catalog = None if args.no_prices else _catalog_for(args)
        result = plan(load_results(args.runs, args.out), args.model_a, args.model_b, task=args.task,
                      delta=delta, power=args.power, alpha=args.alpha, catalog=catalog)  # fmt: skip
    elif args.accuracy_a is not None and args.accuracy_b is not None:
        result = plan(model_a=args.model_a, model_b=args.model_b, accuracy_a=args.accuracy_a / 100,
                      accuracy_b=args.accuracy_b / 100, correlation=args.correlation, delta=delta,
                      power=args.power, alpha=args.alpha, design_effect=args.design_effect,
                      cluster_size=args.cluster_size, task=args.task)  # fmt: skip
    else:
        raise EvalkitError("give a pilot (--run RUN_ID) or both --accuracy-a and --accuracy-b")
    warnings = _plan_warnings(args, result)
    for warning in warnings:
        print(f"evalkit: warning: {warning}", file=sys.stderr)
    if args.fmt in ("csv", "json"):
        fields = dataclasses.asdict(result) | {
            "cost_rub": result.cost_rub,
            "total_rub": result.total_rub,
            "intraclass_correlation": result.intraclass_correlation,
        }
        if args.fmt == "json":
            print(json.dumps(_json_safe(fields | {"warnings": warnings}), ensure_ascii=False, indent=2))
        else:
            print(",".join(k for k in fields if not isinstance(fields[k], dict)))
            print(",".join(str(v) for v in fields.values() if not isinstance(v, dict)))
        return 0
    print(_plan_details(result))
    print(result.sentence()[0].upper() + result.sentence()[1:])
    return 0


def _plan_warnings(args: argparse.Namespace, result: Any) -> list[str]:
    """Whether the task(s) the plan is for hold the samples it needs: the pilot's task(s) (all of each
    task's data, not the pilot's `--limit`), or `--task` without a pilot."""
    from evalkit.task.spec import resolve_task

    if args.runs:
        from evalkit.results import load_manifests

        entries = {t["name"]: t for m in load_manifests(args.runs, args.out) for t in m.get("tasks") or []}
        names = [args.task] if args.task else sorted(entries)
        where = {name: (entries.get(name) or {}).get("file") or name for name in names}
    elif args.task:  # named by the user: a task that cannot be read is their error, said as such
        names, where = [args.task], {args.task: args.task}
    else:
        return []
    available, unknown = 0, []
    for name in names:
        try:
            available += len(resolve_task(where[name]).load_samples())
        except (EvalkitError, OSError):  # a pilot's inline Python task, or a file no longer here
            if not args.runs:
                raise
            unknown.append(name)
    if unknown:
        return [f"the size of task(s) {', '.join(map(repr, unknown))} is unknown here, so the plan's "
                f"{result.n_samples} samples are not checked against it"]  # fmt: skip
    what = f"task {names[0]!r}" if len(names) == 1 else f"tasks {', '.join(map(repr, names))} together"
    shortfall = result.shortfall(available, what)
    return [shortfall] if shortfall else []


def _json_safe(value: Any) -> Any:
    """NaN (an unknown price) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return None if isinstance(value, float) and value != value else value


def _catalog_for(args: argparse.Namespace) -> Any:
    import asyncio

    from evalkit.client.catalog import load_catalog

    with _endpoint_for(args) as endpoint:
        return asyncio.run(load_catalog(endpoint))


def _plan_details(result: Any) -> str:
    from evalkit.common.money import format_rub

    clusters = (
        f"clusters of {result.cluster_size:.1f} samples (within-cluster correlation "
        f"{result.intraclass_correlation:.2f}), design effect {result.design_effect:.2f}"
        if result.design_effect > 1 else "no clustering"
    )  # fmt: skip
    prices = ", ".join(f"{m} {format_rub(r)} ₽" for m, r in result.rub_per_sample.items())
    if all(r != r for r in result.rub_per_sample.values()):
        prices = "unknown without a pilot run"
    return "\n".join([
        f"from: {result.source}" + (f" (task {result.task})" if result.task else ""),
        f"difference to detect: {100 * result.delta:.1f} pp; answers disagree on {100 * result.discordance:.1f}% "
        "of samples",
        f"paired test at α {result.alpha:g}, power {result.power:.0%}; {clusters}",
        f"independent pairs needed {result.n_independent}; samples needed {result.n_samples}",
        f"₽ per sample: {prices}",
    ])  # fmt: skip


class _DeprecatedOut(argparse.Action):
    """`report --out FILE`, from before --out meant a folder in every command: still works, says so."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        print("evalkit: warning: `report --out` is deprecated; use --html FILE", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--html", dest="report", default="report.html", help="HTML file to write")
    parser.add_argument("--out", dest="report", action=_DeprecatedOut, help=argparse.SUPPRESS)
    parser.add_argument("--results", default=None, help="results folder")
    parser.add_argument("--png-dir", help="also save every plot as PNG and SVG here")


def _report(args: argparse.Namespace) -> int:
    from evalkit.report import save_plots, write_report
    from evalkit.results import load_manifests, load_results

    frame = load_results(args.runs, args.results)
    path = write_report(frame, Path(args.report), manifests=load_manifests(args.runs, args.results))
    print(f"report: {path}")
    if args.png_dir:
        for saved in save_plots(frame, Path(args.png_dir)):
            print(f"plot: {saved}")
    return 0


def _add_sim(parser: argparse.ArgumentParser) -> None:
    from evalkit.sim.command import add_arguments

    add_arguments(parser)


def _sim(args: argparse.Namespace) -> int:
    from evalkit.sim.command import main as sim_main

    return sim_main(args)


def _add_doctor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--live", action="store_true", help="also check the router with a few tiny paid calls"
    )
    parser.add_argument(
        "--model", "-m", default=None, help="model for the live calls (default Llama 4 Scout)"
    )
    parser.add_argument("--base-url", help="router base URL (default https://routerai.ru/api/v1)")
    parser.add_argument("--api-key-env", help="read the key from this environment variable")
    parser.add_argument("--sim", action="store_true", help="check the bundled simulator instead of a router")
    parser.add_argument(
        "--budget-rub", type=float, default=None, help="most ₽ the live calls may spend (0.15)"
    )
    parser.add_argument(
        "--json", dest="json_path", help="write the report here (default evalkit-doctor.json with --live)"
    )


def _doctor(args: argparse.Namespace) -> int:
    import asyncio

    from evalkit.doctor import machine as doctor

    checks = doctor.local_checks()
    print(doctor.format_local(checks))
    live, secret = None, ""
    if args.live:
        from evalkit.doctor.conformance import DEFAULT_BUDGET_RUB, DEFAULT_MODEL, check_live

        with _live_endpoint(args) as endpoint:
            secret = endpoint.api_key
            live = asyncio.run(
                check_live(
                    endpoint,
                    model=args.model or DEFAULT_MODEL,
                    budget_rub=DEFAULT_BUDGET_RUB if args.budget_rub is None else args.budget_rub,
                )
            )
        print(doctor.scrub(doctor.format_live(live), secret))
    json_path = args.json_path or ("evalkit-doctor.json" if args.live else None)
    if json_path:
        try:
            doctor.write_json(Path(json_path), checks, live, secret)
        except OSError as exc:
            raise EvalkitError(f"cannot write the report: {exc.strerror or exc}", where=json_path) from None
        print(f"report: {json_path} (no key in it)")
    degraded = sum(not c.ok for c in checks) + (len(live.differences) if live else 0)
    print("all is well" if not degraded else f"{degraded} problem(s): see DEGRADED / DIFFERS above")
    return 1 if degraded else 0


def _live_endpoint(args: argparse.Namespace) -> Any:
    import contextlib

    from evalkit.client import Endpoint

    if args.sim:
        from evalkit import sim

        @contextlib.contextmanager
        def simulated() -> Any:
            with sim.serve(latency_scale=0, api_key="sim-doctor") as server:
                yield Endpoint(base_url=server.base_url, api_key="sim-doctor", simulated=True)

        return simulated()
    return contextlib.nullcontext(Endpoint.from_env(base_url=args.base_url, api_key_env=args.api_key_env))


_Command = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
_COMMANDS: list[_Command] = [
    ("run", "run tasks against models and record every sample", _add_run, _run),
    (
        "demo",
        "run a small built-in suite on simulated models, offline, and plot accuracy vs cost",
        _add_demo,
        _demo,
    ),
    ("validate", "check task files without calling any model", _add_validate, _validate),
    (
        "rescore",
        "score a run's recorded answers again with the current scorers (no requests)",
        _add_rescore,
        _rescore,
    ),
    ("score", "score a run recorded with --phase generate, in place (no requests)", _add_score, _score),
    ("merge", "join the shards of one run into one run, exactly", _add_merge, _merge),
    ("list", "list the tasks in tasks/", _add_list, _list),
    ("models", "the router's models with context, modalities and ₽ prices", _add_models, _models),
    ("estimate", "the expected cost of a run, before spending anything", _add_estimate, _estimate),
    ("show", "summarise recorded runs", _add_show, _show),
    ("compare", "paired comparison of two models on the same samples", _add_compare, _compare),
    ("plan", "samples and ₽ needed to tell two models apart, from a pilot run", _add_plan, _plan),
    ("report", "write a self-contained HTML report", _add_report, _report),
    ("sim", "serve the RouterAI-compatible simulator on 127.0.0.1", _add_sim, _sim),
    (
        "doctor",
        "check this machine (and with --live the router) against what evalkit assumes",
        _add_doctor,
        _doctor,
    ),
]


if __name__ == "__main__":
    sys.exit(main())
