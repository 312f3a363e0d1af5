"""The router dialect: its recognisers, and every quirk's check on answers that conform and that do not.

The evidence below is written in RouterAI's shapes by hand (not by the simulator), so a simulator
that drifted would not drag these tests with it. Every quirk in `QUIRKS` must have a case here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.client.catalog import PriceCard
from evalkit.client.dialect import (
    PROBES,
    QUIRKS,
    Evidence,
    Reply,
    check_all,
    classify_http_error,
    classify_payload,
    error_in_body,
    error_in_chunk,
    parse_price,
    sse_event,
    unwrap_data,
    usage_cost,
)
from evalkit.client.errors import ErrorClass
from evalkit.common.errors import ConfigError

MODEL = "meta-llama/llama-4-scout"
PROMPT, COMPLETION, IMAGE = 1.8e-05, 5.9e-05, 0.09114
PLAIN_COST = 14 * PROMPT + 2 * COMPLETION
IMAGE_COST = 20 * PROMPT + 1 * COMPLETION + IMAGE


def usage(prompt: int, completion: int, cost: float | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
    }
    if cost is not None:
        found["cost"] = cost
    return found


def ok(payload: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode())


def stream(*events: dict[str, Any] | str, comments: int = 1) -> Reply:
    lines = [": PROCESSING", ""] * comments
    for event in events:
        lines += [f"data: {event if isinstance(event, str) else json.dumps(event)}", ""]
    return Reply(status=200, lines=lines)


def delta(content: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "gen-2",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
        **extra,
    }


def good() -> Evidence:
    """What RouterAI answers to the doctor's probes."""
    entry = {
        "id": MODEL,
        "context_length": 327680,
        "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
        "pricing": {"prompt": PROMPT, "completion": COMPLETION, "image": IMAGE, "request": 0},
    }
    plain = {
        "id": "gen-1",
        "choices": [{"message": {"role": "assistant", "content": "Ready"}, "finish_reason": "stop"}],
        "usage": usage(14, 2, PLAIN_COST),
    }
    image = {**plain, "id": "gen-3", "usage": usage(20, 1, IMAGE_COST)}
    replies = {
        "models": ok({"data": [entry]}),
        "credits": ok({"data": {"total_credits": 100.0, "total_usage": 2.5}}),
        "plain": ok(plain),
        "stream": stream(
            delta("Ready"), delta("", "stop"), delta("", "stop", usage=usage(14, 2, PLAIN_COST)), "[DONE]"
        ),
        "unknown_model": ok({"error": "Model 'evalkit-doctor/no-such-model' not found"}, 400),
        "bad_key": ok({"error": {"message": "User not found.", "code": 401}}, 401),
        "image": ok(image),
        "generation": ok({"data": {"id": "gen-1", "total_cost": PLAIN_COST, "tokens_prompt": 14}}),
    }
    return Evidence(model=MODEL, replies=replies, bundled=PriceCard(PROMPT, COMPLETION, IMAGE))


NOT_SEEN_WHEN_ALL_IS_WELL = {"out_of_credit_402", "error_in_200", "error_json_in_string", "error_in_stream"}


def test_routerai_answers_conform_to_every_quirk() -> None:
    findings = check_all(good())
    assert list(findings) == [q.name for q in QUIRKS]
    assert {n for n, f in findings.items() if f.status == "not_seen"} == NOT_SEEN_WHEN_ALL_IS_WELL
    assert all(f.status == "conforms" for n, f in findings.items() if n not in NOT_SEEN_WHEN_ALL_IS_WELL)


# --------------------------------------------------------------------------------------------
# One break per quirk: that quirk differs, in words that say what evalkit would get wrong


def _json(ev: Evidence, probe: str) -> Any:
    return json.loads(ev.replies[probe].body)


def _set(ev: Evidence, probe: str, change: Callable[[Any], None], status: int = 200) -> None:
    data = copy.deepcopy(_json(ev, probe))
    change(data)
    ev.replies[probe] = ok(data, status)


def no_architecture(ev: Evidence) -> None:
    _set(ev, "models", lambda d: d["data"][0].pop("architecture"))


def prices_as_strings(ev: Evidence) -> None:
    _set(ev, "models", lambda d: d["data"][0]["pricing"].update(prompt="0.000018", completion="0.000059"))


def prices_per_million(ev: Evidence) -> None:
    _set(ev, "models", lambda d: d["data"][0]["pricing"].update(prompt=18.0, completion=59.0))


def credits_as_balance(ev: Evidence) -> None:
    ev.replies["credits"] = ok({"balance": "97.5"})


def no_cost(ev: Evidence) -> None:
    _set(ev, "plain", lambda d: d["usage"].pop("cost"))


def tokens_as_strings(ev: Evidence) -> None:
    _set(ev, "plain", lambda d: d["usage"].update(prompt_tokens="14"))


def cost_in_kopecks(ev: Evidence) -> None:
    _set(ev, "plain", lambda d: d["usage"].update(cost=PLAIN_COST * 100))


def no_stream_usage(ev: Evidence) -> None:
    ev.replies["stream"] = stream(delta("Ready"), delta("", "stop"), "[DONE]")


def event_lines(ev: Evidence) -> None:
    ev.replies["stream"].lines = ["event: error", 'data: {"error": "x"}', "", *ev.replies["stream"].lines]


def unknown_model_404(ev: Evidence) -> None:
    ev.replies["unknown_model"] = ok({"error": {"code": 404, "message": "Not Found"}}, 404)


def unknown_model_404_named(ev: Evidence) -> None:
    ev.replies["unknown_model"] = ok({"error": {"code": 404, "message": "Model 'x' not found"}}, 404)


def error_as_detail(ev: Evidence) -> None:
    ev.replies["unknown_model"] = ok({"detail": "Model 'evalkit-doctor/no-such-model' not found"}, 400)


def bad_key_403(ev: Evidence) -> None:
    ev.replies["bad_key"] = ok({"error": {"code": 403, "message": "Forbidden"}}, 403)


def image_not_billed(ev: Evidence) -> None:
    _set(ev, "image", lambda d: d["usage"].update(cost=IMAGE_COST - IMAGE))


def generation_disagrees(ev: Evidence) -> None:
    ev.replies["generation"] = ok({"data": {"id": "gen-1", "total_cost": PLAIN_COST * 2}})


def cached_as_string(ev: Evidence) -> None:
    body = _json(ev, "plain")
    body["usage"]["prompt_tokens_details"]["cached_tokens"] = "0"
    ev.replies["plain"] = ok(body)


def more_thinking_than_output(ev: Evidence) -> None:
    body = _json(ev, "plain")
    body["usage"]["completion_tokens_details"]["reasoning_tokens"] = body["usage"]["completion_tokens"] + 1
    ev.replies["plain"] = ok(body)


def test_a_cache_discount_is_priced_before_costs_are_compared() -> None:
    evidence = good()
    body = _json(evidence, "plain")
    body["usage"]["prompt_tokens_details"]["cached_tokens"] = 10
    body["usage"]["cost"] = 4 * PROMPT + 10 * PROMPT * 0.1 + 2 * COMPLETION
    evidence.replies["plain"] = ok(body)
    models = _json(evidence, "models")
    models["data"][0]["pricing"]["input_cache_read"] = PROMPT * 0.1
    evidence.replies["models"] = ok(models)
    assert check_all(evidence)["cost_matches_price_card"].status == "conforms"


BREAKS: dict[str, list[tuple[Callable[[Evidence], None], str]]] = {
    "models_schema": [(no_architecture, "lacks architecture.input_modalities")],
    "prices_rub_per_token": [
        (prices_as_strings, "not JSON numbers"),
        (prices_per_million, "another unit"),
    ],
    "credits": [(credits_as_balance, "the balance cannot be read")],
    "usage_cost_rub": [(no_cost, "fall back to the price card")],
    "usage_token_counts": [(tokens_as_strings, "price-card estimates would be wrong")],
    "cost_matches_price_card": [(cost_in_kopecks, "off by that ratio")],
    "usage_token_details": [
        (cached_as_string, "would not be priced at the cache price"),
        (more_thinking_than_output, "thinking tokens and their share of the cost would be unknown"),
    ],
    "stream_usage_last_chunk": [(no_stream_usage, "the last chunk has no `usage`")],
    "sse_comments": [(event_lines, "`event` lines")],
    "unknown_model_400": [
        (unknown_model_404, "not_found, not model_not_found"),
        (unknown_model_404_named, "the simulator sends 400"),
    ],
    "error_shape": [(error_as_detail, "a code inside would be missed")],
    "bad_key_401": [(bad_key_403, "forbidden, not auth")],
    "image_price": [(image_not_billed, "off by that ratio")],
    "generation_record": [(generation_disagrees, "not the billed amount")],
}


def plain_error_in_200(ev: Evidence) -> None:
    ev.replies["plain"] = ok(
        {"error": {"code": 502, "message": "Upstream provider returned an invalid response"}}
    )


def plain_error_as_json_string(ev: Evidence) -> None:
    inner = json.dumps({"error": {"code": 429, "message": "Provider rate limit exceeded"}})
    ev.replies["plain"] = ok({"error": inner})


def stream_error_event(ev: Evidence) -> None:
    error = {"id": "gen-2", "error": {"code": 502, "message": "Provider disconnected"}}
    ev.replies["stream"] = stream(
        delta("Re"), {**error, "choices": [{"delta": {}, "finish_reason": "error"}]}
    )


def out_of_credit(ev: Evidence) -> None:
    ev.replies["plain"] = ok({"error": {"code": 402, "message": "Insufficient credits"}}, 402)


SEEN: dict[str, tuple[Callable[[Evidence], None], str]] = {
    "error_in_200": (plain_error_in_200, "upstream_error"),
    "error_json_in_string": (plain_error_as_json_string, "rate_limit"),
    "error_in_stream": (stream_error_event, "upstream_error"),
    "out_of_credit_402": (out_of_credit, "out_of_credit"),
}


def test_every_quirk_has_a_case_here() -> None:
    assert set(BREAKS) | set(SEEN) == {q.name for q in QUIRKS}


@pytest.mark.parametrize(
    ("quirk", "breaker", "words"),
    [(quirk, breaker, words) for quirk, cases in BREAKS.items() for breaker, words in cases],
    ids=lambda v: getattr(v, "__name__", v) if callable(v) else None,
)
def test_one_break_is_reported_by_its_quirk(
    quirk: str, breaker: Callable[[Evidence], None], words: str
) -> None:
    evidence = good()
    breaker(evidence)
    findings = check_all(evidence)
    assert findings[quirk].status == "differs", findings[quirk]
    assert words in findings[quirk].detail


@pytest.mark.parametrize("quirk", sorted(SEEN))
def test_an_upstream_error_seen_is_recognised(quirk: str) -> None:
    breaker, error_class = SEEN[quirk]
    evidence = good()
    breaker(evidence)
    finding = check_all(evidence)[quirk]
    assert finding.status == "conforms" and error_class in finding.detail, finding


def test_breaks_that_only_remove_data_leave_other_quirks_alone() -> None:
    evidence = good()
    no_cost(evidence)
    findings = check_all(evidence)
    assert findings["cost_matches_price_card"].status == "not_seen"  # nothing to compare: not a second report
    assert findings["generation_record"].status == "conforms"


# --------------------------------------------------------------------------------------------
# Recognisers


def test_sse_event_skips_comments_and_other_fields() -> None:
    pending: list[str] = []
    lines = [": PROCESSING", "", "event: x", "id: 7", 'data: {"a":', "data:1}", "", "data: [DONE]", ""]
    events = [d for line in lines if (d := sse_event(line, pending)) is not None]
    assert events == ['{"a":\n1}', "[DONE]"]


@pytest.mark.parametrize(
    ("usage_value", "expected"),
    [({"cost": 0.0005}, 0.0005), ({"cost": "0.25"}, 0.25), ({"cost": 0}, 0.0), ({}, None),
     ({"cost": None}, None), ({"cost": "n/a"}, None), ({"cost": True}, None), (None, None),
     ({"cost": float("nan")}, None)],
)  # fmt: skip
def test_usage_cost(usage_value: Any, expected: float | None) -> None:
    assert usage_cost(usage_value) == expected


def test_parse_price() -> None:
    assert parse_price(1.8e-05, "p") == 1.8e-05
    assert parse_price("0.000059", "p") == 5.9e-05
    assert parse_price(None, "p") == 0.0 and parse_price(-1, "p") == 0.0
    with pytest.raises(ConfigError, match="pricing.prompt"):
        parse_price("free", "pricing.prompt")


def test_an_http_400_wrapping_402_is_out_of_credit() -> None:
    inner = json.dumps({"error": {"code": 402, "message": "Insufficient credits"}})
    assert (
        classify_http_error(400, {"error": {"message": inner, "code": 400}}).error_class
        is ErrorClass.OUT_OF_CREDIT
    )
    assert classify_http_error(400, "Model 'x' not found").error_class is ErrorClass.MODEL_NOT_FOUND
    assert (
        classify_http_error(400, {"error": {"message": "bad temperature"}}).error_class
        is ErrorClass.BAD_REQUEST
    )


def test_error_in_body_and_chunk() -> None:
    assert error_in_body({"choices": []}) is None
    found = error_in_body({"error": {"code": 502, "message": "upstream"}})
    assert found is not None and found.error_class is ErrorClass.UPSTREAM_ERROR and found.code == 502
    no_code = error_in_chunk({"error": {"message": "provider went away"}})
    assert no_code is not None and no_code.error_class is ErrorClass.STREAM_ERROR
    assert classify_payload({"code": 429, "message": "slow"}).error_class is ErrorClass.RATE_LIMIT


def test_unwrap_data() -> None:
    assert unwrap_data({"data": {"total_credits": 1}}) == {"total_credits": 1}
    assert unwrap_data({"total_credits": 1}) == {"total_credits": 1}
    assert unwrap_data([1]) == {"value": [1]}


def test_the_recognisers_each_quirk_names_are_what_evalkit_reads_the_router_with() -> None:
    import inspect

    import evalkit.client.call
    import evalkit.client.catalog
    import evalkit.client.dialect
    import evalkit.client.dialect.pricing
    import evalkit.client.failures
    import evalkit.client.sse
    import evalkit.doctor.conformance

    readers = (
        evalkit.client.call,
        evalkit.client.sse,
        evalkit.client.failures,
        evalkit.client.catalog,
        evalkit.client.dialect.pricing,
        evalkit.doctor.conformance,
    )
    calls = "".join(inspect.getsource(m) for m in readers)
    named = {f.__name__ for quirk in QUIRKS for f in quirk.recognisers}
    inner = inspect.getsource(evalkit.client.dialect.classify_http_error) + inspect.getsource(
        evalkit.client.dialect.classify_payload
    )
    unused = {name for name in named if f"{name}(" not in calls and f"{name}(" not in inner}
    assert not unused, unused
    assert len(named) >= 10


_KEYS = ["data", "id", "pricing", "prompt", "completion", "image", "architecture", "input_modalities",
         "context_length", "usage", "cost", "prompt_tokens", "completion_tokens", "choices", "finish_reason",
         "error", "code", "message", "total_credits", "total_usage", "total_cost", "detail"]  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    max_leaves=12,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    answers=st.dictionaries(
        st.sampled_from(PROBES), st.tuples(st.sampled_from([200, 400, 401, 402, 404, 500]), _JSON)
    ),
    streamed=st.lists(_JSON, max_size=4),
)
def test_no_answer_crashes_the_checks(answers: dict[str, tuple[int, Any]], streamed: list[Any]) -> None:
    evidence = good()
    for probe, (status, payload) in answers.items():
        evidence.replies[probe] = ok(payload, status)
    if streamed:
        evidence.replies["stream"] = stream(*[json.dumps(x) for x in streamed])
    findings = check_all(evidence)
    assert list(findings) == [q.name for q in QUIRKS]
    assert all(f.status in ("conforms", "differs", "not_seen") and f.detail for f in findings.values())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@settings(derandomize=True, max_examples=500, deadline=None)
@given(data=st.data())
def test_junk_anywhere_in_a_routerai_answer_crashes_no_check(data: st.DataObject) -> None:
    evidence = good()
    probe = data.draw(
        st.sampled_from(["models", "credits", "plain", "stream", "image", "generation", "bad_key"])
    )
    streamed = probe == "stream"
    payload = evidence.replies[probe].chunks() if streamed else _json(evidence, probe)
    path = data.draw(st.sampled_from(_paths(payload)))
    junk = data.draw(_JSON)
    if not path:
        payload = junk
    else:
        target = payload
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = junk
    if streamed:
        events = payload if isinstance(payload, list) else [payload]
        evidence.replies[probe] = stream(*[json.dumps(e) for e in events], "[DONE]")
    else:
        evidence.replies[probe] = ok(payload, evidence.replies[probe].status or 200)
    findings = [quirk.check(evidence) for quirk in QUIRKS]  # each check itself, without check_all's guard
    assert all(f.status in ("conforms", "differs", "not_seen") for f in findings)
