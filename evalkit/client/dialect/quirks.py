"""The table of router quirks: each one once, with a name, what the router does in plain words, a
check that judges a live router's answers, and the recognisers the client reads it with.

A new quirk is one entry in `QUIRKS` and its case in `tests/test_dialect.py`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evalkit.client.dialect.evidence import Evidence, Finding, Reply
from evalkit.client.dialect.pricing import PriceCard
from evalkit.client.dialect.reasoning import cached_tokens, reasoning_tokens
from evalkit.client.dialect.recognise import (
    RouterError,
    classify_http_error,
    classify_payload,
    classify_status,
    classify_stream_payload,
    error_in_body,
    error_in_choice,
    error_in_chunk,
    parse_error_payload,
    parse_price,
    sse_event,
    unwrap_data,
    usage_cost,
    usage_tokens,
)
from evalkit.client.errors import ErrorClass


def _conforms(detail: str) -> Finding:
    return Finding("conforms", detail)


def _differs(detail: str) -> Finding:
    return Finding("differs", detail)


def _not_seen(detail: str) -> Finding:
    return Finding("not_seen", detail)


@dataclass(frozen=True)
class Quirk:
    """One thing the router does that evalkit relies on: `check` judges a live router's answers,
    `recognisers` are the functions of `recognise.py` that the client and the catalog read it with."""

    name: str
    description: str
    check: Callable[[Evidence], Finding]
    recognisers: tuple[Callable[..., Any], ...] = ()


# --------------------------------------------------------------------------------------------
# Checks, one per quirk


def _check_models_schema(ev: Evidence) -> Finding:
    reply = ev.ok("models")
    if reply is None:
        return _differs(
            f"GET /models did not answer 200 ({_said(ev.replies.get('models'))}): "
            "evalkit would fall back to its bundled prices"
        )
    data = reply.json()
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return _differs('GET /models is not {"data": [...]}: evalkit would fall back to its bundled prices')
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == ev.model), None)
    if entry is None:
        return _differs(f"{ev.model} is not in GET /models: a run on it would be refused as an unknown model")
    arch = entry.get("architecture")
    missing = [
        name
        for name, ok in (
            ("context_length", isinstance(entry.get("context_length"), int)),
            (
                "architecture.input_modalities",
                isinstance(arch, dict) and _strings(arch.get("input_modalities")),
            ),
            ("pricing", isinstance(entry.get("pricing"), dict)),
        )
        if not ok
    ]
    if missing:
        return _differs(
            f"the /models entry of {ev.model} lacks {', '.join(missing)}: evalkit would "
            "assume text-only input and unknown context or prices"
        )
    modalities = "+".join(arch["input_modalities"])
    return _conforms(
        f"{len(entries)} models; {ev.model}: context {entry['context_length']}, input {modalities}"
    )


_PRICE_FIELDS = ("prompt", "completion", "image", "input_cache_read")
_UNIT_RATIO = 20.0  # a price this many times off the card evalkit ships is another unit, not a price change


def _check_prices(ev: Evidence) -> Finding:
    reply = ev.ok("models")
    data = reply.json() if reply else None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return _not_seen("no model list to read prices from")
    strings = sorted(
        {
            f"{e.get('id')}: pricing.{name} = {e['pricing'][name]!r}"
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("pricing"), dict)
            for name in _PRICE_FIELDS
            if name in e["pricing"] and not _is_number(e["pricing"][name]) and e["pricing"][name] is not None
        }
    )
    if strings:
        shown = "; ".join(strings[:3]) + (f" (and {len(strings) - 3} more)" if len(strings) > 3 else "")
        return _differs(
            f"prices in /models are not JSON numbers ({shown}): evalkit reads numeric "
            "strings, but the router's price schema has changed; check the unit too"
        )
    info = ev.model_info()
    if info is None or ev.bundled is None:
        return _conforms("prices are JSON numbers (no bundled card to compare the unit with)")
    off = _unit_mismatch(info.pricing, ev.bundled)
    if off:
        return _differs(
            f"{ev.model}'s {off}: prices may now be in another unit (per 1K or 1M tokens); "
            "estimates and budget reservations would be off by that factor"
        )
    return _conforms(f"prices are JSON numbers in ₽ per token; {ev.model} matches the bundled card's unit")


def _unit_mismatch(live: PriceCard, bundled: PriceCard) -> str | None:
    for name in ("prompt", "completion", "image"):
        have, ship = getattr(live, name), getattr(bundled, name)
        if have > 0 and ship > 0 and not 1 / _UNIT_RATIO <= have / ship <= _UNIT_RATIO:
            return (
                f"{name} price is {have:g} ₽ where evalkit's bundled card says {ship:g} ₽ ({have / ship:g}×)"
            )
    return None


def _check_credits(ev: Evidence) -> Finding:
    reply = ev.ok("credits")
    if reply is None:
        return _differs(
            f"GET /credits did not answer 200 ({_said(ev.replies.get('credits'))}): "
            "evalkit cannot show the balance before a run"
        )
    data = reply.json()
    record = data.get("data") if isinstance(data, dict) else None
    if not isinstance(record, dict) or not all(
        _is_number(record.get(k)) for k in ("total_credits", "total_usage")
    ):
        return _differs(
            f'GET /credits is not {{"data": {{"total_credits": ₽, "total_usage": ₽}}}} '
            f"({_short(data)}): the balance cannot be read"
        )
    left = record["total_credits"] - record["total_usage"]
    return _conforms(
        f"balance {left:.4f} ₽ ({record['total_credits']:g} ₽ credited, {record['total_usage']:g} ₽ used)"
    )


def _check_usage_cost(ev: Evidence) -> Finding:
    seen, missing = [], []
    for probe, where in (("plain", "the plain reply"), ("stream", "the streamed reply")):
        usage = ev.usage(probe)
        if usage is None:
            continue  # no usage at all is another quirk's finding
        seen.append(where)
        if not _is_number(usage.get("cost")):
            missing.append(where + ("" if "cost" not in usage else f" (cost = {usage['cost']!r})"))
    if missing:
        return _differs(
            f"`usage.cost` missing or not a number in {' and '.join(missing)}: costs would "
            "fall back to the price card and be marked as estimates"
        )
    if not seen:
        return _not_seen("no reply with usage to read the cost from")
    return _conforms(f"`usage.cost` (₽) present in {' and '.join(seen)}")


def _check_usage_tokens(ev: Evidence) -> Finding:
    seen, wrong = [], []
    for probe in ("plain", "stream", "image"):
        usage = ev.usage(probe)
        if usage is None:
            continue
        seen.append(probe)
        if usage_tokens(usage) is None:
            counts = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
            wrong.append(f"{probe}: {_short(counts)}")
    if wrong:
        return _differs(
            f"usage token counts are not non-negative integers ({'; '.join(wrong)}): results would "
            "lack token counts, and price-card estimates would be wrong"
        )
    if not seen:
        return _not_seen("no reply with usage")
    return _conforms(f"integer prompt_tokens and completion_tokens in the {', '.join(seen)} replies")


_COST_TOLERANCE = 0.10  # relative; rounding of tiny costs and cache discounts stay well inside it
_COST_SLACK_RUB = 2e-6


def _check_cost_matches_card(ev: Evidence) -> Finding:
    info, usage = ev.model_info(), ev.usage("plain")
    cost, tokens = usage_cost(usage), usage_tokens(usage)
    if info is None or cost is None or tokens is None:
        return _not_seen("no plain reply with usage.cost, token counts and a /models price to compare")
    expected = info.pricing.estimate(*tokens, cached_tokens=cached_tokens(usage) or 0)
    return _compare_cost("the plain reply", cost, expected.total)


_DETAILS = (
    ("prompt_tokens_details", "cached_tokens", cached_tokens, 0, "cached prompt tokens would not be priced "
     "at the cache price, and what caching saved would be unknown"),
    ("completion_tokens_details", "reasoning_tokens", reasoning_tokens, 1, "thinking tokens and their "
     "share of the cost would be unknown"),
)  # fmt: skip


def _check_usage_details(ev: Evidence) -> Finding:
    seen, wrong = [], []
    for probe in ("plain", "stream"):
        usage, tokens = ev.usage(probe), usage_tokens(ev.usage(probe))
        for group, name, read, side, consequence in _DETAILS:
            details = usage.get(group) if isinstance(usage, dict) else None
            if not isinstance(details, dict) or name not in details:
                continue
            seen.append(f"{probe} {name}")
            value = read(usage)
            if value is None or (tokens is not None and value > tokens[side]):
                wrong.append(f"{probe}: {group}.{name} = {_short(details.get(name))} ({consequence})")
    if wrong:
        return _differs("; ".join(wrong))
    if not seen:
        return _not_seen("no usage with prompt_tokens_details.cached_tokens or "
                         "completion_tokens_details.reasoning_tokens")  # fmt: skip
    return _conforms(f"integer token details within the totals: {', '.join(seen)}")


def _compare_cost(what: str, cost: float, expected: float) -> Finding:
    if abs(cost - expected) <= max(_COST_TOLERANCE * expected, _COST_SLACK_RUB):
        return _conforms(f"{what} cost {cost:.6g} ₽; the price card says {expected:.6g} ₽")
    return _differs(
        f"{what} cost {cost:.6g} ₽ but the /models price card gives {expected:.6g} ₽: "
        "estimates and budget reservations would be off by that ratio"
    )


def _check_stream_usage(ev: Evidence) -> Finding:
    reply = ev.ok("stream")
    if reply is None:
        return _not_seen(f"the streamed call did not succeed ({_said(ev.replies.get('stream'))})")
    chunks = reply.chunks()
    if not chunks:
        return _differs("the stream had no JSON chunks: evalkit would record a broken stream")
    last = chunks[-1]
    problems = []
    if not isinstance(last.get("usage"), dict):
        problems.append(
            "the last chunk has no `usage`: token counts would be missing and costs "
            "would fall back to the price card"
        )
    elif not any(isinstance(c, dict) and c.get("finish_reason") for c in last.get("choices") or []):
        problems.append(
            "the usage chunk does not repeat finish_reason (harmless to evalkit, "
            "which takes it from any chunk; the simulator should follow)"
        )
    if "[DONE]" not in [e.strip() for e in reply.events()]:
        problems.append("the stream does not end with `data: [DONE]` (evalkit then relies on finish_reason)")
    if problems:
        return _differs("; ".join(problems))
    return _conforms(f"{len(chunks)} chunks; the last carries usage and repeats finish_reason; then [DONE]")


def _check_sse_comments(ev: Evidence) -> Finding:
    reply = ev.ok("stream")
    if reply is None or reply.lines is None:
        return _not_seen("no stream to read")
    comments = [line for line in reply.lines if line.startswith(":")]
    other = sorted(
        {line.partition(":")[0] for line in reply.lines if line and not line.startswith(":")} - {"data"}
    )
    if other:
        return _differs(
            f"the stream has `{'`, `'.join(other)}` lines, which evalkit ignores: "
            "an error or data sent that way would be missed"
        )
    if comments:
        return _conforms(
            f"{len(comments)} comment line(s) such as {comments[0]!r}, skipped; TTFT is taken at the first content"
        )
    return _conforms("no comment lines this time (the router may send `: PROCESSING` while the model starts)")


def _check_unknown_model(ev: Evidence) -> Finding:
    reply = ev.replies.get("unknown_model")
    if reply is None or reply.failure or reply.status is None:
        return _not_seen(f"the call to an unknown model got no answer ({_said(reply)})")
    if reply.status == 200 and not (isinstance(reply.json(), dict) and reply.json().get("error")):
        return _differs("a call to an unknown model succeeded: a typo in a model id would not be caught")
    found = _http_error(reply)
    if found.error_class is ErrorClass.MODEL_NOT_FOUND and reply.status == 400:
        return _conforms(f"HTTP 400, read as {found.error_class} (that model stops, the run goes on)")
    if found.error_class is ErrorClass.MODEL_NOT_FOUND:
        return _differs(
            f"an unknown model gives HTTP {reply.status}, not 400 (harmless: evalkit still reads it as "
            "model_not_found; the simulator sends 400 and should follow)"
        )
    return _differs(
        f"an unknown model gives HTTP {reply.status} ({_short(reply.body)}), which evalkit "
        f"reads as {found.error_class}, not model_not_found"
    )


def _check_error_shape(ev: Evidence) -> Finding:
    shapes = []
    for probe in ("unknown_model", "bad_key"):
        reply = ev.replies.get(probe)
        if reply is None or reply.status in (None, 200):
            continue
        data = reply.json()
        error = data.get("error") if isinstance(data, dict) else None
        if not (
            isinstance(error, str) or (isinstance(error, dict) and isinstance(error.get("message"), str))
        ):
            shapes.append(f"{probe}: {_short(reply.body)}")
    if shapes:
        return _differs(
            'error bodies are not {"error": {"code", "message"}} or {"error": "…"} ('
            + "; ".join(shapes)
            + "): evalkit falls back to the status and the raw text, "
            "so a code inside would be missed"
        )
    if not any(
        ev.replies.get(p) is not None and ev.replies[p].status not in (None, 200)
        for p in ("unknown_model", "bad_key")
    ):
        return _not_seen("no error body seen")
    return _conforms('error bodies are {"error": …}')


def _check_bad_key(ev: Evidence) -> Finding:
    reply = ev.replies.get("bad_key")
    if reply is None or reply.failure or reply.status is None:
        return _not_seen(f"the call with an invalid key got no answer ({_said(reply)})")
    found = _http_error(reply)
    if reply.status == 401 and found.error_class is ErrorClass.AUTH:
        return _conforms("an invalid key gives HTTP 401, read as auth (the run stops at once)")
    return _differs(
        f"an invalid key gives HTTP {reply.status} ({_short(reply.body)}), which evalkit reads "
        f"as {found.error_class}, not auth: a bad key might not stop a run"
    )


def _seen_in_replies(ev: Evidence, match: Callable[[Reply], RouterError | None], what: str) -> Finding:
    for probe, reply in ev.replies.items():
        if reply.status == 200 and (found := match(reply)) is not None:
            return _conforms(f"seen on the {probe} call, read as {found.error_class}")
    return _not_seen(f"{what} happen only when an upstream provider fails; none did")


def _error_in_200(reply: Reply) -> RouterError | None:
    data = reply.json() if reply.lines is None else None
    return error_in_body(data) if isinstance(data, dict) else None


def _error_in_stream(reply: Reply) -> RouterError | None:
    for chunk in reply.chunks() if reply.lines is not None else []:
        if (found := error_in_chunk(chunk)) is not None:
            return found
    return None


def _error_as_json_string(reply: Reply) -> RouterError | None:
    data = reply.json()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str) and error.strip()[:1] == "{":
        return classify_payload(error)
    return None


def _check_out_of_credit(ev: Evidence) -> Finding:
    for probe, reply in ev.replies.items():
        if reply.status == 402:
            found = _http_error(reply)
            if found.error_class is ErrorClass.OUT_OF_CREDIT:
                return _conforms(f"seen on the {probe} call, read as out_of_credit")
            return _differs(f"HTTP 402 read as {found.error_class}, not out_of_credit")
    return _not_seen("the doctor does not spend the balance to see it")


def _check_image_price(ev: Evidence) -> Finding:
    info = ev.model_info()
    if info is None or "image" not in info.input_modalities:
        return _not_seen(f"{ev.model} takes no images")
    usage = ev.usage("image")
    cost, tokens = usage_cost(usage), usage_tokens(usage)
    if cost is None or tokens is None:
        return _not_seen(
            f"no image reply with usage.cost and token counts ({_said(ev.replies.get('image'))})"
        )
    expected = info.pricing.estimate(*tokens, images=1)
    return _compare_cost("one image", cost, expected.total)


def _check_generation(ev: Evidence) -> Finding:
    reply = ev.replies.get("generation")
    if reply is None:
        return _not_seen("no generation id to look up")
    if reply.status != 200:
        return _differs(f"GET /generation gave {_said(reply)}: the router's record of a call cannot be read")
    record = reply.json()
    record = record.get("data") if isinstance(record, dict) else None
    if not isinstance(record, dict) or not _is_number(record.get("total_cost")):
        return _differs(f'GET /generation is not {{"data": {{"total_cost": ₽, …}}}} ({_short(reply.body)})')
    cost = usage_cost(ev.usage("plain"))
    if cost is not None and abs(record["total_cost"] - cost) > max(1e-9, 1e-6 * cost):
        return _differs(
            f"GET /generation says {record['total_cost']:.6g} ₽ but the reply's usage.cost "
            f"was {cost:.6g} ₽: one of them is not the billed amount"
        )
    return _conforms(
        f"total_cost {record['total_cost']:.6g} ₽" + (", equal to usage.cost" if cost is not None else "")
    )


def _http_error(reply: Reply) -> RouterError:
    data = reply.json()
    payload = data if data is not None else reply.body.decode("utf-8", "replace")
    if reply.status == 200 and isinstance(data, dict) and data.get("error"):
        return classify_payload(data["error"])
    return classify_http_error(reply.status or 0, payload)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _said(reply: Reply | None) -> str:
    if reply is None:
        return "not asked"
    if reply.failure:
        return reply.failure
    return f"HTTP {reply.status}: {_short(reply.body)}"


def _short(value: Any, limit: int = 160) -> str:
    text = (
        value.decode("utf-8", "replace")
        if isinstance(value, bytes)
        else json.dumps(value, ensure_ascii=False)
        if not isinstance(value, str)
        else value
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# The table

QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        "models_schema",
        'GET /models answers {"data": [...]}; each model has an id, context_length, '
        "architecture.input_modalities and pricing.",
        _check_models_schema,
    ),
    Quirk(
        "prices_rub_per_token",
        "Prices in /models are JSON numbers in ₽ per token (₽ per image for `image`), not strings "
        "and not per 1M tokens.",
        _check_prices,
        (parse_price,),
    ),
    Quirk(
        "credits",
        'GET /credits answers {"data": {"total_credits": ₽, "total_usage": ₽}}.',
        _check_credits,
        (unwrap_data,),
    ),
    Quirk(
        "usage_cost_rub",
        "Every completed reply carries `usage.cost`: what the call was billed, in ₽, as a JSON number "
        "(in the last chunk of a stream).",
        _check_usage_cost,
        (usage_cost,),
    ),
    Quirk(
        "usage_token_counts",
        "`usage.prompt_tokens` and `usage.completion_tokens` are integers.",
        _check_usage_tokens,
        (usage_tokens,),
    ),
    Quirk(
        "usage_token_details",
        "`usage.prompt_tokens_details.cached_tokens` (prompt tokens read from the cache, billed at "
        "`input_cache_read`) and `usage.completion_tokens_details.reasoning_tokens` (thinking, billed as "
        "output and counted in completion_tokens) are integers within the totals.",
        _check_usage_details,
        (cached_tokens, reasoning_tokens),
    ),
    Quirk(
        "cost_matches_price_card",
        "`usage.cost` equals the /models price card applied to the reply's token counts.",
        _check_cost_matches_card,
    ),
    Quirk(
        "stream_usage_last_chunk",
        "With stream_options.include_usage, the last chunk of a stream carries the usage and repeats "
        "finish_reason; `data: [DONE]` follows.",
        _check_stream_usage,
    ),
    Quirk(
        "sse_comments",
        "A stream may hold SSE comment lines (`: PROCESSING`) while the model starts; they are skipped, "
        "and TTFT is taken at the first content, not at the headers.",
        _check_sse_comments,
        (sse_event,),
    ),
    Quirk(
        "unknown_model_400",
        "A call to a model the router does not know gives HTTP 400 whose message says the model was not "
        "found: model_not_found, which stops that model only.",
        _check_unknown_model,
        (classify_http_error, classify_status),
    ),
    Quirk(
        "error_shape",
        'Error bodies are {"error": {"code": n, "message": "…"}} or {"error": "…"}.',
        _check_error_shape,
        (parse_error_payload,),
    ),
    Quirk(
        "bad_key_401",
        "An invalid key gives HTTP 401: auth, which stops the run.",
        _check_bad_key,
        (classify_http_error,),
    ),
    Quirk(
        "out_of_credit_402",
        "HTTP 402 means the balance is spent: out_of_credit, which stops the run so a resume can finish "
        "it after a top-up.",
        _check_out_of_credit,
        (classify_http_error,),
    ),
    Quirk(
        "error_in_200",
        'An upstream failure may come back as HTTP 200 whose body is {"error": …} instead of a '
        "completion; it is an error, never an answer.",
        lambda ev: _seen_in_replies(ev, _error_in_200, "errors inside HTTP 200"),
        (error_in_body, error_in_choice),
    ),
    Quirk(
        "error_json_in_string",
        "The `error` may be a string holding JSON with the real code inside (e.g. an upstream 429); "
        "the inner code decides the class.",
        lambda ev: _seen_in_replies(ev, _error_as_json_string, "errors wrapped as JSON strings"),
        (parse_error_payload, classify_payload),
    ),
    Quirk(
        "error_in_stream",
        'A stream may end with a chunk holding `error` and finish_reason "error"; its usage still '
        "counts, and the sample is retried when the error has no code or a retryable one.",
        lambda ev: _seen_in_replies(ev, _error_in_stream, "errors inside a stream"),
        (error_in_chunk, classify_stream_payload),
    ),
    Quirk(
        "image_price",
        "Each input image is billed at the model's pricing.image ₽, on top of its tokens.",
        _check_image_price,
    ),
    Quirk(
        "generation_record",
        'GET /generation?id=<reply id> answers {"data": {"total_cost": ₽, …}}, the same amount as the '
        "reply's usage.cost.",
        _check_generation,
        (unwrap_data,),
    ),
)


def check_all(evidence: Evidence) -> dict[str, Finding]:
    """Every quirk's finding, by quirk name, in table order. An answer so far from the dialect that a
    check cannot even read it is that quirk's difference, never a crash of the doctor."""
    return {quirk.name: _judge(quirk, evidence) for quirk in QUIRKS}


def _judge(quirk: Quirk, evidence: Evidence) -> Finding:
    try:
        return quirk.check(evidence)
    except Exception as exc:  # a router's answer of a shape no check foresaw
        return _differs(f"the answer could not be read as this quirk assumes ({type(exc).__name__}: {exc})")
