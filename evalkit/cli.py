"""The `evalkit` command: a thin layer over the public API. Heavy imports happen inside commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

DEMO_LIMIT = 26


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    try:
        return args.handler(args) or 0
    except EvalkitError as exc:
        print(f"evalkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130


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
    parser.add_argument("tasks", nargs="*", help="task names (see `evalkit list`) or YAML paths")
    parser.add_argument(
        "--model", "-m", action="append", dest="models", default=[], help="model id (repeatable)"
    )
    _add_selection(parser)
    parser.add_argument("--epochs", type=int, help="repeat each sample K times (pass@k, variance)")
    parser.add_argument("--concurrency", "-c", type=int, help="most requests in flight (default 32)")
    parser.add_argument("--budget-rub", type=float, help="never spend more than this many ₽ in this run")
    _add_endpoint(parser)
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
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


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
    from evalkit.runner import run

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
    )
    _print_outcome(result)
    return 0 if result.status in ("completed", "completed_with_errors") else 3


def _print_outcome(result: Any) -> None:
    print(f"run {result.run_id}: {result.status}" + (f" — {result.message}" if result.message else ""))
    print(f"results: {result.path}")
    frame = result.df
    if len(frame):
        print(_table(result.summary()))


def _table(frame: Any) -> str:
    import pandas as pd

    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format
    ):
        return frame.to_string(index=False)


# ---- demo --------------------------------------------------------------------------------------


def _add_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="results folder (default results/)")
    parser.add_argument("--limit", type=int, default=DEMO_LIMIT, help="samples per task")
    parser.add_argument("--quiet", "-q", action="store_true")


def _demo(args: argparse.Namespace) -> int:
    from evalkit import plots
    from evalkit.results import load_results, results_dir
    from evalkit.runner import run
    from evalkit.sim import DEFAULT_MODELS

    out = results_dir(args.out)
    options = {"limit": args.limit, "sim": True, "out": str(out), "seed": 0, "progress": not args.quiet}
    every_model = [model.id for model in DEFAULT_MODELS]
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
    print(f"next: evalkit report {' '.join(r.run_id for r in runs)} --results {out} --out report.html")
    return 0


# ---- inspect -----------------------------------------------------------------------------------


def _add_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="task YAML files, FILE.py:NAME, or names")
    parser.add_argument(
        "--limit", type=int, default=None, help="check only the first N samples (default all)"
    )


def _validate(args: argparse.Namespace) -> int:
    from evalkit.task import resolve_task
    from evalkit.validate import check_task

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

    from evalkit.rescore import rescore

    scorer = args.scorer
    if scorer and scorer.lstrip().startswith("{"):
        try:
            scorer = json.loads(scorer)
        except ValueError as exc:
            raise EvalkitError(f"--scorer: not valid JSON: {exc}") from None
    result = rescore(args.run, out=args.out, scorer=scorer, run_id=args.run_id)
    print(f"run {result.run_id}: {result.status} — {result.message}; 0 requests sent")
    print(f"results: {result.path}")
    print(_table(result.summary()))
    return 0


def _add_list(parser: argparse.ArgumentParser) -> None:
    pass


def _list(args: argparse.Namespace) -> int:
    from evalkit.task import load_task, tasks_dir

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

    from evalkit.models import format_models_table, load_catalog

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

    from evalkit.estimate import estimate_run, format_estimate
    from evalkit.models import load_catalog
    from evalkit.task import resolve_task

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
    print(format_estimate(rows))
    return 0


def _add_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run ids or run directories")
    parser.add_argument("--out", default=None)
    parser.add_argument("--by-language", action="store_true", help="accuracy per language too")


def _show(args: argparse.Namespace) -> int:
    from evalkit.results import find_run, load_results, summarize

    for run in args.runs:
        manifest = _manifest(find_run(run, args.out))
        mark = " [SIMULATED]" if manifest.get("simulated") else ""
        print(
            f"run {manifest['run_id']}: {manifest['status']}{mark} {manifest.get('message') or ''}".rstrip()
        )
    frame = load_results(args.runs, args.out)
    print(_table(summarize(frame)))
    if args.by_language:
        from evalkit.stats import by_language

        print(_table(by_language(frame)))
    return 0


def _manifest(directory: Path) -> dict[str, Any]:
    from evalkit.journal import read_manifest

    return read_manifest(directory)


def _add_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument(
        "--run", action="append", dest="runs", required=True, help="run id(s) holding both models"
    )
    parser.add_argument("--task", help="only this task")
    parser.add_argument("--out", default=None)


def _compare(args: argparse.Namespace) -> int:
    from evalkit.results import load_results
    from evalkit.stats import compare_models

    comparison = compare_models(load_results(args.runs, args.out), args.model_a, args.model_b, task=args.task)
    print(comparison.sentence())
    return 0


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", dest="report", default="report.html", help="HTML file to write")
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
    ("list", "list the tasks in tasks/", _add_list, _list),
    ("models", "the router's models with context, modalities and ₽ prices", _add_models, _models),
    ("estimate", "the expected cost of a run, before spending anything", _add_estimate, _estimate),
    ("show", "summarise recorded runs", _add_show, _show),
    ("compare", "paired comparison of two models on the same samples", _add_compare, _compare),
    ("report", "write a self-contained HTML report", _add_report, _report),
    ("sim", "serve the RouterAI-compatible simulator on 127.0.0.1", _add_sim, _sim),
]


if __name__ == "__main__":
    sys.exit(main())
