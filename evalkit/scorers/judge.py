"""The `judge` scorer: a model grades the answer (against a rubric or the reference), or compares it
with a baseline model's recorded answer. The runner sends the judge's calls (`calls`) through its own
client path (cache, journal, ₽ budget, retries) and hands the replies back (`verdict`).

    scorer:
      name: judge
      params: {judges: [sim/judge], mode: reference, replicates: 3, aggregate: majority}

mode: `reference` (PASS/FAIL against the sample's targets, and its rubric when it has one), `rubric`
(PASS/FAIL against the rubric alone), `pairwise` (the answer against `baseline`'s recorded answer to
the same sample and epoch, in a finished run: win 1, tie 0.5, loss 0; with `swap` each pair is judged
in both orders, and a pair whose verdict follows the order is a tie).
judges: one model id or several (a panel); replicates: k calls of each judge (`temperature` then
defaults to 0.7, each replicate its own `seed`); aggregate: `majority` (a tied vote is 0.5, in a grade as
in a comparison) or `mean` of every vote. rubric: one rubric for all samples, else each
sample's `rubric_field`. reply_format: `json` or `line` (docs/judge.md). baseline: {run, model[, task,
out]}, `task` when that run holds several. The verdict is read strictly (`judge_prompt.parse_verdict`):
a reply that is no verdict makes the sample an error, never a wrong answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from evalkit.common.errors import TaskError
from evalkit.scorers import scorer
from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.judge_prompt import (
    GRADES,
    PREFERENCES,
    ReplyFormat,
    VerdictError,
    grading_messages,
    pairwise_messages,
    parse_verdict,
)
from evalkit.task.sample import Sample

Mode = Literal["reference", "rubric", "pairwise"]
_SWAPPED = {"a": "b", "b": "a", "tie": "tie"}


@dataclass(frozen=True)
class JudgeCall:
    """One call a judged sample needs. `tag` names it uniquely within the sample (journal and audit)."""

    judge: str
    replicate: int
    order: str | None  # pairwise: "ab" (the tested answer shown first) or "ba"; grading: None
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.judge}#{self.replicate}" + (f"/{self.order}" if self.order else "")


class _BaselineAnswers:
    """A pairwise judge's baseline answers and their samples' targets by (sample_id, epoch). State of
    the run, not of the judge's definition: its fixed repr keeps it out of a Python task's fingerprint,
    which once changed when the run read them, so the run could not be resumed."""

    answers: dict[tuple[str, int], tuple[str, list[str]]] | None = None

    def __repr__(self) -> str:
        return "<baseline answers, read by the run>"


@scorer("judge")
class Judge(Scorer):
    """An LLM judge. Not callable as a plain scorer: only a run, which pays for its calls, can use it."""

    calls_models = True

    def __init__(
        self,
        judges: str | list[str],
        mode: Mode = "reference",
        *,
        rubric: str | None = None,
        rubric_field: str = "rubric",
        replicates: int = 1,
        aggregate: Literal["majority", "mean"] = "majority",
        reply_format: ReplyFormat = "json",
        swap: bool = True,
        baseline: dict[str, Any] | None = None,
        max_tokens: int = 400,
        temperature: float | None = None,
        seed: int = 0,
    ) -> None:
        self.judges = [judges] if isinstance(judges, str) else list(judges)
        _check_options(self.judges, mode, aggregate, reply_format, replicates, baseline)
        self.mode, self.rubric, self.rubric_field = mode, rubric, rubric_field
        self.replicates, self.aggregate, self.reply_format = replicates, aggregate, reply_format
        self.swap, self.max_tokens, self.seed = swap, max_tokens, seed
        self.temperature = temperature if temperature is not None else (0.7 if replicates > 1 else 0.0)
        self.baseline = baseline if mode == "pairwise" else None
        self.baseline_model = baseline.get("model") if self.baseline else None
        self._baseline = _BaselineAnswers()  # read by the runner

    def use_baseline(self, answers: dict[tuple[str, int], tuple[str, list[str]]]) -> None:
        """The baseline's recorded answers and their samples' targets by (sample_id, epoch), read from
        its run by the runner."""
        self._baseline.answers = answers

    def __call__(self, output: str, sample: Sample) -> Score:
        raise TaskError("the judge scorer calls a model: it scores only inside a run (evalkit.run)")

    def setup(self) -> str:
        """How this judge is set up, in words (stated in every judged row and the manifest)."""
        panel = " + ".join(self.judges)
        parts = [f"{self.mode} judge {panel}", f"{self.replicates} replicate(s)", self.aggregate]
        if self.mode == "pairwise":
            parts.append(f"vs {self.baseline_model}" + (", both orders" if self.swap else ", one order"))
        return ", ".join(parts)

    # --- what to ask ------------------------------------------------------------------------------

    def check(self, sample: Sample) -> str | None:
        """Why this sample cannot be judged (checked before anything is sent), or None."""
        if self.mode == "reference" and not sample.target:
            return "no reference answer (target) for a reference-guided judge"
        if self.mode == "rubric" and not self._rubric(sample):
            return f"no rubric (give params.rubric or a {self.rubric_field!r} field)"
        return None  # pairwise: the runner checks the baseline run when it reads it

    def calls(self, output: str, sample: Sample, question: str, epoch: int = 0) -> list[JudgeCall]:
        """Every call this answer needs: judges × replicates (× both orders, pairwise)."""
        reference = (list(sample.target) or None) if self.mode != "rubric" else None
        rubric = self._rubric(sample)
        found = []
        for judge in self.judges:
            for replicate in range(self.replicates):
                params = {"temperature": self.temperature, "max_tokens": self.max_tokens}
                params["seed"] = self.seed + replicate
                if self.mode != "pairwise":
                    messages = grading_messages(
                        question, output, reference=reference, rubric=rubric, reply_format=self.reply_format
                    )
                    found.append(JudgeCall(judge, replicate, None, messages, params))
                    continue
                other = self._baseline_answer(sample, epoch)
                for order in ("ab", "ba") if self.swap else ("ab",):
                    first, second = (output, other) if order == "ab" else (other, output)
                    messages = pairwise_messages(
                        question, first, second, reference=reference, rubric=rubric,
                        reply_format=self.reply_format,
                    )  # fmt: skip
                    found.append(JudgeCall(judge, replicate, order, messages, params))
        return found

    def _rubric(self, sample: Sample) -> str | None:
        value = self.rubric or sample.fields.get(self.rubric_field) or sample.metadata.get(self.rubric_field)
        return value if isinstance(value, str) and value.strip() else None

    def _baseline_answer(self, sample: Sample, epoch: int) -> str:
        found = (self._baseline.answers or {}).get((sample.id, epoch))
        if found is None:
            raise TaskError(f"the baseline {self.baseline_model!r} has no answer to sample {sample.id!r}")
        answer, target = found
        if target != list(sample.target):  # same id, another sample (e.g. the baseline ran another task)
            raise TaskError(
                f"the baseline's sample {sample.id!r} has another target ({target!r}, here {sample.target!r}): "
                "not the same sample, so its answer is not compared"
            )
        return answer

    # --- what the replies say ---------------------------------------------------------------------

    def verdict(self, replies: list[tuple[JudgeCall, str]]) -> tuple[Score, list[dict[str, Any]]]:
        """The score from every judge reply, and one vote record per reply (`judge_votes` column).
        Raises VerdictError when any reply is not a verdict: the sample is then an error."""
        choices = PREFERENCES if self.mode == "pairwise" else GRADES
        votes = []
        for call, reply in replies:
            try:
                parsed = parse_verdict(reply, choices, self.reply_format)
            except VerdictError as exc:
                raise VerdictError(f"judge {call.tag}: {exc}") from None
            value = _value(parsed.verdict, call.order)
            votes.append({
                "judge": call.judge, "replicate": call.replicate, "order": call.order,
                "verdict": parsed.verdict, "value": value, "reason": parsed.reason,
            })  # fmt: skip
        values = self._item_values(votes)
        score = _mean(values) if self.aggregate == "mean" else _majority(values)
        return Score(score, _short(votes), self._explanation(votes), _per_judge(votes)), votes

    def _item_values(self, votes: list[dict[str, Any]]) -> list[float]:
        """One value per (judge, replicate): pairwise, both orders combine (disagreeing orders: a tie)."""
        if self.mode != "pairwise":
            return [v["value"] for v in votes]
        by_call: dict[tuple[str, int], list[float]] = {}
        for vote in votes:
            by_call.setdefault((vote["judge"], vote["replicate"]), []).append(vote["value"])
        return [v[0] if len(set(v)) == 1 else 0.5 for v in by_call.values()]

    def _explanation(self, votes: list[dict[str, Any]]) -> str:
        reasons = [
            f"[{v['judge']}#{v['replicate']}{'/' + v['order'] if v['order'] else ''} {v['verdict']}] {v['reason']}"
            for v in votes
        ]
        return f"{self.setup()}: " + " | ".join(reasons)


def _check_options(
    judges: list[str], mode: str, aggregate: str, reply_format: str, replicates: Any, baseline: Any
) -> None:
    """Bad options are a TypeError, which the registry reports as the task's bad scorer parameters."""
    if not judges or not all(isinstance(j, str) and j for j in judges):
        raise TypeError("judges must name at least one model")
    if mode not in ("reference", "rubric", "pairwise"):
        raise TypeError(f"mode must be reference, rubric or pairwise, not {mode!r}")
    if aggregate not in ("majority", "mean"):
        raise TypeError(f"aggregate must be majority or mean, not {aggregate!r}")
    if reply_format not in ("json", "line"):
        raise TypeError(f"reply_format must be json or line, not {reply_format!r}")
    if not isinstance(replicates, int) or replicates < 1:
        raise TypeError("replicates must be an integer ≥ 1")
    if mode == "pairwise" and not (
        isinstance(baseline, dict)
        and isinstance(baseline.get("run"), str)
        and isinstance(baseline.get("model"), str)
    ):
        raise TypeError(
            "mode pairwise needs baseline: {run: RUN_ID_OR_DIR, model: MODEL[, task: T, out: DIR]}"
        )


def _value(verdict: str, order: str | None) -> float:
    """1 when the tested answer passed or won, 0.5 a tie, 0 otherwise."""
    if order is None:
        return 1.0 if verdict == "pass" else 0.0
    seen = verdict if order == "ab" else _SWAPPED[verdict]
    return {"a": 1.0, "tie": 0.5, "b": 0.0}[seen]


def _majority(values: list[float]) -> float:
    """The most common value. A tie between values is half credit, in a grade as in a comparison: an
    even split has no majority, and calling it a fail would pull accuracy down without saying so."""
    counts = Counter(values)
    best = max(counts.values())
    winners = [v for v, n in counts.items() if n == best]
    return winners[0] if len(winners) == 1 else 0.5


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _short(votes: list[dict[str, Any]]) -> str:
    return ",".join(v["verdict"] for v in votes)


def _per_judge(votes: list[dict[str, Any]]) -> dict[str, float]:
    judges = list(dict.fromkeys(v["judge"] for v in votes))
    if len(judges) < 2:
        return {}
    return {
        f"judge{i}": _mean([v["value"] for v in votes if v["judge"] == j]) for i, j in enumerate(judges, 1)
    }
