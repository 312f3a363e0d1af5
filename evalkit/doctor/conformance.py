"""Live conformance: a handful of tiny calls to the router, judged against the dialect's quirk table.

`check_live(endpoint)` asks `/models`, `/credits`, one plain and one streamed completion of a few
tokens, a call to an unknown model, a call with an invalid key, one image call when the model takes
images, and `/generation` for the plain call. Every request goes through the `openai` SDK's HTTP
client; the raw answers become `dialect.Evidence`, and `dialect.check_all` judges them. Paid calls
are reserved against their own ruble budget before they are sent (a call that does not fit is not
made), and what was spent is reported.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.client.dialect import (
    STREAM_OPTIONS,
    Evidence,
    Finding,
    Reply,
    check_all,
    usage_cost,
    usage_tokens,
)
from evalkit.runner.budget import Budget, BudgetExhausted

if TYPE_CHECKING:
    import openai

    from evalkit.client import Endpoint
    from evalkit.client.catalog import PriceCard

DEFAULT_MODEL = "meta-llama/llama-4-scout"
DEFAULT_BUDGET_RUB = 0.15
"""Llama 4 Scout's text calls cost about 0.001 ₽ and its image call 0.092 ₽ (91.14 ₽ per 1K images)."""
MAX_TOKENS = 5
PROMPT = "Reply with one word: ready."
IMAGE_PROMPT = "What colour is this square? One word."
IMAGE_TOKEN_BOUND = 1024
"""Prompt tokens a router may bill for one 16×16 image besides its per-image price (usually far fewer)."""
UNKNOWN_MODEL = "evalkit-doctor/no-such-model"
INVALID_KEY = "sk-evalkit-doctor-invalid-key"
NOT_SENT = "not sent: "
GENERATION_TRIES = 3
GENERATION_WAIT_S = 1.0
"""The router may record a generation a moment after the reply: `/generation` is asked again."""


@dataclass
class Call:
    """One paid probe: what the router billed and what the price card says."""

    probe: str
    status: int | None
    cost_rub: float | None
    estimated_rub: float | None


@dataclass
class LiveReport:
    """What `check_live` found, spent and skipped; `to_json` has no key in it."""

    base_url: str
    model: str
    budget_rub: float
    findings: dict[str, Finding] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    spent_rub: float = 0.0

    @property
    def differences(self) -> dict[str, Finding]:
        return {name: f for name, f in self.findings.items() if f.status == "differs"}

    @property
    def spent_estimated_rub(self) -> float:
        """The part of `spent_rub` that the router did not report (taken from the price card)."""
        return sum(c.estimated_rub or 0.0 for c in self.calls if c.cost_rub is None)

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "budget_rub": self.budget_rub,
            "spent_rub": self.spent_rub,
            "spent_estimated_rub": self.spent_estimated_rub,
            "calls": [vars(c) for c in self.calls],
            "skipped": self.skipped,
            "findings": {n: {"status": f.status, "detail": f.detail} for n, f in self.findings.items()},
        }


Sleep = Callable[[float], Awaitable[None]]


async def check_live(
    endpoint: Endpoint,
    *,
    model: str = DEFAULT_MODEL,
    budget_rub: float = DEFAULT_BUDGET_RUB,
    sleep: Sleep = asyncio.sleep,
) -> LiveReport:
    """Probe the router behind `endpoint` and judge every answer against `dialect.QUIRKS`."""
    from evalkit.client import Client

    report = LiveReport(endpoint.safe_url(), model, budget_rub)
    async with Client(endpoint, deadline_s=60.0) as client:
        probe = _Prober(client.sdk, model, Budget(budget_rub), report)
        evidence = await probe.gather(sleep)
    report.findings = check_all(evidence)
    report.spent_rub = probe.budget.spent_rub
    return report


class _Prober:
    def __init__(self, sdk: openai.AsyncOpenAI, model: str, budget: Budget, report: LiveReport) -> None:
        self.sdk = sdk
        self.model = model
        self.budget = budget
        self.report = report
        self.evidence = Evidence(model=model, bundled=_bundled_card(model))

    async def gather(self, sleep: Sleep) -> Evidence:
        replies = self.evidence.replies
        replies["models"] = await self._get("/models")
        replies["credits"] = await self._get("/credits")
        info = self.evidence.model_info()
        card = info.pricing if info is not None else self.evidence.bundled
        text = [{"role": "user", "content": PROMPT}]
        await self._paid("plain", text, card, stream=False)
        await self._paid("stream", text, card, stream=True)
        await self._refused("unknown_model", _body(UNKNOWN_MODEL, text, max_tokens=1), card)
        bad_key = self.sdk.with_options(api_key=INVALID_KEY)
        replies["bad_key"] = await self._post(
            _body(self.model, text, max_tokens=1), stream=False, sdk=bad_key
        )
        if info is not None and "image" in info.input_modalities:
            await self._paid("image", _image_messages(), card, stream=False, images=1)
        await self._generation(sleep)
        return self.evidence

    async def _paid(
        self,
        probe: str,
        messages: list[dict[str, Any]],
        card: PriceCard | None,
        *,
        stream: bool,
        images: int = 0,
    ) -> None:
        if card is None:
            self.report.skipped.append(
                f"{probe}: no price card for {self.model}, so the budget cannot be enforced"
            )
            return
        bound = _prompt_bound(messages) + images * IMAGE_TOKEN_BOUND
        worst = card.estimate(bound, MAX_TOKENS, images=images).total
        try:
            reservation = await self.budget.reserve(worst)
        except BudgetExhausted as exc:
            self.report.skipped.append(f"{probe}: {exc}")
            return
        reply = await self._post(_body(self.model, messages, max_tokens=MAX_TOKENS), stream=stream)
        self.evidence.replies[probe] = reply
        usage = self.evidence.usage(probe)
        cost = usage_cost(usage)
        tokens = usage_tokens(usage)
        estimate = card.estimate(*tokens, images=images).total if tokens is not None else None
        if tokens is None and (
            reply.status == 200 or (reply.failure and not reply.failure.startswith(NOT_SENT))
        ):
            estimate = worst  # it may have been billed without saying for what: count the worst case
        await self.budget.settle(reservation, cost, estimate)
        self.report.calls.append(Call(probe, reply.status, cost, estimate))

    async def _refused(self, probe: str, body: dict[str, Any], card: PriceCard | None) -> None:
        """A call a conforming router refuses unbilled; reserved all the same at the probed model's
        price, for a router that serves any model id."""
        worst = card.estimate(_prompt_bound(body["messages"]), body["max_tokens"]).total if card else 0.0
        try:
            reservation = await self.budget.reserve(worst)
        except BudgetExhausted as exc:
            self.report.skipped.append(f"{probe}: {exc}")
            return
        reply = self.evidence.replies[probe] = await self._post(body, stream=False)
        cost = usage_cost(self.evidence.usage(probe))
        await self.budget.settle(reservation, cost, 0.0)
        if cost:
            self.report.calls.append(Call(probe, reply.status, cost, None))

    async def _generation(self, sleep: Sleep) -> None:
        reply = self.evidence.ok("plain")
        data = reply.json() if reply else None
        generation_id = data.get("id") if isinstance(data, dict) else None
        if not generation_id:
            return
        for attempt in range(GENERATION_TRIES):
            found = await self._get("/generation", params={"id": generation_id})
            self.evidence.replies["generation"] = found
            if found.status != 404 or attempt == GENERATION_TRIES - 1:
                return
            await sleep(GENERATION_WAIT_S)

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Reply:
        import httpx2

        async def send() -> Any:
            options = {"params": params} if params else {}
            return await self.sdk.get(path, cast_to=httpx2.Response, options=options)  # type: ignore[arg-type]

        return await _exchange(send, stream=False)

    async def _post(
        self, body: dict[str, Any], *, stream: bool, sdk: openai.AsyncOpenAI | None = None
    ) -> Reply:
        import httpx2

        if stream:
            body = {**body, "stream": True, "stream_options": STREAM_OPTIONS}

        async def send() -> Any:
            return await (sdk or self.sdk).post(
                "/chat/completions", body=body, cast_to=httpx2.Response, stream=stream
            )

        return await _exchange(send, stream=stream)


async def _exchange(send: Callable[[], Awaitable[Any]], *, stream: bool) -> Reply:
    """One request; an HTTP error status is an answer like any other, a failed connection is not."""
    import openai

    try:
        response = await send()
    except openai.APIStatusError as exc:
        return Reply(status=exc.status_code, body=await _read(exc.response))
    except Exception as exc:  # no answer: say why in one line, and whether the request left at all
        prefix = NOT_SENT if _refused(exc) else ""
        return Reply(failure=f"{prefix}{type(exc).__name__}: {exc}"[:300])
    try:
        if stream and "json" not in response.headers.get("content-type", ""):
            lines = [line async for line in response.aiter_lines()]
            return Reply(status=response.status_code, lines=lines)
        return Reply(status=response.status_code, body=await response.aread())
    except Exception as exc:
        return Reply(
            status=response.status_code, failure=f"the answer was cut: {type(exc).__name__}: {exc}"[:300]
        )
    finally:
        await response.aclose()


def _refused(exc: BaseException) -> bool:
    """The connection was refused, so the request never reached a router that could bill it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if (
            isinstance(current, ConnectionRefusedError)
            or getattr(current, "errno", None) == errno.ECONNREFUSED
        ):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


async def _read(response: Any) -> bytes:
    try:
        return await response.aread()
    except Exception:  # a body already consumed or cut
        return b""


def _body(model: str, messages: list[dict[str, Any]], *, max_tokens: int) -> dict[str, Any]:
    return {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}


def _prompt_bound(messages: list[dict[str, Any]]) -> int:
    """An upper bound on prompt tokens: never more tokens than UTF-8 bytes, plus a template's."""
    total = 0
    for message in messages:
        content = message["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        total += 16 + sum(len(p.get("text", "").encode()) for p in parts if p.get("type") == "text")
    return total


def _image_messages() -> list[dict[str, Any]]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    parts = [{"type": "text", "text": IMAGE_PROMPT}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "user", "content": parts}]


def _bundled_card(model: str) -> PriceCard | None:
    from evalkit.client.catalog import bundled_catalog

    info = bundled_catalog().get(model)
    return info.pricing if info is not None else None
