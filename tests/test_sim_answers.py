"""What the simulated models answer: right as often as their profiles say, in the form scorers expect."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from typing import Any

import pytest

from evalkit.sim.answers import break_code
from evalkit.sim.generation import Plan, plan
from evalkit.sim.index import SampleIndex
from evalkit.sim.profiles import DEFAULT_MODELS, LARGE_ACCURATE, LLAMA_4_SCOUT, RU_TUNED, SMALL_FAST, SimModel
from evalkit.task.render import render
from evalkit.task.spec import Sample, Task

ANSWER = re.compile(r"^(\w+): (.+)$", re.MULTILINE)


def numeric_task(languages: tuple[str, ...] = ("en",), n: int = 300) -> Task:
    samples = [
        Sample(
            id=f"{lang}/{i}",
            input=f"[{lang}] {i} apples and {i} pears: how many?",
            target=str(2 * i),
            language=lang,
        )
        for lang in languages
        for i in range(n)
    ]
    return Task(name="count", family="qa", scorer="numeric", samples=samples)


def ask(task: Task, sample: Sample, model: SimModel, index: SampleIndex, seed: int = 0, **body: Any) -> Plan:
    messages = render(task, sample).messages
    return plan(
        {"messages": messages, "seed": seed, **body},
        model,
        index,
        seed=0,
        body_sha256="-",
        attempt=0,
        latency_scale=0,
    )


def final_number(text: str) -> float:
    value = ANSWER.findall(text)[-1][1]
    return float(value.replace("\u00a0", "").replace("\u202f", "").replace(".", "").replace(",", "."))


@pytest.mark.parametrize("model", DEFAULT_MODELS, ids=lambda m: m.id)
def test_accuracy_matches_the_profile_and_answers_match_the_decision(model: SimModel) -> None:
    task = numeric_task(("en", "ru"), n=400)
    index = SampleIndex.build([task])
    for language in ("en", "ru"):
        plans = [(s, ask(task, s, model, index)) for s in task.samples if s.language == language]
        for sample, planned in plans:
            assert (final_number(planned.text) == float(sample.target[0])) == planned.correct
        accuracy = sum(p.correct for _, p in plans) / len(plans)
        effort = None if model.thinking == "none" else model.default_effort  # thinking models think harder
        assert accuracy == pytest.approx(model.accuracy("qa", language, effort), abs=0.07)


def test_profiles_differ_by_language() -> None:
    assert RU_TUNED.accuracy("qa", "ru") > SMALL_FAST.accuracy("qa", "ru")
    assert RU_TUNED.accuracy("qa", "ru") > RU_TUNED.accuracy("qa", "th")
    assert LLAMA_4_SCOUT.accuracy("qa", "th") < LLAMA_4_SCOUT.accuracy("qa", "en")
    assert LARGE_ACCURATE.accuracy("code", "en") > SMALL_FAST.accuracy("code", "en")


def test_epochs_differ_but_agree_more_than_chance() -> None:
    task = numeric_task(n=400)
    index = SampleIndex.build([task])
    first = [ask(task, s, LLAMA_4_SCOUT, index, seed=0).correct for s in task.samples]
    second = [ask(task, s, LLAMA_4_SCOUT, index, seed=1).correct for s in task.samples]
    assert first != second
    p = sum(first) / len(first)
    agreement = sum(a == b for a, b in zip(first, second, strict=True)) / len(first)
    assert agreement > p * p + (1 - p) * (1 - p) + 0.05  # hard samples stay hard


def test_reasoning_and_answer_word_are_in_the_sample_language() -> None:
    task = numeric_task(("ru", "th", "de"), n=20)
    index = SampleIndex.build([task])
    words = {ask(task, s, LARGE_ACCURATE, index).text.splitlines()[-1].split(":")[0] for s in task.samples}
    assert words == {"Ответ", "คำตอบ", "Antwort"}
    russian = ask(task, task.samples[0], LARGE_ACCURATE, index).text
    assert re.search("[а-я]{4}", russian.splitlines()[0])


def choice_task() -> Task:
    samples = [
        Sample(
            id=str(i), input=f"Question {i}", choices=["red", "green", "blue", "black"], target="BCDA"[i % 4]
        )
        for i in range(200)
    ]
    return Task(
        name="mc", family="other", scorer="choice", samples=samples, prompt={"user": "{input}\n{choices}"}
    )


def test_choice_answers_name_a_letter() -> None:
    task = choice_task()
    index = SampleIndex.build([task])
    for sample in task.samples:
        planned = ask(task, sample, SMALL_FAST, index)
        letter = ANSWER.findall(planned.text)[-1][1]
        assert letter in "ABCD"
        assert (letter == sample.target[0]) == planned.correct


def test_extractive_wrong_answers_are_other_spans_of_the_context() -> None:
    context = (
        "The Amazon river flows through Brazil, Peru and Colombia. It carries more water than any other river "
        "and its basin covers seven million square kilometres of tropical forest."
    )
    samples = [
        Sample(
            id=str(i),
            fields={"context": context, "question": f"Q{i}?"},
            target="seven million square kilometres",
        )
        for i in range(100)
    ]
    task = Task(
        name="span",
        family="qa",
        scorer="extractive",
        samples=samples,
        prompt={"user": "{context}\n{question}"},
    )
    index = SampleIndex.build([task])
    for sample in samples:
        planned = ask(task, sample, SMALL_FAST, index)
        if planned.correct:
            assert planned.text == "seven million square kilometres"
        else:
            assert planned.text in context
            assert not {"seven", "million", "square", "kilometres"} & set(planned.text.split())


def test_answer_line_when_the_prompt_asks_for_one() -> None:
    samples = [Sample(id="1", input="Capital of France?", target="Paris", language="fr")]
    task = Task(
        name="cap", scorer="exact", samples=samples, prompt={"user": 'Reply "Réponse: <city>". {input}'}
    )
    index = SampleIndex.build([task])
    text = ask(task, samples[0], LARGE_ACCURATE, index).text
    assert text.splitlines()[-1] in ("Réponse: Paris",) or text.splitlines()[-1].startswith("Réponse: ")


def code_task() -> Task:
    solution = "def add_one(values):\n    result = []\n    for v in values:\n        result.append(v + 1)\n    return result\n"
    samples = [
        Sample(id=str(i), fields={"text": f"Task {i}: add one", "solution": solution}) for i in range(60)
    ]
    return Task(name="code", family="code", scorer="code", samples=samples, prompt={"user": "{text}"})


def test_code_answers_are_fenced_and_broken_ones_still_compile() -> None:
    task = code_task()
    index = SampleIndex.build([task])
    solution = task.samples[0].fields["solution"]
    for sample in task.samples:
        planned = ask(task, sample, SMALL_FAST, index)
        code = re.search(r"```python\n(.*?)```", planned.text, re.DOTALL).group(1)
        compile(code, "<answer>", "exec")  # compiled, never run in our process
        assert (code.strip() == solution.strip()) == planned.correct


def test_break_code_changes_humaneval_solutions_so_their_tests_fail(shared_data: Any) -> None:
    import gzip
    import json

    with gzip.open(shared_data / "humaneval" / "HumanEval.jsonl.gz", "rt") as lines:
        problems = [json.loads(line) for line in lines]
    rng = random.Random(0)
    failed = 0
    chosen = problems[:: len(problems) // 12][:12]
    for problem in chosen:
        broken = break_code(problem["prompt"] + problem["canonical_solution"], rng)
        assert broken != problem["prompt"] + problem["canonical_solution"]
        program = f"{broken}\n{problem['test']}\ncheck({problem['entry_point']})\n"
        result = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=120)
        failed += result.returncode != 0
    assert failed >= 9  # a few mutants are equivalent to the original (the sandbox scorer sees them pass)


def test_lookup_survives_an_added_system_prompt() -> None:
    task = numeric_task(n=5)
    index = SampleIndex.build([task])
    messages = render(task, task.samples[3]).messages
    assert index.lookup(messages).sample.id == "en/3"
    assert index.lookup([{"role": "system", "content": "Be careful."}, *messages]).sample.id == "en/3"
    assert index.lookup([{"role": "user", "content": "unrelated"}]) is None


def test_images_are_ignored_by_the_lookup() -> None:
    task = Task(
        name="v", family="vision", scorer="exact", samples=[Sample(id="1", input="What?", target="cat")]
    )
    index = SampleIndex.build([task])
    parts = [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,x"}},
    ]
    assert index.lookup([{"role": "user", "content": parts}]).sample.id == "1"


def test_latency_model_scales_with_prompt_and_output() -> None:
    task = numeric_task(n=200)
    index = SampleIndex.build([task])
    plans = [
        plan(
            {"messages": render(task, s).messages},
            LLAMA_4_SCOUT,
            index,
            seed=0,
            body_sha256=s.id,
            attempt=0,
            latency_scale=1.0,
        )
        for s in task.samples
    ]
    latency = LLAMA_4_SCOUT.latency
    mean_ttft = sum(p.ttft_s for p in plans) / len(plans)
    expected_ttft = latency.ttft_s + latency.per_prompt_token_s * plans[0].usage.prompt_tokens
    assert mean_ttft == pytest.approx(expected_ttft, rel=0.1)
    speeds = [p.usage.completion_tokens / p.generation_s for p in plans]
    assert sum(speeds) / len(speeds) == pytest.approx(latency.tokens_per_s, rel=0.15)
    assert len({round(p.ttft_s, 6) for p in plans}) > 100  # jitter
    half = plan(
        {"messages": render(task, task.samples[0]).messages},
        LLAMA_4_SCOUT,
        index,
        seed=0,
        body_sha256=task.samples[0].id,
        attempt=0,
        latency_scale=0.5,
    )
    assert half.ttft_s == pytest.approx(plans[0].ttft_s * 0.5)


def test_real_mgsm_russian_favours_the_russian_tuned_model(shared_data: Any) -> None:
    from evalkit.task.spec import Source

    task = Task(
        name="mgsm-ru",
        family="qa",
        scorer="numeric",
        source=Source(
            path=str(shared_data / "mgsm" / "mgsm_{language}.tsv"), format="mgsm_tsv", languages=["ru"]
        ),
        prompt={"user": "{question}"},
    )
    index = SampleIndex.build([task])
    samples = task.load_samples()
    assert len(index) == len(samples) == 250

    def accuracy(model: SimModel) -> float:
        return sum(bool(ask(task, s, model, index).correct) for s in samples) / len(samples)

    assert accuracy(RU_TUNED) > accuracy(SMALL_FAST) + 0.15
