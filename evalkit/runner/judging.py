"""The runner's side of a judged task: every judge call goes the way of a model call.

For one answered sample the judge scorer says which calls it needs (`Judge.calls`); each one is taken
from this run's journal (a resumed run), else from the response cache, else sent through the run's
client with its worst case reserved against the ₽ budget, its attempts through the same limiter,
retries and error classes, and its reply journaled (`judge_response` line, flushed) before any verdict
is read. Only then does the scorer read the replies (`Judge.verdict`). A judge call that failed, or a
reply that is no verdict, makes the sample an error, never a wrong answer; what the judge cost is kept
apart (`cost_rub_judge`) either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import ConfigError
from evalkit.runner.stop import StopRun, run_fatal

if TYPE_CHECKING:
    from evalkit.client import CallRecord, Catalog
    from evalkit.scorers.base import Score
    from evalkit.scorers.judge import Judge, JudgeCall


def is_judged(scorer: Any) -> bool:
    """Whether a scorer calls models (the judge) and so must be run by `JudgeCalls`."""
    return bool(getattr(scorer, "calls_models", False))


@dataclass
class Judged:
    """What judging one sample produced: the score (None on failure), why it failed, and its columns."""

    score: Score | None = None
    failure: str | None = None
    failure_class: str = "judge_error"
    votes: list[dict[str, Any]] = field(default_factory=list)
    setup: str = ""
    cost_rub: float | None = None
    cost_rub_billed: float | None = None
    cost_rub_estimated: float | None = None
    calls: int = 0
    from_cache: int = 0

    def columns(self) -> dict[str, Any]:
        return {
            "judge_setup": self.setup,
            "judge_votes": self.votes,
            "judge_calls": self.calls,
            "judge_from_cache": self.from_cache,
            "cost_rub_judge": self.cost_rub,
            "cost_rub_judge_billed": self.cost_rub_billed,
            "cost_rub_judge_estimated": self.cost_rub_estimated,
        }


def judge_models(scorers: list[Any]) -> list[str]:
    return list(dict.fromkeys(j for s in scorers if is_judged(s) for j in s.judges))


_ANSWERED = (None, "judge_error", "judge_unparsed")  # a baseline row's error that leaves its answer good


def baseline_answers(
    baseline: dict[str, Any], out: str | Path
) -> dict[tuple[str, int], tuple[str, list[str]]]:
    """(sample_id, epoch) -> a pairwise judge's baseline answer and that sample's targets, from a finished run (a run directory,
    or a run id under `baseline.out`, else under `out`); its failed calls left out (an answer whose own
    judge failed is kept). A run that is missing, or holds no answer of the model, is refused before
    anything is sent."""
    from evalkit.runner.journal import MANIFEST, iter_records, read_manifest

    run, model, task = str(baseline["run"]), baseline["model"], baseline.get("task")
    directory = Path(run) if (Path(run) / MANIFEST).exists() else Path(baseline.get("out") or out) / run
    if not (directory / MANIFEST).exists():
        raise ConfigError(f"no baseline run {run!r} (looked in {run} and {directory})")
    if shard := (read_manifest(directory).get("config") or {}).get("shard"):  # a part of the samples
        raise ConfigError(
            f"the baseline run {run!r} is shard {shard}, which holds only part of the samples; merge its "
            "shards (evalkit merge) and name the merged run as the baseline"
        )
    answers: dict[tuple[str, int], tuple[str, list[str]]] = {}
    tasks = set()
    for record in iter_records(directory):
        if record.get("model") != model or (task is not None and record.get("task") != task):
            continue
        tasks.add(record.get("task"))
        # a sample whose own judge failed still holds a good answer: only a failed call has none
        if record.get("error") in _ANSWERED and isinstance(record.get("output"), str):
            target = record.get("target") or []
            target = [target] if isinstance(target, str) else [str(t) for t in target]
            answers[(str(record["sample_id"]), int(record["epoch"]))] = (record["output"], target)
    if len(tasks) > 1:  # sample ids are unique within a task only
        raise ConfigError(
            f"the baseline run holds {model!r} on several tasks ({', '.join(sorted(map(str, tasks)))}); name one as baseline.task"
        )
    if not answers:
        raise ConfigError(f"the baseline run {run!r} holds no answer of {model!r}")
    return answers


async def judge_prices(runner: Any, scorers: list[Any]) -> dict[str, Any]:
    """Each judge's price card, read from its endpoint's catalog; an unknown judge is refused before
    anything is sent, and so is one without a price when a ₽ budget must hold. A pairwise judge gets
    its baseline's answers here too (so a missing baseline is refused just as early)."""
    from evalkit.client import load_catalog
    from evalkit.client.endpoints import model_endpoint

    for scorer in scorers:
        if is_judged(scorer) and scorer.baseline is not None:
            scorer.use_baseline(baseline_answers(scorer.baseline, runner.config.out))
    prices: dict[str, Any] = {}
    catalogs: dict[Any, Catalog] = {}
    for judge in judge_models(scorers):
        endpoint = model_endpoint(runner.config, judge, runner.endpoint, judge)
        runner.judge_endpoints[judge] = endpoint
        if endpoint not in catalogs:
            catalogs[endpoint] = await load_catalog(endpoint)
        info = catalogs[endpoint].get(judge)
        if info is None and catalogs[endpoint].authoritative:
            raise ConfigError(f"unknown judge model {judge!r}: the router's catalog has no such model")
        prices[judge] = info.pricing if info is not None else None
        if prices[judge] is None and runner.config.budget_rub is not None:
            raise ConfigError(f"no price card for judge model {judge!r}, so the ₽ budget cannot be enforced")
    return prices


def _another_request(unit: Any, call: JudgeCall, force: bool) -> None:
    """A journaled judge reply answers another request than the one this sample needs now: the judge
    prompt's wording changed (code, outside the task's fingerprint). Its verdict
    would be read as the new prompt's, so the resume stops unless forced; forced, the judge is asked again."""
    if force:
        return None
    raise StopRun(
        "failed",
        f"the journal's reply of judge {call.tag} to sample {unit.sample.id!r} answers another request "
        "(the judge prompt changed since it was recorded), so old and new verdicts "
        "would be mixed; start a new run, or resume with force=True to ask the judge again",
    )


class JudgeCalls:
    """Judges the samples of one run, through the runner's journal, cache, budget, limiter and clients."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    async def judge(self, unit: Any, rendered: Any, output: str, scorer: Judge) -> Judged:
        from evalkit.scorers.judge_prompt import VerdictError

        judged = Judged(setup=scorer.setup())
        try:
            calls = scorer.calls(output, unit.sample, rendered.text, unit.epoch)
        except Exception as exc:  # e.g. no baseline answer for this sample
            judged.failure = f"{type(exc).__name__}: {exc}"[:500]
            return judged
        replies: list[tuple[JudgeCall, str]] = []
        paid: list[dict[str, Any]] = []
        for call in calls:
            record, from_cache = await self._response(unit, call)
            judged.calls += 1
            judged.from_cache += from_cache
            paid.append(self._add_cost(judged, call, record, from_cache))
            if record.error:
                judged.failure = f"judge {call.tag}: {record.error}: {record.error_message or ''}".rstrip(
                    ": "
                )
                return judged
            if record.truncated:  # what it would have said after the cut might overturn the verdict
                judged.failure = f"judge {call.tag}: the judge's reply was cut at max_tokens ({scorer.max_tokens}), so it is no verdict"
                judged.failure_class = "judge_unparsed"
                return judged
            replies.append((call, record.output or ""))
        try:
            judged.score, votes = scorer.verdict(replies)
            judged.votes = [vote | billed for vote, billed in zip(votes, paid, strict=True)]
        except VerdictError as exc:
            judged.failure, judged.failure_class = str(exc)[:500], "judge_unparsed"
        return judged

    def _add_cost(
        self, judged: Judged, call: JudgeCall, record: CallRecord, from_cache: bool
    ) -> dict[str, Any]:
        """Adds the call's ₽ to the sample's; returns what this call was billed now (a reply from the
        cache: 0, like a cached answer), for its vote."""
        billed = None if record.cost_rub is None else 0.0 if from_cache else record.cost_rub
        if record.cost_rub is not None:
            judged.cost_rub = (judged.cost_rub or 0.0) + record.cost_rub
            judged.cost_rub_billed = (judged.cost_rub_billed or 0.0) + billed
        estimate = self._estimate(call, record)
        if estimate is not None:
            judged.cost_rub_estimated = (judged.cost_rub_estimated or 0.0) + estimate
        return {"from_cache": from_cache, "cost_rub": billed}

    def _estimate(self, call: JudgeCall, record: CallRecord) -> float | None:
        """The judge's price card applied to what the call used, as for a model's call (cache reads and
        writes, thinking; a judge prompt is text only)."""
        estimate = record.estimate(self.runner.judge_prices.get(call.judge))
        return None if estimate is None else estimate.total

    async def _response(self, unit: Any, call: JudgeCall) -> tuple[CallRecord, bool]:
        """The judge's reply: from this run's journal, the cache, or a new call journaled at once."""
        from evalkit.client import CallRecord
        from evalkit.task.render import Rendered

        runner = self.runner
        endpoint = runner.judge_endpoints[call.judge]
        request = Rendered(call.messages).cache_key(endpoint.cache_id, call.judge, call.params, unit.epoch)
        asked = Rendered(call.messages).cache_key("", call.judge, call.params, unit.epoch)  # any endpoint
        previous = runner.state.judge_responses.pop((unit.key, call.tag), None)
        if previous is not None and previous.get("asked", asked) != asked:
            previous = _another_request(unit, call, runner.config.force)
        if previous is not None and not (previous["call"].get("error") and runner.config.retry_errors):
            return CallRecord.from_dict(previous["call"]), bool(previous.get("from_cache"))
        if runner.cache is not None and (hit := runner.cache.get(request)) is not None:
            runner.invocation["from_cache"] += 1
            return CallRecord.from_dict(hit), True
        try:
            record = await self._call(unit, call)
        except BaseException:  # a call that ends without a reply keeps what it may have cost
            if unconfirmed := runner.unconfirmed.pop((*unit.key, call.tag), 0.0):
                line = {"kind": "unconfirmed", "key": list(unit.key), "unconfirmed_rub": unconfirmed}
                # its judge call and invocation keep two such lines apart: an exact duplicate reads once
                runner.journal.write(line | {"judge": call.tag, "invocation": runner.started_at})
            raise
        line = {
            "kind": "judge_response", "key": list(unit.key), "judge": call.tag, "request": request,
            "asked": asked, "call": record.to_dict(),
        }  # fmt: skip
        if unconfirmed := runner.unconfirmed.pop((*unit.key, call.tag), 0.0):
            line["unconfirmed_rub"] = unconfirmed
        await runner.journal.append(line, sync=False)  # flushed: a killed run never pays for it again
        if runner.cache is not None and record.error is None:
            runner.cache.put(request, record.to_dict())
        return record, False

    async def _call(self, unit: Any, call: JudgeCall) -> CallRecord:
        from evalkit.client import CallHooks, is_model_fatal
        from evalkit.runner.attempt import Attempts
        from evalkit.task.render import Rendered

        runner = self.runner
        price = runner.judge_prices.get(call.judge)
        worst = (
            price.worst_case(Rendered(call.messages).prompt_token_bound, call.params["max_tokens"])
            if price
            else 0.0
        )
        attempts = Attempts(runner.budget, runner.limiter, worst, lambda record: self._estimate(call, record))
        where = (*unit.key, call.tag)

        async def before_attempt(attempt: int) -> None:
            if runner.stop is not None:
                raise StopRun(runner.stop.status, runner.stop.message)
            await attempts.begin()
            runner.invocation["sent"] += 1
            runner.invocation["judge_sent"] = runner.invocation.get("judge_sent", 0) + 1

        async def after_attempt(record: CallRecord, attempt: int) -> None:
            if unconfirmed := await attempts.end(record):
                runner.unconfirmed[where] = runner.unconfirmed.get(where, 0.0) + unconfirmed

        record = await runner.clients[runner.judge_endpoints[call.judge]].call(
            call.judge, call.messages, call.params,
            hooks=CallHooks(before_attempt=before_attempt, after_attempt=after_attempt),
        )  # fmt: skip
        if (stop := run_fatal(record, runner.run_id, who=f"judge {call.judge}: ")) is not None:
            raise stop
        if record.error and is_model_fatal(record.error):
            raise StopRun(
                "failed", f"judge {call.judge} cannot be used: {record.error}: {record.error_message}"
            )
        return record
