"""Task and Sample: what to ask, how to render it, and how to score the answer.

A Task is declared in YAML under `tasks/` (see README, "Task format") or built in Python:

    Task(name="arith", samples=[Sample(input="2+2?", target="4")], scorer="numeric")

YAML is a thin layer over these pydantic models: `load_task(path)` validates the file and names the
file and field of any problem.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import re
import string
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from evalkit.common.errors import TaskError
from evalkit.common.identity import identity as callable_identity
from evalkit.common.identity import stable as _stable
from evalkit.sources.spec import FieldMap, Source
from evalkit.task.sample import Sample, language_key
from evalkit.task.yaml_load import YamlLimitError, load_yaml

Family = Literal["qa", "vision", "code", "other"]


class FewShot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str
    assistant: str


class PromptVariant(BaseModel):
    """Overrides for one language; `few_shot` replaces the default examples when given."""

    model_config = ConfigDict(extra="forbid")

    system: str | None = None
    user: str | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    few_shot: list[FewShot] | None = None


class Prompt(BaseModel):
    """Chat templates. `{name}` is replaced by the sample's field `name` or by `vars`; a language
    variant overrides system, user and vars for samples in that language."""

    model_config = ConfigDict(extra="forbid")

    system: str | None = None
    user: str = "{input}"
    vars: dict[str, str] = Field(default_factory=dict)
    few_shot: list[FewShot] = Field(default_factory=list)
    languages: dict[str, PromptVariant] = Field(default_factory=dict)
    shared_prefix: bool = Field(
        default=False,
        description="the system prompt and few-shot examples are the same for every sample (of a "
        "language), so the router can cache them; only then does `estimate` count on caching",
    )

    def variant(self, language: str | None) -> PromptVariant | None:
        """The variant for a language: its own (`pt-BR`), else its base language's (`pt`)."""
        found = self.languages.get(language or "")
        return found if found is not None else self.languages.get(language_key(language))

    def for_language(self, language: str | None) -> tuple[str | None, str, dict[str, str]]:
        variant = self.variant(language)
        if variant is None:
            return self.system, self.user, dict(self.vars)
        return (
            variant.system if variant.system is not None else self.system,
            variant.user if variant.user is not None else self.user,
            {**self.vars, **variant.vars},
        )

    def few_shot_for(self, language: str | None) -> list[FewShot]:
        variant = self.variant(language)
        if variant is not None and variant.few_shot is not None:
            return variant.few_shot
        return self.few_shot


class ScorerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class Reasoning(BaseModel):
    """How much a reasoning model may think: an effort level or a token budget (the budget wins when
    both are given); `exclude` asks the router to bill the thinking but not return its text."""

    model_config = ConfigDict(extra="forbid")

    effort: Literal["minimal", "low", "medium", "high"] | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    exclude: bool = False

    @model_validator(mode="after")
    def _says_how_much(self) -> Reasoning:
        if self.effort is None and self.max_tokens is None:
            raise ValueError("reasoning needs `effort` (minimal, low, medium, high) or `max_tokens`")
        return self

    def request(self) -> dict[str, Any]:
        """The `reasoning` object of the request body, in the router's format."""
        from evalkit.client.dialect.reasoning import reasoning_request

        return reasoning_request(self.effort, self.max_tokens, self.exclude)


class Generation(BaseModel):
    """Generation parameters sent with every request of the task."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = 0.0
    max_tokens: int = Field(default=512, gt=0)
    stop: list[str] | None = None
    seed: int | None = 0
    top_p: float | None = None
    reasoning: Reasoning | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class ImageOptions(BaseModel):
    """How images are prepared before sending; recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")

    max_side: int | None = Field(default=1568, gt=0)
    max_bytes: int | None = Field(default=4_000_000, gt=0)
    max_input_bytes: int = Field(default=50_000_000, gt=0)
    max_pixels: int = Field(default=60_000_000, gt=0, description="refused before decoding (bomb guard)")


class Task(BaseModel):
    """A named evaluation: samples (from `source` or given inline), a prompt, a scorer, generation params."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    family: Family = "other"
    description: str = ""
    source: Source | None = None
    samples: list[Sample] | None = None
    fields: FieldMap = Field(default_factory=FieldMap)
    prompt: Prompt = Field(default_factory=Prompt)
    scorer: ScorerSpec | Callable[..., Any] = Field(default_factory=lambda: ScorerSpec(name="exact"))
    generation: Generation = Field(default_factory=Generation)
    images: ImageOptions = Field(default_factory=ImageOptions)
    limit: int | None = Field(default=None, gt=0)
    limit_per_language: int | None = Field(default=None, gt=0)
    shuffle_seed: int | None = None
    file: str | None = Field(default=None, description="the YAML file this task came from")
    _loaded: tuple[tuple[Any, ...], list[Sample]] | None = PrivateAttr(default=None)

    @field_validator("scorer", mode="before")
    @classmethod
    def _scorer_shorthand(cls, value: Any) -> Any:
        return ScorerSpec(name=value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_samples(self) -> Task:
        if self.source is None and self.samples is None:
            raise ValueError("a task needs `source` or inline `samples`")
        return self

    @property
    def where(self) -> str:
        return self.file or f"task {self.name!r}"

    def build_scorer(self) -> Any:
        from evalkit.scorers import get_scorer

        if isinstance(self.scorer, ScorerSpec):
            return get_scorer(self.scorer.name, self.scorer.params, where=f"{self.where}: scorer")
        return self.scorer

    def load_samples(
        self,
        limit: int | None = None,
        *,
        limit_per_language: int | None = None,
        seed: int | None = None,
        languages: Sequence[str] | None = None,
    ) -> list[Sample]:
        """The task's samples, optionally filtered by language, shuffled with `seed`, then limited
        (per language first, then overall). Checks that every template variable exists."""
        samples = self.all_samples()
        if languages:
            samples = [s for s in samples if s.language in set(languages)]
        seed = self.shuffle_seed if seed is None else seed
        if seed is not None:
            random.Random(seed).shuffle(samples)
        samples = _limit(samples, limit or self.limit, limit_per_language or self.limit_per_language)
        if not samples:
            raise TaskError("the dataset is empty (no samples after filtering and limits)", where=self.where)
        self.check_templates(samples)
        return samples

    def all_samples(self) -> list[Sample]:
        """Every sample of the task, in source order; ids are unique. Read again when a local data file
        changed since the last read (a notebook that edits its CSV between runs gets the new rows)."""
        from evalkit.sources import check_unique_ids, load_samples, source_signature

        signature = source_signature(self)
        if self._loaded is None or self._loaded[0] != signature:
            if self.samples is not None:
                loaded = list(self.samples)
                check_unique_ids(loaded, self.where)
            else:
                loaded = load_samples(self)
            self._loaded = (signature, loaded)
        return list(self._loaded[1])

    def check_templates(self, samples: Sequence[Sample]) -> None:
        """Raise one TaskError naming the samples whose template variable is missing or null."""
        from evalkit.sources import RowProblems

        problems = RowProblems(f"{self.where}: prompt", "sample(s) cannot be rendered")
        for sample in samples:
            system, user, variables = self.prompt.for_language(sample.language)
            values = {**sample.template_vars(), **variables}
            for text in filter(None, (system, user)):
                for _, name, _, _ in string.Formatter().parse(text):
                    root = name.split(".")[0].split("[")[0] if name else ""
                    if not root:
                        continue
                    if root not in values:
                        problems.add(
                            f"sample {sample.id!r}",
                            f"template variable {{{name}}} is not in the data "
                            f"(it has: {', '.join(sorted(values))})",
                        )
                    elif _is_null(values[root]):
                        problems.add(f"sample {sample.id!r}", f"template variable {{{name}}} is null")
        problems.raise_if_any()

    def fingerprint(self) -> str:
        """A hash of everything that changes what is sent or how it is scored (for resume checks): the
        definition, the identity of a Python scorer, and every loaded sample (so an edited data file
        changes it). Stable across processes: nothing hashed holds a memory address."""
        spec = self.model_dump(mode="json", exclude={"samples", "file", "scorer"})
        # options added later are left out at their defaults, so older runs still resume
        if spec["generation"].get("reasoning") is None:
            spec["generation"].pop("reasoning", None)
        if not spec["prompt"].get("shared_prefix"):
            spec["prompt"].pop("shared_prefix", None)
        spec["scorer"] = (
            self.scorer.model_dump()
            if isinstance(self.scorer, ScorerSpec)
            else callable_identity(self.scorer)
        )
        spec["samples"] = [_stable(s.model_dump(mode="python")) for s in self.all_samples()]
        text = json.dumps(spec, sort_keys=True, ensure_ascii=False, default=_stable)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_null(value: Any) -> bool:
    """None or NaN (an empty text is a legitimate value, e.g. an empty options block)."""
    return value is None or (isinstance(value, float) and value != value)


def _limit(samples: list[Sample], limit: int | None, per_language: int | None) -> list[Sample]:
    if per_language is not None:
        taken: dict[str | None, int] = defaultdict(int)
        kept = []
        for sample in samples:
            if taken[sample.language] < per_language:
                taken[sample.language] += 1
                kept.append(sample)
        samples = kept
    return samples[:limit] if limit is not None else samples


def load_task(path: str | Path) -> Task:
    """Read and validate a task YAML file; errors name the file and the field."""
    path = Path(path)
    where = str(path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except YamlLimitError as exc:
        raise TaskError(str(exc), where=where) from None
    except FileNotFoundError:
        raise TaskError("no such task file", where=where) from None
    except UnicodeDecodeError as exc:
        raise TaskError(f"not valid UTF-8 (byte {exc.start})", where=where) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaskError(f"malformed YAML{line}: {problem}", where=where) from None
    if not isinstance(raw, dict):
        raise TaskError(
            "a task file must be a YAML mapping (name:, source:, prompt:, scorer:, ...)", where=where
        )
    raw.setdefault("file", str(path))
    try:
        task = Task.model_validate(raw)
    except ValidationError as exc:
        raise TaskError(_describe_validation(exc), where=where) from None
    task.build_scorer()  # an unknown scorer or bad parameter fails here, not mid-run
    return task


def load_python_task(path: Path, name: str) -> Task:
    """`NAME` from the Python file `path`: a Task, or a function without arguments that returns one.
    The task's `file` becomes `path:NAME`, so that a run can be resumed from its manifest."""
    import importlib.util

    where = f"{path}:{name}"
    if not path.is_file():
        raise TaskError("no such Python task file", where=str(path))
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"evalkit_task_{path.stem}_{digest}", path)
    if spec is None or spec.loader is None:
        raise TaskError("cannot import this file", where=str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except TaskError:
        raise
    except Exception as exc:  # the user's own file: report its error in one line, naming it
        line = getattr(exc, "lineno", None) or _error_line(exc, path)
        at = f" (line {line})" if line else ""
        raise TaskError(f"importing it failed{at}: {type(exc).__name__}: {exc}", where=str(path)) from None
    if not hasattr(module, name):
        found = sorted(
            k
            for k, v in vars(module).items()
            if isinstance(v, Task) or (inspect.isfunction(v) and v.__module__ == module.__name__)
        )
        raise TaskError(
            f"the file defines no {name!r} (it has: {', '.join(found) or 'nothing'})", where=str(path)
        )
    value = getattr(module, name)
    if inspect.isfunction(value):
        try:
            value = value()
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"calling {name}() failed: {type(exc).__name__}: {exc}", where=where) from None
    if not isinstance(value, Task):
        raise TaskError(f"{name} is a {type(value).__name__}, not an evalkit Task", where=where)
    if value.file is None:
        value = value.model_copy(update={"file": str(path.resolve()) + f":{name}"})
    return value


def _error_line(exc: BaseException, path: Path) -> int | None:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return frames[-1].lineno if frames else None


def _describe_validation(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"field `{field}`: {error['msg']}")
    return "; ".join(problems)


def tasks_dir() -> Path:
    """Where bare task names resolve: the checkout's `tasks/`, else the copy a wheel ships in the package."""
    package = Path(__file__).resolve().parent.parent
    checkout = package.parent / "tasks"
    return checkout if checkout.is_dir() else package / "tasks"


_PY_TASK = re.compile(r"^(?P<file>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


def resolve_task(name_or_path: str | Path | Task) -> Task:
    """A Task from an object, a YAML path, `FILE.py:NAME`, or a bare name looked up in `tasks/`."""
    if isinstance(name_or_path, Task):
        return name_or_path
    python = _PY_TASK.match(str(name_or_path))
    if python:
        return load_python_task(Path(python["file"]), python["name"])
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_task(path)
    candidate = tasks_dir() / f"{name_or_path}.yaml"
    if candidate.exists():
        return load_task(candidate)
    known = ", ".join(sorted(p.stem for p in tasks_dir().glob("*.yaml")))
    raise TaskError(f"no task named {str(name_or_path)!r}; known tasks: {known}")
