"""Reasoning models and prompt caching: the request, the thinking kept from scorers, the rubles billed."""

from __future__ import annotations

import json
import urllib.request

import pandas as pd
import pytest

import evalkit
from evalkit import sim
from evalkit.client.dialect.reasoning import (
    reasoning_budget,
    reasoning_in,
    reasoning_request,
    reasoning_tokens,
    split_thinking,
    worst_case_output_tokens,
)
from evalkit.client.variants import expand_models, parse_variant
from evalkit.common.errors import ConfigError
from evalkit.task.spec import Generation, Sample, Task

KEY = "sk-test-reasoning-0123456789abcdef"
SYSTEM = " ".join(f"Rule {i}: answer arithmetic exactly and show the final number." for i in range(40))

# ---- where thinking hides, and keeping it from scorers ------------------------------------------


@pytest.mark.parametrize(
    ("content", "answer", "thinking"),
    [
        ("Answer: 4", "Answer: 4", ""),
        ("<think>maybe 5? Answer: 5</think>\n\nAnswer: 4", "Answer: 4", "maybe 5? Answer: 5"),
        ("<think>Ответ: 5. 答案：5. الإجابة: 5</think>Ответ: 4", "Ответ: 4", "Ответ: 5. 答案：5. الإجابة: 5"),
        ("<think>outer <think>inner Answer: 9</think> still thinking Answer: 8</think>Answer: 4", "Answer: 4",
         "outer inner Answer: 9 still thinking Answer: 8"),
        ("<think>cut off mid-thought. Answer: 5", "", "cut off mid-thought. Answer: 5"),
        ("<THINKING>a</THINKING>b<think>c</think>Answer: 4", "bAnswer: 4", "ac"),
        ("the template opened it. Answer: 5</think>Answer: 4", "Answer: 4", "the template opened it. Answer: 5"),
        ("a thought that never got its answer. Answer: 5</think>", "", "a thought that never got its answer. Answer: 5"),
    ],
)  # fmt: skip
def test_thinking_is_cut_out_of_the_answer(content: str, answer: str, thinking: str) -> None:
    split = split_thinking(content)
    assert split.answer == answer
    assert split.thinking.replace(" ", "") == thinking.replace(" ", "")
    assert split.unterminated == (content.count("<think>") > content.count("</think>"))


def test_the_answer_start_points_into_the_original_content() -> None:
    content = "<think>hmm</think>\n\nAnswer: 4"
    assert content[split_thinking(content).answer_start :].strip() == "Answer: 4"


@pytest.mark.parametrize(
    ("part", "text"),
    [
        ({"reasoning": "r1"}, "r1"),
        ({"reasoning_content": "deepseek"}, "deepseek"),
        ({"reasoning": None, "reasoning_details": [{"type": "reasoning.text", "text": "a"},
                                                   {"type": "reasoning.summary", "summary": "b"},
                                                   {"type": "reasoning.encrypted", "data": "xyz"}]}, "ab"),
        ({"content": "no thinking"}, ""),
        ("not a mapping", ""),
    ],
)  # fmt: skip
def test_reasoning_text_is_read_from_every_field_the_router_uses(part, text) -> None:
    assert reasoning_in(part) == text


def test_the_request_object_and_the_worst_case_output() -> None:
    assert reasoning_request("high", None, False) == {"effort": "high"}
    assert reasoning_request("high", 2000, True) == {"max_tokens": 2000, "exclude": True}
    assert reasoning_budget({"effort": "low"}, 10_000) == 2000
    assert reasoning_budget({"effort": "low"}, 100) == 1024  # OpenRouter's floor
    assert reasoning_budget(None, 100) is None
    assert worst_case_output_tokens(512, {"effort": "high"}) == 512  # thinking counts inside max_tokens
    assert worst_case_output_tokens(512, {"max_tokens": 4000}) == 4512  # a budget billed apart still fits
    assert reasoning_tokens({"completion_tokens_details": {"reasoning_tokens": 7}}) == 7
    assert reasoning_tokens({"completion_tokens_details": {"reasoning_tokens": "7"}}) is None


def test_generation_reasoning_is_validated_with_a_clear_error() -> None:
    assert Generation(reasoning={"effort": "low"}).reasoning.request() == {"effort": "low"}
    with pytest.raises(ValueError, match="effort"):
        Generation(reasoning={"exclude": True})
    with pytest.raises(ValueError):
        Generation(reasoning={"effort": "extreme"})


def test_effort_variants_expand_and_bad_ones_are_refused() -> None:
    assert expand_models(["m/x@effort=low,high", "m/y"]) == ["m/x@effort=low", "m/x@effort=high", "m/y"]
    variant = parse_variant("m/x@reasoning_tokens=300")
    assert variant.router_id == "m/x" and variant.reasoning(None) == {"max_tokens": 300}
    task_reasoning = Generation(reasoning={"effort": "low", "exclude": True}).reasoning
    assert parse_variant("m/x@effort=high").reasoning(task_reasoning) == {"effort": "high", "exclude": True}
    assert parse_variant("m/x").reasoning(task_reasoning) == {"effort": "low", "exclude": True}
    for bad in ("m/x@effort=extreme", "m/x@speed=1", "m/x@effort=", "@effort=low"):
        with pytest.raises(ConfigError):
            expand_models([bad])


def test_an_old_tasks_fingerprint_does_not_change() -> None:
    plain = Task(name="t", samples=[Sample(id="1", input="x", target="y")])
    assert plain.fingerprint() == plain.model_copy(update={}).fingerprint()
    thinking = plain.model_copy(update={"generation": Generation(reasoning={"effort": "low"})})
    assert thinking.fingerprint() != plain.fingerprint()


# ---- end to end on the simulator --------------------------------------------------------------


def arithmetic(n: int = 24, *, max_tokens: int = 1500, system: str | None = None, **prompt) -> Task:
    samples = [
        Sample(id=f"q{i}", input=f"What is {i} + {i * 7}? Finish with 'Answer: <number>'.", target=str(8 * i),
               language=("en", "ru", "zh")[i % 3])
        for i in range(n)
    ]  # fmt: skip
    return Task(name="arith", family="qa", samples=samples, scorer="numeric",
                prompt={"system": system, **prompt}, generation={"max_tokens": max_tokens})  # fmt: skip


@pytest.fixture
def router(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)

    def start(task: Task):
        return sim.serve(tasks=[task], latency_scale=0, api_key=KEY, request_log=tmp_path / "log.jsonl")

    return start


def generation(server, gen_id: str) -> dict:
    request = urllib.request.Request(
        f"{server.base_url}/generation?id={gen_id}", headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["data"]


@pytest.mark.parametrize("stream", [True, False])
def test_thinking_is_recorded_billed_as_the_router_billed_it_and_never_scored(router, tmp_path, stream):
    task = arithmetic(max_tokens=900)
    with router(task) as server:
        result = evalkit.run([task], ["sim/reasoner@effort=high", "sim/thinker"], base_url=server.base_url,
                             out=str(tmp_path / "out"), progress=False, stream=stream)  # fmt: skip
        df = result.df
        bills = {row.generation_id: generation(server, row.generation_id) for row in df.itertuples()}
        billed = server.stats()["billed_rub"]
    log = {
        (e["sample"], e["model"]): e
        for e in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines())
    }
    assert result.status == "completed" and df.error.isna().all()
    assert df.cost_rub.sum() == pytest.approx(billed, abs=1e-9)
    for row in df.itertuples():
        bill = bills[row.generation_id]
        assert row.reasoning_tokens == bill["native_tokens_reasoning"] > 0
        assert row.completion_tokens == bill["tokens_completion"] >= row.reasoning_tokens
        assert row.cost_rub == pytest.approx(bill["total_cost"], rel=1e-12)
        assert row.cost_rub_estimated == pytest.approx(row.cost_rub, rel=1e-9)  # the price card is the sim's
        assert row.cost_rub_reasoning == pytest.approx(
            row.reasoning_tokens * (row.cost_rub_output / row.completion_tokens)
        )
        assert row.reasoning and "<think" not in row.output and "</think" not in row.output
        assert not row.output or row.output not in row.reasoning  # the decoy lives in the thought only
        assert row.truncated == (row.finish_reason == "length")
        correct = log[(f"arith/{row.sample_id}", row.model.split("@")[0])]["correct"]
        if not row.truncated:
            assert row.score == float(correct)  # the thought's decoy answer never reached the scorer
        if stream:
            assert row.ttft_reasoning_s is not None
            assert pd.isna(row.ttft_s) or row.ttft_reasoning_s <= row.ttft_s  # NaN: no answer came
        else:
            assert pd.isna(row.ttft_s) and pd.isna(row.ttft_reasoning_s)


def test_an_unterminated_thought_is_a_truncated_empty_answer_scored_wrong(router, tmp_path):
    task = arithmetic(n=9, max_tokens=60)  # far below the thinker's usual thought
    with router(task) as server:
        df = evalkit.run([task], ["sim/thinker"], base_url=server.base_url, out=str(tmp_path / "o"),
                         progress=False).df  # fmt: skip
    assert df.truncated.all() and (df.output == "").all() and (df.score == 0).all()
    assert df.error.isna().all()  # a truncated answer is the model's answer, not an API failure
    assert (df.completion_tokens <= 60).all()
    summary = evalkit.summarize(df)
    assert summary.loc[0, "truncated_rate"] == 1.0
    assert summary.loc[0, "accuracy_untruncated"] != summary.loc[0, "accuracy_untruncated"]  # NaN: none left


def test_an_effort_sweep_costs_more_thinks_more_and_plots_a_point_per_effort(router, tmp_path):
    from evalkit import plots

    task = arithmetic(n=45, max_tokens=4000)
    with router(task) as server:
        df = evalkit.run([task], ["sim/reasoner@effort=low,high"], base_url=server.base_url,
                         out=str(tmp_path / "o"), progress=False).df  # fmt: skip
    low, high = (df[df.model == f"sim/reasoner@effort={e}"] for e in ("low", "high"))
    assert len(low) == len(high) == 45
    assert high.reasoning_tokens.mean() > 3 * low.reasoning_tokens.mean()
    assert high.cost_rub.sum() > low.cost_rub.sum()
    fig = plots.accuracy_vs_cost(df, n_boot=50)
    ax = fig.axes[0]
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"sim/reasoner@effort=low", "sim/reasoner@effort=high"} <= legend
    points = {c.get_label(): (c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0]) for c in ax.containers}
    per_1000 = df.groupby("model").cost_rub.mean() * 1000
    accuracy = df.groupby("model").score.mean() * 100
    assert set(points) == set(per_1000.index)
    for model, (x, y) in points.items():
        assert (x, y) == (pytest.approx(per_1000[model], rel=1e-6), pytest.approx(accuracy[model]))


def test_the_budget_holds_when_thinking_is_large(router, tmp_path):
    task = arithmetic(n=40, max_tokens=3000)
    with router(task) as server:
        result = evalkit.run([task], ["sim/reasoner@effort=high"], base_url=server.base_url,
                             out=str(tmp_path / "o"), progress=False, budget_rub=2.0, concurrency=8)  # fmt: skip
        billed = server.stats()["billed_rub"]
    assert result.status == "budget_exhausted"
    assert billed <= 2.0 and result.df.cost_rub.sum() == pytest.approx(billed, abs=1e-9)
    assert (result.df.reasoning_tokens > 0).all()


def test_a_shared_prefix_is_cached_and_lowers_the_bill_exactly_as_priced(router, tmp_path):
    from evalkit.sim.profiles import RU_TUNED

    task = arithmetic(n=10, max_tokens=64, system=SYSTEM, shared_prefix=True)
    with router(task) as server:
        df = evalkit.run([task], ["sim/ru-tuned"], base_url=server.base_url, out=str(tmp_path / "o"),
                         progress=False, concurrency=1).df  # fmt: skip
        billed = server.stats()["billed_rub"]
    df = df.sort_values("cached_tokens")
    assert (df.cached_tokens > 0).sum() == 9  # the first call writes the cache, the rest read it
    cached = df.cached_tokens.to_numpy()
    full = df.prompt_tokens * RU_TUNED.prompt_price + df.completion_tokens * RU_TUNED.completion_price
    expected = full - cached * (RU_TUNED.prompt_price - RU_TUNED.cache_read_price)
    assert df.cost_rub.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)
    assert df.cost_rub_cache_saved.to_numpy() == pytest.approx((full - expected).to_numpy(), rel=1e-9)
    assert df.cost_rub.sum() == pytest.approx(billed, abs=1e-12)
    assert evalkit.summarize(df).loc[0, "rub_cache_saved"] == pytest.approx((full - expected).sum())


def test_estimate_counts_on_caching_only_for_a_declared_shared_prefix_and_never_in_the_worst_case() -> None:
    from evalkit.client.catalog import Catalog, ModelInfo, PriceCard
    from evalkit.client.tokens import estimate_message_tokens
    from evalkit.runner.estimate import estimate_run, format_estimate

    card = PriceCard(prompt=30e-6, completion=90e-6, input_cache_read=7.5e-6)
    catalog = Catalog({"m/x": ModelInfo("m/x", "x", 10_000, ("text",), ("text",), card)}, source="bundled")
    declared, silent = (
        arithmetic(n=10, max_tokens=64, system=SYSTEM, shared_prefix=True),
        arithmetic(n=10, max_tokens=64, system=SYSTEM),
    )
    (cached,) = estimate_run([declared], ["m/x"], catalog)
    (plain,) = estimate_run([silent], ["m/x"], catalog)
    prefix = estimate_message_tokens([{"role": "system", "content": SYSTEM}]) - 3
    assert cached.cached_tokens == 9 * prefix and plain.cached_tokens == 0
    saved = 9 * prefix * (card.prompt - card.input_cache_read)
    assert plain.low_rub - cached.low_rub == pytest.approx(saved)
    assert plain.expected_rub - cached.expected_rub == pytest.approx(saved)
    assert cached.high_rub == plain.high_rub  # the worst case never counts on a cache
    assert "cache price" in format_estimate([cached])
    (budgeted,) = estimate_run([silent], ["m/x@reasoning_tokens=1000"], catalog)
    assert budgeted.high_rub == pytest.approx(plain.high_rub + 10 * 1000 * card.completion)


def test_estimate_counts_the_thinking_a_reasoning_request_asks_for_and_keeps_the_worst_case() -> None:
    from evalkit.client.catalog import Catalog, ModelInfo, PriceCard
    from evalkit.runner.estimate import EXPECTED_OUTPUT_SHARE, estimate_run, format_estimate

    card = PriceCard(prompt=30e-6, completion=90e-6)
    catalog = Catalog({"m/x": ModelInfo("m/x", "x", 10_000, ("text",), ("text",), card)}, source="bundled")
    task = arithmetic(n=10, max_tokens=1000)
    models = [
        "m/x",
        "m/x@effort=low",
        "m/x@effort=high",
        "m/x@reasoning_tokens=300",
        "m/x@reasoning_tokens=5000",
    ]
    plain, low, high, budget, huge = estimate_run([task], models, catalog)
    answer = 1000 * EXPECTED_OUTPUT_SHARE  # 350 tokens a call, as without thinking

    def expected(output_per_call: float) -> float:
        return card.estimate(plain.prompt_tokens, int(output_per_call * 10)).total

    assert plain.expected_rub == pytest.approx(expected(answer)) and plain.thinking_tokens == 0
    assert low.expected_rub == pytest.approx(expected(answer + 200))  # effort low: 20% of max_tokens
    assert high.expected_rub == pytest.approx(expected(1000))  # 350 + 800 is past max_tokens: capped
    assert budget.expected_rub == pytest.approx(expected(answer + 300))  # all of the budget
    assert huge.expected_rub == pytest.approx(expected(answer + 5000))
    assert (low.thinking_tokens, high.thinking_tokens, budget.thinking_tokens) == (200, 800, 300)
    # the worst case, which the budget reserves, is unchanged: max_tokens, plus a budget on top
    assert plain.high_rub == low.high_rub == high.high_rub == pytest.approx(expected(1000))
    assert budget.high_rub == pytest.approx(expected(1300)) and huge.high_rub == pytest.approx(expected(6000))
    for row in (plain, low, high, budget, huge):
        assert row.low_rub <= row.expected_rub <= row.high_rub
    shown = format_estimate([low, budget])
    assert (
        "expected counts 200 thinking tokens a call for m/x@effort=low (effort low: 20% of max_tokens 1000"
        in shown
    )
    assert (
        "300 thinking tokens a call for m/x@reasoning_tokens=300 (the whole thinking budget, 300 tokens"
        in shown
    )
    assert "thinking" not in format_estimate([plain])


def test_the_report_and_the_cli_summary_show_thinking_truncation_and_caching(router, tmp_path, capsys):
    from evalkit.cli.commands import main
    from evalkit.report import render_report

    task = arithmetic(n=12, max_tokens=400, system=SYSTEM, shared_prefix=True)
    with router(task) as server:
        result = evalkit.run([task], ["sim/thinker@effort=high", "sim/small-fast"], base_url=server.base_url,
                             out=str(tmp_path / "o"), progress=False, concurrency=1, run_id="sweep")  # fmt: skip
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["models"]["sim/thinker@effort=high"]["router_id"] == "sim/thinker"
    assert manifest["models"]["sim/thinker@effort=high"]["variant"] == {"effort": "high"}
    html = render_report(result.df)
    assert "Thinking, truncation and caching" in html and "caching saved" in html.lower()
    assert main(["show", "sweep", "--out", str(tmp_path / "o")]) == 0
    shown = capsys.readouterr().out
    assert "sim/thinker@effort=high:" in shown and "truncated at max_tokens" in shown
    assert "thinking" in shown and "caching saved" in shown
    plain = result.df[result.df.model == "sim/small-fast"]
    assert "Thinking, truncation and caching" not in render_report(plain[plain.cached_tokens == 0].iloc[:1])


def test_cache_reads_and_writes_are_priced_from_the_card_and_savings_are_net_of_writes() -> None:
    from evalkit.client.catalog import PriceCard

    card = PriceCard.from_api({"prompt": "3e-6", "completion": 1.5e-5, "input_cache_read": 3e-7,
                               "input_cache_write": "3.75e-6"})  # fmt: skip
    est = card.estimate(1000, 100, cached_tokens=600, cache_write_tokens=300)
    assert est.input == pytest.approx(100 * 3e-6 + 600 * 3e-7 + 300 * 3.75e-6)
    assert est.cache_saved == pytest.approx(600 * (3e-6 - 3e-7) - 300 * (3.75e-6 - 3e-6))
    assert est.total == pytest.approx(est.input + 100 * 1.5e-5)
    # more cached and written tokens than the prompt had cannot make a negative or doubled count
    odd = card.estimate(100, 0, cached_tokens=80, cache_write_tokens=80)
    assert odd.input == pytest.approx(80 * 3e-7 + 20 * 3.75e-6)
    assert card.to_api()["input_cache_write"] == 3.75e-6


def test_excluded_thinking_is_billed_and_counted_but_not_returned(router, tmp_path):
    from evalkit.runner.scheduler import _params

    task = arithmetic(n=6, max_tokens=2000).model_copy(
        update={"generation": Generation(max_tokens=2000, reasoning={"effort": "low", "exclude": True})}
    )
    assert _params(task, 0, parse_variant("sim/reasoner").reasoning(task.generation.reasoning))[
        "reasoning"
    ] == {
        "effort": "low",
        "exclude": True,
    }
    with router(task) as server:
        df = evalkit.run([task], ["sim/reasoner"], base_url=server.base_url, out=str(tmp_path / "o"),
                         progress=False).df  # fmt: skip
    assert df.reasoning.isna().all() and (df.reasoning_tokens > 0).all()
    assert (df.cost_rub_reasoning > 0).all() and df.error.isna().all()


def test_the_cost_breakdown_splits_output_into_answer_and_thinking() -> None:
    from evalkit import plots

    df = pd.DataFrame({
        "task": "t", "model": ["m/think"] * 2 + ["m/plain"] * 2, "sample_id": ["a", "b"] * 2, "epoch": 0,
        "score": 1.0, "error": None, "cost_rub": [0.02, 0.02, 0.01, 0.01], "cost_rub_estimated": [0.02, 0.02, 0.01, 0.01],
        "cost_rub_input": [0.002, 0.002, 0.002, 0.002], "cost_rub_output": [0.018, 0.018, 0.008, 0.008],
        "cost_rub_images": 0.0, "cost_rub_reasoning": [0.015, 0.015, None, None], "simulated": False,
    })  # fmt: skip
    ax = plots.cost_breakdown(df).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "thinking tokens (price card)" in labels and "answer tokens (price card)" in labels
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    # models sorted: m/plain, m/think
    assert bars["thinking tokens (price card)"] == pytest.approx([0, 15])
    assert bars["answer tokens (price card)"] == pytest.approx([8, 3])


def test_the_cli_runs_effort_variants_from_yaml_and_refuses_a_bad_one(tmp_path, capsys):
    from evalkit.cli.commands import main

    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": i, "q": f"What is {i} + 1? End with 'Answer: <n>'.",
                                        "a": str(i + 1)}) + "\n" for i in range(6)))  # fmt: skip
    task = tmp_path / "sums.yaml"
    task.write_text(
        "name: sums\nfamily: qa\nsource: {path: sums.jsonl}\nfields: {id: id, target: a}\n"
        'prompt: {user: "{q}"}\nscorer: numeric\n'
        "generation: {max_tokens: 3000, reasoning: {effort: low, exclude: false}}\n"
    )
    out = str(tmp_path / "out")
    code = main(["run", str(task), "-m", "sim/reasoner@effort=minimal,low", "--sim", "--out", out, "-q",
                 "--run-id", "cli-sweep"])  # fmt: skip
    shown = capsys.readouterr().out
    assert code == 0 and "sim/reasoner@effort=minimal" in shown and "sim/reasoner@effort=low" in shown
    df = evalkit.load_results(["cli-sweep"], out=out)
    means = df.groupby("model").reasoning_tokens.mean()
    assert means["sim/reasoner@effort=low"] > means["sim/reasoner@effort=minimal"]
    code = main(["run", str(task), "-m", "sim/reasoner@effort=ultra", "--sim", "--out", out])
    captured = capsys.readouterr()
    assert code == 2 and "effort 'ultra' is not one of minimal, low, medium, high" in captured.err
    assert "Traceback" not in captured.err
