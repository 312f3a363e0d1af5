"""Attacks on the money of reasoning and caching, and on the statistics: each test is an attempt to get
a silently wrong number out of evalkit, end to end where it can be (real HTTP to a router on
127.0.0.1), that now either holds or is refused with one clear error."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import evalkit
from evalkit import sim, stats
from evalkit.client.dialect.pricing import PriceCard
from evalkit.client.dialect.reasoning import split_thinking
from evalkit.client.sse import AttemptState
from evalkit.common.clock import ManualClock
from evalkit.common.errors import ConfigError, EvalkitWarning
from evalkit.task.spec import Sample, Task
from tests.scripted_router import MODEL, Reply, ScriptedRouter

KEY = "sk-test-money-stats-0123456789abcdef"
SYSTEM = " ".join(f"Rule {i}: answer arithmetic exactly and show the final number." for i in range(40))


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)


def qa(prompts: dict[str, str], scorer: object = "exact", **generation) -> Task:
    samples = [Sample(id=f"s{i}", input=p, target=t) for i, (p, t) in enumerate(prompts.items())]
    return Task(name="attack", family="qa", samples=samples, scorer=scorer,
                generation={"max_tokens": 256, **generation})  # fmt: skip


# ---- thinking in the content ---------------------------------------------------------------------

CODE = "```python\ndef strip(s):\n    return s.replace('<think>', '').replace('</think>', '')\n```"


@pytest.mark.parametrize(
    ("content", "answer", "thinking"),
    [
        # a program that handles think tags is code, not thinking (it was cut in half and scored)
        (CODE, CODE, ""),
        (f"<think>plan the function</think>\n{CODE}", CODE, "plan the function"),
        ("```\nprint('</think>')\n```", "```\nprint('</think>')\n```", ""),
        # outside code the rules stand: any case, nested, repeated, unclosed
        ("<THINK>5?</THINK>Answer: 4", "Answer: 4", "5?"),
        ("<think>a<think>b</think>c</think>Answer: 4", "Answer: 4", "abc"),
        ("<think>a</think>Answer:<think>b</think> 4", "Answer: 4", "ab"),
        ("<think>never closed Answer: 5", "", "never closed Answer: 5"),
    ],
)  # fmt: skip
def test_think_tags_inside_the_answers_code_are_code(content: str, answer: str, thinking: str) -> None:
    split = split_thinking(content)
    assert (split.answer, split.thinking) == (answer, thinking)


def test_a_code_answer_with_think_tags_reaches_the_scorer_whole_end_to_end(tmp_path) -> None:
    prompt = "Write strip()."
    with ScriptedRouter() as router:
        router.replies[prompt] = Reply(
            [{"content": "<think>plan"}, {"content": " the function</think>\n"}, {"content": CODE}],
            {"prompt_tokens": 10, "completion_tokens": 40, "cost": 0.001},
        )
        whole = qa(
            {prompt: CODE}, scorer=lambda output, sample: evalkit.Score(float(output == sample.target[0]))
        )
        df = evalkit.run([whole], [MODEL], base_url=router.base_url, progress=False,
                         out=str(tmp_path)).df  # fmt: skip
    row = df.iloc[0]
    assert row.output == CODE and row.reasoning == "plan the function" and row.score == 1.0


def test_ttft_is_the_first_answer_token_not_the_whitespace_after_the_thought() -> None:
    clock = ManualClock(autojump=False)
    state = AttemptState(started=0.0, clock=clock)
    for at, text in ((1.0, "<think>plan"), (2.0, "</think>"), (3.0, "\n\n"), (4.0, "Answer: 4")):
        clock.advance(at - clock.monotonic())
        state.content(text)
    output, thinking, first_answer, first_thought = state.answer()
    assert (output, thinking, first_answer, first_thought) == ("Answer: 4", "plan", 4.0, 1.0)


def test_ttft_of_a_reply_whose_first_delta_is_thinking_only() -> None:
    clock = ManualClock(autojump=False)
    state = AttemptState(started=0.0, clock=clock)
    clock.advance(0.5)
    state.reasoning("let me think")
    clock.advance(2.0)
    state.content("Answer: 4")
    assert state.answer()[2:] == (2.5, 0.5)


# ---- caching money -------------------------------------------------------------------------------


def test_a_cache_read_without_a_cache_price_is_an_unknown_saving_not_zero() -> None:
    card = PriceCard(prompt=18e-6, completion=59e-6)  # the bundled Llama 4 Scout card: no cache price
    assert math.isnan(card.estimate(1000, 10, cached_tokens=800).cache_saved)
    assert card.estimate(1000, 10).cache_saved == 0.0  # nothing read from the cache: nothing unknown
    write_only = PriceCard(prompt=18e-6, completion=59e-6, input_cache_read=2e-6)
    assert math.isnan(write_only.estimate(1000, 10, cache_write_tokens=500).cache_saved)
    priced = PriceCard(prompt=3e-6, completion=1.5e-5, input_cache_read=3e-7, input_cache_write=3.75e-6)
    assert priced.estimate(1000, 0, cache_write_tokens=1000).cache_saved == pytest.approx(-0.75e-3)


def test_caching_saved_is_reported_unknown_end_to_end_when_the_catalog_lacks_the_cache_price(
    tmp_path, capsys
):
    from evalkit.cli.commands import main
    from evalkit.report import render_report
    from evalkit.sim.profiles import RU_TUNED

    unlisted = RU_TUNED.model_copy(update={"lists_cache_price": False})
    samples = [Sample(id=f"q{i}", input=f"What is {i} + {i}? Finish with 'Answer: <n>'.", target=str(2 * i))
               for i in range(6)]  # fmt: skip
    task = Task(name="arith", family="qa", samples=samples, scorer="numeric",
                prompt={"system": SYSTEM, "shared_prefix": True}, generation={"max_tokens": 64})  # fmt: skip
    with sim.serve(tasks=[task], models=[unlisted], latency_scale=0, api_key=KEY) as server:
        result = evalkit.run([task], ["sim/ru-tuned"], base_url=server.base_url, out=str(tmp_path / "o"),
                             progress=False, concurrency=1, run_id="nocard")  # fmt: skip
        billed = server.stats()["billed_rub"]
    df = result.df
    assert (df.cached_tokens > 0).sum() == 5 and df.cost_rub.sum() == pytest.approx(billed, abs=1e-12)
    assert df.loc[df.cached_tokens > 0, "cost_rub_cache_saved"].isna().all()
    row = evalkit.summarize(df).iloc[0]
    assert row.cache_saved_unknown_calls == 5 and row.rub_cache_saved == 0.0
    assert main(["show", "nocard", "--out", str(tmp_path / "o")]) == 0
    shown = capsys.readouterr().out
    assert "caching saved ? ₽ (5 calls read or wrote the cache at a price the catalog lacks" in shown
    assert "+ unknown on 5 calls" in render_report(df)


def test_a_cache_write_that_costs_more_than_the_reads_save_is_shown_as_a_cost() -> None:
    from evalkit.cli.display import cache_note

    assert (
        cache_note({"rub_cache_saved": -0.25, "cache_saved_unknown_calls": 0}) == "caching cost 0.25 ₽ more"
    )
    assert cache_note({"rub_cache_saved": 0.0, "cache_saved_unknown_calls": 0}) == ""
    assert cache_note({"rub_cache_saved": 1.5, "cache_saved_unknown_calls": 2}).startswith(
        "caching saved 1.50 ₽ on the other calls (2 calls"
    )


# ---- what the router bills, and the budget -------------------------------------------------------


def _run_scripted(tmp_path, usage_of, n: int = 10, **options):
    prompts = {f"What is {i} + {i}?": str(2 * i) for i in range(n)}
    with ScriptedRouter() as router:
        for i, prompt in enumerate(prompts):
            router.replies[prompt] = Reply([{"content": f"Answer: {2 * i}"}], usage_of(i))
        result = evalkit.run([qa(prompts, scorer="numeric", max_tokens=100)], [MODEL], base_url=router.base_url,
                             out=str(tmp_path), progress=False, concurrency=1, **options)  # fmt: skip
        return result, router.requests.total()


def test_a_router_billing_thinking_past_max_tokens_cannot_overrun_the_budget(tmp_path) -> None:
    # DeepSeek-style: the hidden thought is not bounded by max_tokens, and the router bills it all
    usage = {"prompt_tokens": 12, "completion_tokens": 3400, "cost": 0.2,
             "completion_tokens_details": {"reasoning_tokens": 3390}}  # fmt: skip
    result, sent = _run_scripted(tmp_path, lambda i: usage, budget_rub=0.5)
    assert result.status == "budget_exhausted"
    assert result.df.cost_rub.sum() <= 0.5 and sent == 2  # the third call's 0.2 ₽ would not have fitted


def test_a_reply_without_usage_keeps_its_worst_case_committed(tmp_path) -> None:
    # no cost and no token counts: it was billed, nothing says how much; 0 would lift the ceiling
    result, sent = _run_scripted(tmp_path, lambda i: None, budget_rub=0.02)
    manifest = json.loads((result.path / "manifest.json").read_text())
    unconfirmed = manifest["totals"]["unconfirmed_rub"]
    assert result.status == "budget_exhausted" and sent == 3, result.message  # 100 tokens × 59 ₽/1M each
    assert 0.015 < unconfirmed <= 0.02  # three worst cases stay committed: the ceiling holds
    row = evalkit.summarize(result.df).iloc[0]
    assert row.cost_unknown_calls == 3 and row.total_rub == 0.0  # said, not hidden in a 0
    from evalkit.cli.display import thinking_notes
    from evalkit.report import render_report

    assert "3 calls came back without a cost or token counts" in "\n".join(
        thinking_notes(evalkit.summarize(result.df))
    )
    assert "neither a cost nor token counts for 3 calls" in render_report(result.df)


def test_a_negative_or_missing_cost_is_never_taken_as_billed(tmp_path) -> None:
    costs = [-0.002, None, "0.0015", float("nan"), 0.001]

    def usage(i):
        base = {"prompt_tokens": 10, "completion_tokens": 5}
        return base if costs[i] is None else base | {"cost": costs[i]}

    result, _ = _run_scripted(tmp_path, usage, n=len(costs))
    df = result.df.sort_values("sample_id")
    assert df.cost_rub.tolist()[2] == 0.0015 and df.cost_rub.tolist()[4] == 0.001
    assert df.cost_rub.isna().tolist() == [True, True, False, True, False]
    row = evalkit.summarize(df).iloc[0]
    assert row.cost_estimated_calls == 3 and row.total_rub > 0.0025
    assert row.rub_per_1000_low > 0  # no refund drags the interval below zero


# ---- scores that are no scores -------------------------------------------------------------------


def test_a_scorer_value_outside_0_1_is_an_error_never_averaged_in(tmp_path) -> None:
    values = {
        "nan": math.nan,
        "big": 1.5,
        "neg": -1.0,
        "text": "1",
        "yes": True,
        "half": 0.5,
        "np": np.float32(1),
    }
    with ScriptedRouter() as router:
        for prompt in values:
            router.replies[prompt] = Reply(
                [{"content": "x"}], {"prompt_tokens": 1, "completion_tokens": 1, "cost": 1e-4}
            )
        task = Task(name="odd", family="qa", samples=[Sample(id=p, input=p, target="x") for p in values],
                    scorer=lambda output, sample: evalkit.Score(values[sample.id]))  # fmt: skip
        result = evalkit.run([task], [MODEL], base_url=router.base_url, out=str(tmp_path), progress=False)
    df = result.df.set_index("sample_id")
    assert result.status == "completed_with_errors"
    assert set(df.index[df.error == "scoring_failed"]) == {"nan", "big", "neg", "text"}
    assert "returned 1.5 for sample 'big': a score is a number in [0, 1]" in df.loc["big", "error_message"]
    row = evalkit.summarize(result.df).iloc[0]
    assert (row.n, row.n_scored, row.errors) == (7, 3, 4) and row.accuracy == pytest.approx(2.5 / 3)


# ---- statistics ----------------------------------------------------------------------------------


def frame(
    a: list[float], b: list[float], *, clusters: list[str] | None = None, epochs: int = 1
) -> pd.DataFrame:
    rows = []
    for model, scores in (("A", a), ("B", b)):
        for i, score in enumerate(scores):
            rows.append({"task": "t", "model": model, "sample_id": f"s{i // epochs}", "epoch": i % epochs,
                         "score": score, "error": "timeout" if score != score else None, "language": "en",
                         "cluster": clusters[i] if clusters else None})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 10])
def test_a_constant_partial_credit_difference_is_not_certain_from_a_few_pairs(n: int) -> None:
    # A always gets 0.5 (a judge tie), B always 0: the paired SE is 0, and a z test called it p = 0
    result = stats.compare_models(frame([0.5] * n, [0.0] * n), "A", "B")
    assert result.method == "sign-exact" and result.p_value == pytest.approx(2.0 ** (1 - n))
    assert result.significant == (n >= 6)  # 2/2^5 = 0.0625; 2/2^6 = 0.031
    assert (result.low > 0 or result.high < 0) == result.significant  # the CI still inverts the test
    assert not result.significant or (result.low, result.high) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.0], [0.0]), ([1.0, 1.0], [0.0, 0.0]), ([1.0] * 3, [1.0] * 3), ([0.0] * 4, [0.0] * 4),
     ([1.0, 0.5, 0.0], [0.5, 0.5, 0.5]), ([1.0, 1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0, 0.0])],
)  # fmt: skip
def test_tiny_samples_keep_the_interval_and_the_test_in_agreement(a, b) -> None:
    result = stats.compare_models(frame(a, b), "A", "B")
    if math.isnan(result.p_value):
        assert math.isnan(result.low) and result.n_pairs == 1 and result.method == "paired-z"
        return
    assert (result.low > 0 or result.high < 0) == result.significant
    assert not result.significant  # nothing this small is evidence of anything


def test_errors_are_dropped_from_pairs_and_counted_never_scored_wrong() -> None:
    nan = math.nan
    result = stats.compare_models(frame([1, 1, nan, 1, 0, 1], [0, 1, 1, nan, 0, 0]), "A", "B")
    assert (result.n_pairs, result.dropped_errors, result.a_only, result.b_only) == (4, 2, 2, 0)
    assert "n = 4 pairs; left out: 2 pairs with a failed call)" in result.sentence()
    missing = frame([1.0, 1.0, 1.0, 1.0], [0.0, 0.0])  # B never answered s2, s3
    result = stats.compare_models(missing, "A", "B")
    assert result.n_pairs == 2 and result.accuracy_a == 1.0 and result.unmatched == 2
    assert "n = 2 pairs; left out: 2 answers the other model lacks)" in result.sentence()
    assert stats.compare_models(frame([1.0, 0.0], [1.0, 1.0]), "A", "B").unmatched == 0


def test_comparing_a_model_with_itself_and_holm_over_one_comparison() -> None:
    df = frame([1.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    same = stats.compare_models(df, "A", "A")
    assert (same.difference, same.p_value, same.significant) == (0.0, 1.0, False)
    assert stats.holm([0.03]) == [0.03] and stats.holm([]) == []
    unknown, known = stats.holm([math.nan, 0.2])
    assert math.isnan(unknown) and known == 0.2  # a NaN p is no member of the family
    (only,) = stats.compare_groups(df, "A", "B")
    assert only.family == 1 and only.p_adjusted == only.p_value


def test_pass_at_k_refuses_partial_credit_and_says_which_problems_it_covers() -> None:
    with pytest.raises(ConfigError, match=r"pass@k needs pass/fail scores .* has 0.5 \(sample 's0'"):
        stats.pass_at_k_table(frame([0.5, 1.0, 0.0], [1.0, 1.0, 1.0], epochs=3), ks=(1,))
    nan = math.nan
    # s0 answered 3 times, s1 twice (one epoch failed): pass@3 can only speak for s0
    table = stats.pass_at_k_table(frame([1, 0, 0, 0, 0, nan], [0] * 6, epochs=3), ks=(1, 3))
    row = table[table.model == "A"].iloc[0]
    assert row.problems == 2 and row["pass@1_problems"] == 2 and row["pass@3_problems"] == 1
    assert row["pass@3"] == 1.0 and row["pass@1"] == pytest.approx((1 / 3 + 0) / 2)
    with pytest.raises(ValueError, match="pass@3 needs at least 3 samples"):
        stats.pass_at_k(2, 1, 3)


def test_the_report_shows_pass_at_k_only_for_pass_fail_tasks_and_its_coverage() -> None:
    from evalkit.report import _pass_at_k_html

    nan = math.nan
    code = frame([1, 0, 0, 0, 0, 0, 0, 0, 0, nan], [0] * 10, epochs=5)  # s1 lost an epoch: no pass@5
    judged = frame([0.5] * 10, [1.0] * 10, epochs=5).assign(task="judged")
    html = _pass_at_k_html(pd.concat([code, judged]))
    assert "judged" not in html and "(1 of 2 problems)" in html


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"delta": 0}, "0 < |delta|"), ({"delta": 1.5}, "0 < |delta|"), ({"power": 1.0, "delta": 0.1}, "power and alpha"),
     ({"alpha": 0.0, "delta": 0.1}, "power and alpha"), ({"accuracy_b": 0.7}, "0 < |delta|")],
)  # fmt: skip
def test_plan_refuses_what_no_sample_size_can_answer(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        stats.plan(**({"accuracy_a": 0.7, "accuracy_b": 0.6} | kwargs))


def test_plan_from_a_pilot_with_no_disagreement_asks_for_what_it_cannot_measure() -> None:
    same = frame([1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="shows no difference"):
        stats.plan(same, "A", "B")
    with pytest.raises(ConfigError, match="discordance=0"):
        stats.plan(same, "A", "B", delta=0.05)
    with pytest.raises(ConfigError, match="0/1 scores"):
        stats.plan(frame([0.5, 1.0, 0.0], [0.0, 1.0, 1.0]), "A", "B", delta=0.1)


# ---- effort sweeps: identity, cache, resume, rescore ---------------------------------------------


def test_effort_variants_never_share_cached_answers_and_a_resume_does_not_mix_in_new_efforts(
    tmp_path,
) -> None:
    samples = [Sample(id=f"q{i}", input=f"What is {i} + {i * 7}? Finish with 'Answer: <number>'.", target=str(8 * i))
               for i in range(4)]  # fmt: skip
    task = Task(name="arith", family="qa", samples=samples, scorer="numeric", generation={"max_tokens": 3000})
    options = dict(out=str(tmp_path), progress=False)
    with sim.serve(tasks=[task], latency_scale=0, api_key=KEY) as server:
        low = evalkit.run(
            [task], ["sim/reasoner@effort=low"], base_url=server.base_url, run_id="low", **options
        )
        high = evalkit.run(
            [task], ["sim/reasoner@effort=high"], base_url=server.base_url, run_id="hi", **options
        )
        assert not high.df.from_cache.any() and server.stats()["requests"] == 8  # the effort is in the key
        with pytest.warns(EvalkitWarning, match=r"keeps its models \(sim/reasoner@effort=low\)"):
            again = evalkit.run([task], ["sim/reasoner@effort=low,medium"], base_url=server.base_url, resume="low",
                                **options)  # fmt: skip
        assert server.stats()["requests"] == 8
    assert set(again.df.model) == {"sim/reasoner@effort=low"} and len(again.df) == 4
    assert high.df.reasoning_tokens.mean() > low.df.reasoning_tokens.mean()


def test_a_rescored_run_of_a_thinking_model_still_never_shows_the_thought_to_the_scorer(tmp_path) -> None:
    first = evalkit.run(["builtin_qa_reasoning"], ["sim/thinker"], sim=True, limit=12, seed=0, out=str(tmp_path),
                        progress=False, run_id="th")  # fmt: skip
    again = evalkit.rescore("th", out=str(tmp_path)).df.sort_values("sample_id")
    first_df = first.df.sort_values("sample_id")
    assert first_df.reasoning.notna().all() and again.reasoning.notna().all()
    assert (
        again.output.tolist() == first_df.output.tolist() and again.score.tolist() == first_df.score.tolist()
    )
    assert not again.output.str.contains("think", case=False).any()
    decoys = [r for r in again.itertuples() if r.output and r.output in r.reasoning]
    assert not decoys


def test_thinking_reported_apart_from_completion_tokens_is_billed_on_top(tmp_path) -> None:
    # a provider that counts the thought outside completion_tokens: 5 answer + 50 thinking tokens
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "completion_tokens_details": {"reasoning_tokens": 50},
    }
    result, _ = _run_scripted(tmp_path, lambda i: usage, n=2)
    row = result.df.iloc[0]
    card = PriceCard(prompt=18e-6, completion=59e-6)
    assert row.cost_rub_estimated == pytest.approx(10 * card.prompt + 55 * card.completion)
    assert row.cost_rub_reasoning == pytest.approx(50 * card.completion)
    assert row.cost_rub_reasoning < row.cost_rub_output
    summary = evalkit.summarize(result.df).iloc[0]
    assert (
        summary.total_rub == pytest.approx(2 * row.cost_rub_estimated)
        and summary.rub_reasoning < summary.total_rub
    )
    inside = card.estimate(10, 60, reasoning_tokens=50)  # the usual dialect: the thought is inside
    assert inside.output == pytest.approx(60 * card.completion) and inside.reasoning == pytest.approx(
        50 * card.completion
    )


def test_one_cluster_says_its_interval_is_not_clustered_and_clusters_of_one_are_independent() -> None:
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    one = stats.accuracy_ci(scores, ["c"] * 6)
    plain = stats.accuracy_ci(scores)
    assert (one.low, one.high, one.method) == (plain.low, plain.high, "wilson")
    assert one.note.startswith("one cluster: its design effect cannot be estimated")
    singletons = stats.accuracy_ci(scores, [f"c{i}" for i in range(6)])
    assert (singletons.low, singletons.high, singletons.method, singletons.note) == (
        plain.low,
        plain.high,
        "wilson",
        "",
    )
    tiny = stats.accuracy_ci([1.0], ["c"])
    assert tiny.n == 1 and tiny.note == "" and 0 < tiny.low < 1 and tiny.high == 1.0


def test_the_worst_case_prices_the_prompt_at_a_dearer_cache_write() -> None:
    from evalkit.client.catalog import Catalog, ModelInfo
    from evalkit.runner.estimate import estimate_run

    card = PriceCard(prompt=3e-6, completion=15e-6, input_cache_read=0.3e-6, input_cache_write=3.75e-6)
    assert card.worst_case(1000, 10) == pytest.approx(1000 * 3.75e-6 + 10 * 15e-6)  # the whole prompt written
    cheap_write = PriceCard(prompt=3e-6, completion=15e-6, input_cache_write=1e-6)
    assert cheap_write.worst_case(1000, 10) == pytest.approx(1000 * 3e-6 + 10 * 15e-6)
    catalog = Catalog({"m/x": ModelInfo("m/x", "x", 10_000, ("text",), ("text",), card)}, source="bundled")
    (row,) = estimate_run([qa({"What is 2 + 2?": "4"}, max_tokens=10)], ["m/x"], catalog)
    assert row.high_rub == pytest.approx(row.prompt_tokens * 3.75e-6 + 10 * 15e-6)


@pytest.mark.parametrize(("delta", "discordance"), [(0.3, 0.3), (0.5, 0.6), (0.2, 0.3), (0.05, 0.1)])
def test_plan_achieves_the_power_it_promises_when_disagreements_go_one_way(delta, discordance) -> None:
    # Connor's normal approximation asked 24 pairs at δ = ψ = 0.3: 96% power for a promised 80%
    b = 0.45
    a, both = b + delta, (2 * b + delta - discordance) / 2
    correlation = (both - a * b) / math.sqrt(a * (1 - a) * b * (1 - b))
    plan = stats.plan(accuracy_a=a, accuracy_b=b, correlation=correlation)
    assert plan.discordance == pytest.approx(discordance) and plan.delta == pytest.approx(delta)
    n = plan.n_samples
    assert stats.mcnemar_power(n, delta, discordance) >= 0.8 > stats.mcnemar_power(n - 1, delta, discordance)
    p10, p01 = (discordance + delta) / 2, (discordance - delta) / 2
    draws = np.random.default_rng(7).multinomial(n, [p10, p01, 1 - discordance], size=4000)
    achieved = np.mean([stats.mcnemar_p(int(x), int(y)) < 0.05 for x, y in draws[:, :2]])
    assert abs(achieved - stats.mcnemar_power(n, delta, discordance)) <= 0.02  # the sum is the test's power
    assert 0.78 <= achieved <= 0.86  # one pair fewer falls short: no more than the discreteness over 80%


@pytest.mark.parametrize("stream", [True, False])
def test_thinking_that_arrives_last_or_in_pieces_is_kept_apart_from_the_answer(tmp_path, stream) -> None:
    prompts = {"late": "Answer: 4", "pieces": "Answer: 4"}
    with ScriptedRouter() as router:
        usage = {"prompt_tokens": 5, "completion_tokens": 9, "cost": 1e-4,
                 "completion_tokens_details": {"reasoning_tokens": 6}}  # fmt: skip
        router.replies["late"] = Reply([{"content": "Answer: 4"}, {"reasoning": "late, Answer: 5"}], usage)
        router.replies["pieces"] = Reply(
            [{"reasoning_details": [{"type": "reasoning.text", "text": "Answer"}]},
             {"reasoning_details": [{"type": "reasoning.summary", "summary": ": 5?"}]},
             {"content": "<thi"}, {"content": "nk>no, 4</th"}, {"content": "ink>Answer: 4"}],
            usage,
        )  # fmt: skip
        df = evalkit.run([qa({p: "4" for p in prompts}, scorer="numeric")], [MODEL], base_url=router.base_url,
                         out=str(tmp_path), progress=False, stream=stream).df.set_index("sample_id")  # fmt: skip
    assert df.output.tolist() == ["Answer: 4", "Answer: 4"] and (df.score == 1.0).all()
    assert df.loc["s0", "reasoning"] == "late, Answer: 5"
    assert "Answer: 5?" in df.loc["s1", "reasoning"] and "no, 4" in df.loc["s1", "reasoning"]
    if stream:
        assert df.loc["s0", "ttft_reasoning_s"] >= df.loc["s0", "ttft_s"]  # the thought came after the answer


def test_estimate_claims_no_cache_price_for_a_card_that_has_none() -> None:
    from evalkit.client.catalog import Catalog, ModelInfo
    from evalkit.runner.estimate import estimate_run, format_estimate

    samples = [Sample(id=f"q{i}", input=f"What is {i} + {i}?", target=str(2 * i)) for i in range(5)]
    task = Task(name="arith", family="qa", samples=samples, scorer="numeric",
                prompt={"system": SYSTEM, "shared_prefix": True}, generation={"max_tokens": 64})  # fmt: skip
    cards = {"m/none": PriceCard(prompt=30e-6, completion=90e-6),
             "m/read": PriceCard(prompt=30e-6, completion=90e-6, input_cache_read=7.5e-6)}  # fmt: skip
    catalog = Catalog(
        {m: ModelInfo(m, m, 10_000, ("text",), ("text",), c) for m, c in cards.items()}, source="bundled"
    )
    none, read = estimate_run([task], list(cards), catalog)
    assert none.cached_tokens == 0 and none.low_rub > read.low_rub
    assert f"count {read.cached_tokens} prompt tokens at the cache price" in format_estimate([none, read])
