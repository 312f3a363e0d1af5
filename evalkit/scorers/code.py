"""Code execution scorer: run the model's program against hidden tests in the sandbox.

Sample fields (the code loaders normalise every dataset to these; see docs/sandbox.md):

- `prompt`: code the model continues (HumanEval: signature + docstring); empty when the model
  writes a whole program (MBPP, the built-in set);
- `setup`: code run before the model's code (MBPP `test_setup_code`), optional;
- `test`: a complete test program run after the model's code (asserts, or `check(entry_point)`);
- `entry_point`: the function under test;
- `solution`: a full reference program that passes (what the simulator answers).

The program is `setup + prompt + code`. When the answer repeats the signature, the prompt is still
put first (a function whose body is its docstring is valid Python), so the prompt's imports and
helpers stay defined and the model's function replaces the stub. The tests never join the program:
they run in the sandbox's judge process after `setup + prompt` (trusted, so the prompt's helpers the
tests use are the dataset's own), where `entry_point` calls the model's function through plain data.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Literal

from evalkit.common.text import encodable
from evalkit.sandbox import Job, Limits, ProgramResult, Sandbox
from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.code_extract import extract_code

if TYPE_CHECKING:
    from evalkit.task.sample import Sample

_SHOWN_CHARS = 4000


class CodeExecution(Scorer):
    """Score 1.0 when the extracted program passes the sample's tests in the sandbox, else 0.0.

    explanation: "pass", "fail: AssertionError ...", "timeout: ..." or "crash: ...";
    metrics: {"pass": 0/1, "timeout": 0/1, "crash": 0/1, "forgeable": 0/1} (1: the program
    could have decided its own verdict, because this machine cannot run the judge apart).
    Infrastructure failures raise `evalkit.sandbox.SandboxError` (never scored as the model's fault).
    """

    blocking = True

    def __init__(
        self,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
        max_processes: int = 32,
        workers: int | None = None,
        prompt_field: str = "prompt",
        test_field: str = "test",
        setup_field: str = "setup",
        entry_point_field: str = "entry_point",
        launcher: Literal["auto", "zygote", "exec"] = "auto",
    ) -> None:
        self.limits = Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes)
        self.workers = workers
        self.launcher = launcher
        self.fields = {
            "prompt": prompt_field,
            "test": test_field,
            "setup": setup_field,
            "entry_point": entry_point_field,
        }
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CodeExecution(timeout_s={self.limits.timeout_s:g}, memory_mb={self.limits.memory_mb})"

    @property
    def sandbox(self) -> Sandbox:
        """The scorer's process pool, started on first use."""
        with self._lock:
            if self._sandbox is None:
                self._sandbox = Sandbox(self.limits, workers=self.workers, launcher=self.launcher)
            return self._sandbox

    def close(self) -> None:
        """Stop the sandbox's warm workers now rather than at garbage collection (the runner calls this)."""
        with self._lock:
            sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()

    def program(self, output: str, sample: Sample) -> tuple[str, Job]:
        """(code extracted from the output, the sandbox job: the program and its tests)."""
        get = _getter(sample)
        prompt, entry_point = get(self.fields["prompt"]), get(self.fields["entry_point"]) or None
        extracted = extract_code(output, entry_point=entry_point, prompt=prompt or None)
        prelude = get(self.fields["setup"])
        if prompt:
            prelude += prompt if extracted.mode == "completion" else prompt.rstrip() + "\n\n"
        job = Job(
            code=prelude + extracted.code + "\n",
            tests=get(self.fields["test"]) + "\n",
            prelude=get(self.fields["setup"]) + prompt,
            entry_point=entry_point,
        )
        return extracted.code, job

    def __call__(self, output: str, sample: Sample) -> Score:
        output = encodable(output or "")  # a lone surrogate cannot be written as a program's source
        if not output.strip():
            return _score(False, None, "fail: the output is empty")
        code, job = self.program(output, sample)
        if not code.strip():
            return _score(False, None, "fail: no code in the output")
        return self.score_result(self.sandbox.run(job), code)

    @staticmethod
    def score_result(result: ProgramResult, code: str) -> Score:
        """The Score of a finished sandbox run (also used by batch scoring)."""
        return _score(
            result.passed, _shorten(code), result.detail, status=result.status, forgeable=result.forgeable
        )


def _getter(sample: Sample) -> Any:
    def get(name: str) -> str:
        value = sample.fields.get(name)
        return "" if value is None else str(value)

    return get


def _score(
    passed: bool, extracted: str | None, explanation: str, *, status: str = "fail", forgeable: bool = False
) -> Score:
    metrics = {
        "pass": 1.0 if passed else 0.0,
        "timeout": 1.0 if status == "timeout" else 0.0,
        "crash": 1.0 if status == "crash" else 0.0,
        "forgeable": 1.0 if forgeable else 0.0,
    }
    return Score(1.0 if passed else 0.0, extracted, explanation, metrics)


def _shorten(code: str) -> str:
    return code if len(code) <= _SHOWN_CHARS else code[:_SHOWN_CHARS] + "\n# … (truncated)\n"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), for n samples with c correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
