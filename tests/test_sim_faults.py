"""Fault injection: rates, shapes as the SDK sees them, determinism, and the request log.

How each fault surfaces through the official openai SDK (max_retries=0):
- rate_limit -> openai.RateLimitError (429; `Retry-After`, `retry-after-ms` or no hint);
- server_error -> openai.InternalServerError (500/502/503);
- error_in_200 -> no exception: a ChatCompletion whose fields are None and whose extra `error` holds
  the router's error (a dict, or a JSON string wrapping the upstream error); a *streaming* request
  gets the same JSON body and the SDK's stream yields no chunk at all;
- error_in_stream -> openai.APIError raised while iterating, after some content;
- drop_stream -> openai.APIConnectionError (mid-stream, or before any response);
- hang -> openai.APITimeoutError when the client's timeout is shorter than `hang_s`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import openai
import pytest

from evalkit.common.errors import ConfigError
from evalkit.sim import FAULT_KINDS, Faults, serve
from evalkit.sim.faults import draw_fault

MODEL = "sim/small-fast"


def ask(i: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"Request number {i}"}]


def client_for(server: Any, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, **options)


def test_parse_and_validate() -> None:
    faults = Faults.parse("rate_limit=0.1, drop_stream=0.01,credits=50,hang_s=2")
    assert (faults.rate_limit, faults.drop_stream, faults.credits, faults.hang_s) == (0.1, 0.01, 50.0, 2.0)
    assert Faults.parse(faults.to_text()) == faults
    with pytest.raises(ConfigError, match="rate_limit"):
        Faults.parse("rate_limit=1.5")
    with pytest.raises(ConfigError, match="add up to more than 1"):
        Faults.parse("rate_limit=0.6,server_error=0.6")
    with pytest.raises(ConfigError, match="name=value"):
        Faults.parse("rate_limit")
    with pytest.raises(ConfigError, match="explode"):
        Faults.parse("explode=0.1")


def test_draws_follow_the_rates_and_are_deterministic() -> None:
    faults = Faults(rate_limit=0.2, server_error=0.1, error_in_200=0.05, drop_stream=0.05)
    draws = [draw_fault(faults, 7, f"body{i}", 0).kind for i in range(4000)]
    counts = Counter(draws)
    assert counts["rate_limit"] / 4000 == pytest.approx(0.2, abs=0.03)
    assert counts["server_error"] / 4000 == pytest.approx(0.1, abs=0.02)
    assert counts["error_in_200"] / 4000 == pytest.approx(0.05, abs=0.015)
    assert counts[None] / 4000 == pytest.approx(0.6, abs=0.03)
    assert draws == [draw_fault(faults, 7, f"body{i}", 0).kind for i in range(4000)]
    assert draws != [draw_fault(faults, 8, f"body{i}", 0).kind for i in range(4000)]
    retried = [draw_fault(faults, 7, f"body{i}", 1).kind for i in range(4000)]
    assert retried != draws  # a retry of the same body gets a fresh draw


def test_rate_limits_carry_retry_hints_in_the_configured_shares() -> None:
    faults = Faults(rate_limit=1.0, retry_after_share=0.5, retry_after_s=2)
    with serve(faults=faults, latency_scale=0) as server:
        client = client_for(server)
        hints: Counter[str] = Counter()
        for i in range(300):
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(model=MODEL, messages=ask(i))
            headers = caught.value.response.headers
            if "retry-after" in headers:
                assert headers["retry-after"] == "2"
                hints["seconds"] += 1
            elif "retry-after-ms" in headers:
                assert headers["retry-after-ms"] == "2000"
                hints["ms"] += 1
            else:
                hints["none"] += 1
        assert caught.value.body["code"] == 429
    assert hints["seconds"] / 300 == pytest.approx(0.25, abs=0.08)
    assert hints["ms"] / 300 == pytest.approx(0.25, abs=0.08)
    assert hints["none"] / 300 == pytest.approx(0.5, abs=0.09)


def test_mixed_faults_over_a_few_hundred_requests(tmp_path: Any) -> None:
    faults = Faults(rate_limit=0.15, server_error=0.1, error_in_200=0.1, drop_stream=0.05)
    log = tmp_path / "log.jsonl"
    seen: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    with serve(faults=faults, latency_scale=0, request_log=log, seed=3) as server:
        client = client_for(server)
        for i in range(400):
            try:
                completion = client.chat.completions.create(model=MODEL, messages=ask(i))
            except openai.RateLimitError:
                seen["rate_limit"] += 1
            except openai.InternalServerError as exc:
                seen["server_error"] += 1
                statuses[exc.status_code] += 1
            except openai.APIConnectionError:
                seen["drop_stream"] += 1
            else:
                seen["ok" if completion.choices else "error_in_200"] += 1
        stats = server.stats()
    for kind, rate in [
        ("rate_limit", 0.15),
        ("server_error", 0.1),
        ("error_in_200", 0.1),
        ("drop_stream", 0.05),
    ]:
        assert seen[kind] / 400 == pytest.approx(rate, abs=0.05), kind
    assert set(statuses) <= {500, 502, 503} and len(statuses) >= 2
    assert stats["outcomes"] == {k: v for k, v in seen.items() if v}
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert Counter(line["outcome"] for line in lines) == Counter(stats["outcomes"])
    billed = [line for line in lines if line["cost_rub"] > 0]
    assert all(line["outcome"] == "ok" and line["completed"] for line in billed)
    assert len(billed) == seen["ok"]
    assert stats["billed_rub"] == pytest.approx(sum(line["cost_rub"] for line in billed))


def test_error_in_200_bodies_as_the_sdk_returns_them() -> None:
    with serve(faults=Faults(error_in_200=1.0), latency_scale=0) as server:
        client = client_for(server)
        errors = [client.chat.completions.create(model=MODEL, messages=ask(i)) for i in range(40)]
        stream = list(client.chat.completions.create(model=MODEL, messages=ask(99), stream=True))
        assert server.stats()["billed_rub"] == 0
    assert all(e.choices is None and e.usage is None for e in errors)
    kinds = Counter(type(e.error).__name__ for e in errors)  # the SDK keeps the unknown `error` field
    assert set(kinds) == {"str", "dict"}
    wrapped = next(e.error for e in errors if isinstance(e.error, str))
    assert json.loads(wrapped)["error"]["code"] == 429
    assert next(e.error for e in errors if isinstance(e.error, dict))["code"] == 502
    assert stream == []  # a JSON error body to a streaming request: the SDK yields nothing


def test_error_in_stream_raises_after_some_content() -> None:
    with serve(faults=Faults(error_in_stream=1.0), latency_scale=0) as server:
        client = client_for(server)
        received: list[str] = []
        for i in range(10):
            with pytest.raises(openai.APIError) as caught:
                for chunk in client.chat.completions.create(model=MODEL, messages=ask(i), stream=True):
                    received.append(chunk.choices[0].delta.content or "")
            assert caught.value.body["code"] == 502
        assert server.stats()["outcomes"] == {"error_in_stream": 10}
    assert any(received)


def test_dropped_streams_raise_connection_errors_and_are_not_billed() -> None:
    with serve(faults=Faults(drop_stream=1.0), latency_scale=0) as server:
        client = client_for(server)
        for i in range(10):
            with pytest.raises(openai.APIConnectionError):
                list(client.chat.completions.create(model=MODEL, messages=ask(i), stream=True))
            with pytest.raises(openai.APIConnectionError):
                client.chat.completions.create(model=MODEL, messages=ask(i))
        stats = server.stats()
    assert stats["outcomes"] == {"drop_stream": 20} and stats["billed_rub"] == 0


def test_hang_outlasts_the_client_timeout() -> None:
    with serve(faults=Faults(hang=1.0, hang_s=3), latency_scale=0) as server:
        client = client_for(server, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model=MODEL, messages=ask(0))


def test_a_hang_shorter_than_the_timeout_still_answers() -> None:
    with serve(faults=Faults(hang=1.0, hang_s=0.05), latency_scale=0) as server:
        completion = client_for(server, timeout=10).chat.completions.create(model=MODEL, messages=ask(0))
        assert completion.choices[0].message.content
        assert server.stats()["outcomes"] == {"hang": 1}


def test_fault_kinds_are_all_documented() -> None:
    assert set(FAULT_KINDS) == {
        n for n in Faults.model_fields if n not in {"hang_s", "credits"} and "retry" not in n
    }
