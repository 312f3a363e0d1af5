"""The simulator's wire format, parsed by the official openai SDK (sync and async, JSON and SSE)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from evalkit.sim import Faults, serve
from evalkit.sim.profiles import LLAMA_4_SCOUT, SMALL_FAST
from evalkit.task.spec import Sample, Task

KEY = "sk-test-simulator-key"
SCOUT = LLAMA_4_SCOUT.id
ARITH = Task(
    name="arith",
    family="qa",
    scorer="numeric",
    samples=[
        Sample(id=str(i), input=f"What is {i} + {i}?", target=str(2 * i), language="en") for i in range(40)
    ],
)
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serve(tasks=[ARITH], api_key=KEY, latency_scale=0, seed=1) as running:
        yield running


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60)


def ask(text: str = "What is 3 + 3?") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def raw(server: Any, path: str, body: bytes | None = None, key: str | None = KEY) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(server.base_url + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_non_streaming_completion_parses_with_router_usage(client: openai.OpenAI) -> None:
    response = client.chat.completions.with_raw_response.create(model=SCOUT, messages=ask(), seed=0)
    assert response.headers["X-Evalkit-Simulated"] == "1"
    completion = response.parse()
    assert completion.id.startswith("gen-")
    assert completion.model == SCOUT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    expected = usage.prompt_tokens * 18e-6 + usage.completion_tokens * 59e-6
    assert usage.cost == pytest.approx(expected)  # `cost` is an extra field the SDK keeps


def test_stream_matches_non_stream_and_ends_with_usage(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=SCOUT, messages=ask("What is 5 + 5?"), seed=3)
    chunks = list(
        client.chat.completions.create(
            model=SCOUT,
            messages=ask("What is 5 + 5?"),
            seed=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len(chunks) >= 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.choices[0].finish_reason == "stop"
    assert all(c.id == chunks[0].id and c.id.startswith("gen-") for c in chunks)


def test_raw_stream_opens_with_processing_comment_and_ends_with_done(server: Any) -> None:
    body = json.dumps({"model": SCOUT, "messages": ask(), "stream": True}).encode()
    status, headers, data = raw(server, "/chat/completions", body)
    text = data.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert text.startswith(": PROCESSING\n\n")
    assert text.endswith("data: [DONE]\n\n")
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    assert "usage" in events[-1] and isinstance(events[-1]["usage"]["cost"], float)
    assert all("usage" not in event for event in events[:-1])


def test_async_client_streams_concurrently(server: Any) -> None:
    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as aclient:

            async def one(i: int) -> str:
                stream = await aclient.chat.completions.create(
                    model=SMALL_FAST.id, messages=ask(f"What is {i} + {i}?"), stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            return await asyncio.gather(*(one(i) for i in range(20)))

    outputs = asyncio.run(main())
    assert all(output for output in outputs)
    assert len(set(outputs)) > 10  # answers are about different questions


def test_list_parts_with_images_are_billed_per_image(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "What is 7 + 7?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    one = client.chat.completions.create(model=SCOUT, messages=[{"role": "user", "content": parts}], seed=0)
    two = client.chat.completions.create(
        model=SCOUT, messages=[{"role": "user", "content": [*parts, parts[1]]}], seed=0
    )
    assert one.usage.prompt_tokens == two.usage.prompt_tokens
    assert two.usage.cost - one.usage.cost == pytest.approx(0.09114)
    text_only = client.chat.completions.create(model=SCOUT, messages=ask("What is 7 + 7?"), seed=0)
    assert (
        one.choices[0].message.content == text_only.choices[0].message.content
    )  # images do not change the key


def test_models_list_prices_in_rubles_per_token(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list().data}
    assert {SCOUT, "sim/small-fast", "sim/large-accurate", "sim/ru-tuned"} <= set(models)
    scout = models[SCOUT].model_dump()
    assert scout["pricing"]["prompt"] == pytest.approx(0.000018)
    assert scout["pricing"]["completion"] == pytest.approx(0.000059)
    assert scout["pricing"]["image"] == pytest.approx(0.09114)
    assert scout["context_length"] == 327680
    assert scout["architecture"]["input_modalities"] == ["text", "image"]
    assert scout["simulated"] is True
    assert models["sim/small-fast"].model_dump()["architecture"]["input_modalities"] == ["text"]


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_bad_or_missing_key_is_401(server: Any, key: str | None) -> None:
    status, _, body = raw(
        server, "/chat/completions", json.dumps({"model": SCOUT, "messages": ask()}).encode(), key
    )
    assert status == 401
    assert json.loads(body)["error"]["code"] == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).chat.completions.create(
            model=SCOUT, messages=ask()
        )


def test_any_key_is_accepted_when_none_was_set() -> None:
    with serve(latency_scale=0) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="anything", max_retries=0)
        assert client.chat.completions.create(model=SCOUT, messages=ask()).choices[0].message.content


def test_unknown_model_is_400_with_a_plain_string_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="no/such-model", messages=ask())
    assert caught.value.status_code == 400
    assert caught.value.body == "Model 'no/such-model' not found"


def test_images_to_a_text_only_model_are_404(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=SMALL_FAST.id, messages=[{"role": "user", "content": parts}])


def test_context_overflow_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.chat.completions.create(model=SMALL_FAST.id, messages=ask("word " * 200_000))


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="sim/large-accurate", messages=ask(), seed=0)
    cut = client.chat.completions.create(model="sim/large-accurate", messages=ask(), seed=0, max_tokens=5)
    assert full.choices[0].finish_reason == "stop" and full.usage.completion_tokens > 5
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens <= 5
    assert full.choices[0].message.content.startswith(cut.choices[0].message.content)


def test_credits_decrease_by_the_billed_cost_and_generation_lookup(
    server: Any, client: openai.OpenAI
) -> None:
    def credits() -> dict[str, float]:
        return json.loads(raw(server, "/credits")[2])["data"]

    before = credits()
    completion = client.chat.completions.create(model="sim/large-accurate", messages=ask("What is 9 + 9?"))
    after = credits()
    assert after["total_usage"] - before["total_usage"] == pytest.approx(completion.usage.cost)
    assert after["total_credits"] == before["total_credits"]
    status, _, body = raw(server, f"/generation?id={completion.id}")
    record = json.loads(body)["data"]
    assert status == 200 and record["id"] == completion.id
    assert record["total_cost"] == pytest.approx(completion.usage.cost)
    assert record["tokens_prompt"] == completion.usage.prompt_tokens
    assert record["tokens_completion"] == completion.usage.completion_tokens
    assert record["model"] == "sim/large-accurate" and record["latency"] >= 0
    assert raw(server, "/generation?id=gen-unknown")[0] == 404


def test_out_of_credit_is_402_until_restored() -> None:
    with serve(faults=Faults(credits=0.1), latency_scale=0) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key=running.api_key, max_retries=0)
        calls = 0
        with pytest.raises(openai.APIStatusError) as caught:  # each call costs ~0.025 ₽
            for calls in range(1, 10):  # noqa: B007
                client.chat.completions.create(model="sim/large-accurate", messages=ask())
        assert caught.value.status_code == 402 and "Insufficient credits" in caught.value.message
        assert calls >= 2
        assert 0 <= running.stats()["balance_rub"] < 0.03
        running.set_credits(5.0)
        client.chat.completions.create(model="sim/large-accurate", messages=ask())
        assert running.stats()["balance_rub"] < 5.0


def test_every_response_is_marked_simulated(server: Any) -> None:
    for path in ("/models", "/credits", "/generation?id=x", "/nowhere"):
        assert raw(server, path)[1].get("X-Evalkit-Simulated") == "1"


def test_answers_are_deterministic_per_seed(server: Any, client: openai.OpenAI) -> None:
    def answers(c: openai.OpenAI, seed: int) -> list[str]:
        return [
            c.chat.completions.create(model=SMALL_FAST.id, messages=ask(f"What is {i} + {i}?"), seed=seed)
            .choices[0]
            .message.content
            for i in range(30)
        ]

    assert answers(client, 0) == answers(client, 0)
    assert answers(client, 0) != answers(client, 1)  # the runner's seed = task seed + epoch
    with (
        serve(tasks=[ARITH], latency_scale=0, seed=1) as same,
        serve(tasks=[ARITH], latency_scale=0, seed=2) as other,
    ):
        same_client = openai.OpenAI(base_url=same.base_url, api_key="k", max_retries=0)
        other_client = openai.OpenAI(base_url=other.base_url, api_key="k", max_retries=0)
        assert answers(same_client, 0) == answers(client, 0)
        assert answers(other_client, 0) != answers(client, 0)


def test_unknown_prompt_gets_a_generic_reply(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=SCOUT, messages=ask("Tell me about penguins")).choices[0]
    assert "simulated" in reply.message.content and reply.finish_reason == "stop"


def test_request_log_records_body_hashes_and_outcomes(tmp_path: Any) -> None:
    log = tmp_path / "requests.jsonl"
    with serve(tasks=[ARITH], latency_scale=0, request_log=log, api_key=KEY) as running:
        bodies = [
            json.dumps({"model": SCOUT, "messages": ask(f"What is {i} + {i}?")}).encode() for i in range(3)
        ]
        for body in bodies:
            assert raw(running, "/chat/completions", body)[0] == 200
        raw(running, "/chat/completions", json.dumps({"model": "x/y", "messages": ask()}).encode())
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["body_sha256"] for line in lines[:3]] == [hashlib.sha256(b).hexdigest() for b in bodies]
    assert all(line["outcome"] == "ok" and line["completed"] and line["cost_rub"] > 0 for line in lines[:3])
    assert all(line["generation_id"].startswith("gen-") for line in lines[:3])
    assert [line["sample"] for line in lines[:3]] == ["arith/0", "arith/1", "arith/2"]
    assert lines[3]["outcome"] == "unknown_model" and lines[3]["status"] == 400 and not lines[3]["completed"]


def test_process_mode_serves_and_stops_cleanly() -> None:
    threads = threading.active_count()
    with serve(tasks=[ARITH], process=True, latency_scale=0, api_key=KEY, seed=1) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key=KEY, max_retries=0)
        reply = client.chat.completions.create(model=SCOUT, messages=ask("What is 3 + 3?"), seed=0)
        process = running._stopper._process
    with serve(tasks=[ARITH], latency_scale=0, seed=1) as in_thread:
        local = openai.OpenAI(base_url=in_thread.base_url, api_key="k", max_retries=0)
        same = local.chat.completions.create(model=SCOUT, messages=ask("What is 3 + 3?"), seed=0)
    assert reply.choices[0].message.content == same.choices[0].message.content
    assert process.poll() is not None
    assert threading.active_count() == threads


def test_cli_prints_the_url_first_and_stops_on_sigint() -> None:
    command = [sys.executable, "-m", "evalkit.sim", "--port", "0", "--latency-scale", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/v1")
        with urllib.request.urlopen(url + "/models", timeout=60) as response:
            assert json.loads(response.read())["data"]
        process.send_signal(subprocess.signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.communicate()


def test_cli_rejects_bad_faults_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evalkit.sim", "--faults", "rate_limit=2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("evalkit sim: --faults: rate_limit") and "Traceback" not in result.stderr


def _wait_for_held(server: Any, held: int) -> None:
    """Poll until `held` requests wait at the gate (the bound catches a hang, it decides nothing)."""
    for _ in range(30_000):
        if server.stats()["gate"]["held"] == held:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never {held} held: {server.stats()['gate']}")


def test_the_gate_holds_requests_after_the_nth_until_released() -> None:
    with serve(tasks=[ARITH], api_key=KEY, latency_scale=0) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key=KEY, max_retries=0, timeout=300)
        running.hold_after(2)
        for i in range(2):  # the passes
            client.chat.completions.create(model=SCOUT, messages=ask(f"What is {i} + {i}?"))
        answers: list[str | None] = []
        late = [
            threading.Thread(
                target=lambda: answers.append(
                    client.chat.completions.create(model=SCOUT, messages=ask()).choices[0].message.content
                )
            )
            for _ in range(3)
        ]
        for thread in late:
            thread.start()
        _wait_for_held(running, 3)
        stats = running.stats()
        assert answers == [] and stats["requests"] == 2, "a request after the 2nd got through"
        assert stats["gate"] == {"open": False, "passes_left": 0, "held": 3}
        running.release()
        for thread in late:
            thread.join(300)
        assert len(answers) == 3 and all(answers)
        assert running.stats()["gate"] == {"open": True, "passes_left": None, "held": 0}
        assert running.stats()["requests"] == 5


def test_a_held_request_whose_client_gives_up_leaves_the_gate_and_is_not_billed() -> None:
    with serve(tasks=[ARITH], api_key=KEY, latency_scale=0) as running:
        running.hold_after(0)
        impatient = openai.OpenAI(base_url=running.base_url, api_key=KEY, max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):  # held for good: the timeout is sure to fire
            impatient.chat.completions.create(model=SCOUT, messages=ask())
        _wait_for_held(running, 0)
        assert running.stats()["billed_rub"] == 0 and running.stats()["requests"] == 0
        running.release()


@pytest.mark.parametrize("body", [b"{}", b'{"hold_after": -1}', b'{"hold_after": "x"}', b"[1]"])
def test_a_bad_gate_command_is_400(server: Any, body: bytes) -> None:
    root = server.base_url.removesuffix("/api/v1")
    request = urllib.request.Request(
        root + "/sim/gate", data=body, headers={"Authorization": f"Bearer {KEY}"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert server.stats()["gate"]["open"]
