"""Proving that a task reads right, before anything is paid.

`check_task(task)` loads every sample and returns a `TaskReport`: the languages found, one rendered
prompt per language, how the scorer reads a few targets (`'12 500' → 12500`, `label 1 → option B`),
and problems. A problem is a sample whose gold answer, written as a model would write it (an answer
line in the sample's language, `Ответ: 12 500`), does not score 1 with the task's own scorer, or a
code sample without a test. Loading itself already refuses missing or repeated ids, null targets and
template variables (see `evalkit.sources`). `evalkit validate` prints the report; `run` calls
`check_samples` and refuses to send anything when it finds a problem.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import TaskError
from evalkit.scorers.base import close_scorer
from evalkit.task.languages import answer_word

if TYPE_CHECKING:
    from evalkit.task.spec import Sample, Task

_SHOWN = 8


@dataclass
class TaskReport:
    """What `validate` found for one task."""

    task: str
    where: str
    scorer: str
    samples: int
    languages: dict[str, int]
    prompts: dict[str, str] = field(default_factory=dict)
    readings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    judged: bool = False  # a judge scorer: gold cannot be scored without paying its model

    def lines(self) -> list[str]:
        langs = ", ".join(f"{lang} ({n})" for lang, n in self.languages.items())
        head = "ok" if not self.problems else "FAILED"
        out = [f"{head}: {self.task} ({self.where}): {self.samples} samples; scorer {self.scorer}"]
        out.append(f"  languages: {langs}")
        for lang, text in self.prompts.items():
            out.append(f"  prompt [{lang}]: {_short(text)}")
        if self.readings:
            out.append("  targets: " + "; ".join(self.readings))
        if self.judged:
            ok = self.checked - len(self.problems)
            out.append(
                f"  self-check: {ok}/{self.checked} samples have what the judge needs (gold is not judged: that costs a model call)"
            )
        else:
            out.append(
                f"  self-check: {self.checked - len(self.problems)}/{self.checked} gold answers score 1"
            )
        out += [f"  problem: {p}" for p in self.problems[:_SHOWN]]
        if len(self.problems) > _SHOWN:
            out.append(f"  ... and {len(self.problems) - _SHOWN} more problems")
        return out


def check_task(task: Task, limit: int | None = None) -> TaskReport:
    """Load the task's samples (all, or the first `limit`) and check them; never raises for a sample
    problem (those are in `problems`), only for a task that cannot be loaded at all."""
    samples = task.all_samples()[:limit] if limit else task.all_samples()
    task.check_templates(samples)
    scorer = task.build_scorer()
    try:
        return _report(task, scorer, samples)
    finally:
        close_scorer(scorer)


def _report(task: Task, scorer: Any, samples: Sequence[Sample]) -> TaskReport:
    from evalkit.task.render import render

    report = TaskReport(
        task=task.name,
        where=task.where,
        scorer=scorer_name(task),
        samples=len(task.all_samples()),
        languages=dict(Counter(s.language or "-" for s in samples)),
    )
    for sample in samples:
        lang = sample.language or "-"
        if lang not in report.prompts:
            report.prompts[lang] = _message_text(render(task, sample).messages)
    report.readings = _readings(task, scorer, samples)
    report.problems = sample_problems(scorer, samples)
    report.checked = len(samples)
    report.judged = bool(getattr(scorer, "calls_models", False))
    return report


def check_samples(task: Task, samples: Sequence[Sample], scorer: Any) -> None:
    """Raise one TaskError naming the samples that `check_task` would report (used by `run`, with the
    run's own `scorer`, built once). A Python scorer of the user's is not second-guessed here
    (`validate` still reports it): if it raises during the run, the sample is recorded as an error."""
    from evalkit.task.spec import ScorerSpec

    if not isinstance(task.scorer, ScorerSpec):
        return
    problems = sample_problems(scorer, samples)
    if problems:
        shown = "; ".join(problems[:_SHOWN])
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise TaskError(
            f"{len(problems)} sample(s) would be scored wrong, nothing was sent: {shown}{more} "
            f"(see `evalkit validate`)",
            where=task.where,
        )


def sample_problems(scorer: Any, samples: Sequence[Sample]) -> list[str]:
    problems = []
    for sample in samples:
        problem = _problem(_scorer_for(scorer, sample), sample)
        if problem:
            problems.append(f"sample {sample.id!r}: {problem}")
    return problems


def gold_output(sample: Sample, target: str) -> str:
    """The target written as a model is asked to write it: an answer line in the sample's language."""
    return f"{answer_word(_lang(sample.language))}: {target}"


def _problem(scorer: Any, sample: Sample) -> str | None:
    kind = type(scorer).__name__
    if getattr(scorer, "calls_models", False):  # a judge: gold cannot be scored without paying a model
        return scorer.check(sample)
    if kind == "CodeExecution":
        test = sample.fields.get(scorer.fields["test"])
        if not isinstance(test, str) or not test.strip():
            keys = ", ".join(sorted(sample.fields))
            return f"no test in field {scorer.fields['test']!r} (a code sample without a test cannot pass; fields: {keys})"
        return None
    if not sample.target and kind in _NEED_AN_ANSWER:
        return "no accepted answer (an empty list); only the extractive scorer reads that as 'no answer', so every output would score 0"
    if kind == "RegexMatch" or not sample.target:
        return None  # a pattern is not an answer; an empty target means "no answer" (extractive)
    written = getattr(scorer, "gold_output", None)  # a scorer that reads its own form (`verdict`)
    for target in sample.target:
        output = written(target) if callable(written) else gold_output(sample, target)
        try:
            score = scorer(output, sample)
        except Exception as exc:  # a Python scorer of the user's: report, do not crash validate
            return f"the scorer raised {type(exc).__name__}: {exc} on {output!r}"
        if score.value < 1.0 and not _custom_accepts(scorer, sample, target):
            return f"gold answer {output!r} scores {score.value:g} ({score.explanation})"
    return None


# Built-in scorers for which an empty target cannot be matched by any output.
_NEED_AN_ANSWER = frozenset({"NumericMatch", "ExactMatch", "MultipleChoice", "RelaxedAccuracy", "ANLS"})


def _custom_accepts(scorer: Any, sample: Sample, target: str) -> bool:
    """A Python scorer may expect the bare answer rather than an answer line: accept either."""
    if type(scorer).__module__.startswith("evalkit."):
        return False
    try:
        return scorer(target, sample).value >= 1.0
    except Exception:
        return False


def _scorer_for(scorer: Any, sample: Sample) -> Any:
    pick = getattr(scorer, "scorer_for", None)
    return pick(sample) if callable(pick) else scorer


def _lang(language: str | None) -> str | None:
    from evalkit.task.sample import language_key

    return language_key(language) or None


def _readings(task: Task, scorer: Any, samples: Sequence[Sample]) -> list[str]:
    """A few lines showing how targets are read, one per kind of reading."""
    seen: dict[str, str] = {}
    column = task.fields.target if isinstance(task.fields.target, str) else None
    for sample in samples:
        raw = sample.fields.get(column) if column else None
        found = _reading(_scorer_for(scorer, sample), sample, raw)
        if found:
            seen.setdefault(*found)
        if len(seen) >= 5:
            break
    return list(seen.values())


def _reading(scorer: Any, sample: Sample, raw: Any) -> tuple[str, str] | None:
    """(kind of reading, how one target is read) for the report."""
    if sample.choices and sample.target and raw is not None and not isinstance(raw, (list, tuple)):
        letter = sample.target[0]
        option = (
            sample.choices[ord(letter) - 65]
            if len(letter) == 1 and ord(letter) - 65 < len(sample.choices)
            else "?"
        )
        return f"choice {type(raw).__name__}", f"label {raw!r} → option {letter} ({option!r})"
    if type(scorer).__name__ == "NumericMatch" and sample.target:
        from evalkit.scorers.normalize import format_number, read_target_number

        number = read_target_number(sample.target[0])
        if number is None:
            return "unreadable", f"{sample.target[0]!r} → UNREADABLE"
        value = " or ".join(map(format_number, number.readings()))
        if number.alternative is not None:
            return "ambiguous", f"{sample.target[0]!r} → {value} (ambiguous)"
        plain = format_number(number.value) == sample.target[0].strip()
        return ("number" if plain else "number-written"), f"{sample.target[0]!r} → {value}"
    if len(sample.target) > 1:
        shown = raw if isinstance(raw, str) else sample.target
        return "alternatives", f"{shown!r} → {len(sample.target)} alternatives"
    return None


def scorer_name(task: Task) -> str:
    from evalkit.task.spec import ScorerSpec

    if isinstance(task.scorer, ScorerSpec):
        return task.scorer.name
    return getattr(task.scorer, "__qualname__", type(task.scorer).__name__)


def _message_text(messages: list[dict[str, Any]]) -> str:
    from evalkit.client.messages import image_urls, text_parts

    shown = [f"{m['role']}: " + " ".join(text_parts(m) + ["[image]"] * len(image_urls(m))) for m in messages]
    return " | ".join(shown)


def _short(text: str, width: int = 160) -> str:
    flat = " ⏎ ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
