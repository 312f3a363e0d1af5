"""What a live router answered to the doctor's probes (`Evidence`), and a check's verdict on it (`Finding`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from evalkit.client.dialect.pricing import ModelInfo, PriceCard, read_models
from evalkit.client.dialect.recognise import sse_event
from evalkit.common.errors import ConfigError

PROBES = ("models", "credits", "plain", "stream", "unknown_model", "bad_key", "image", "generation")
"""The doctor's requests, by name: see `evalkit/doctor/conformance.py`."""


@dataclass
class Reply:
    """One raw answer. `lines` is set for an event stream; `failure` when no answer came."""

    status: int | None = None
    body: bytes = b""
    lines: list[str] | None = None
    failure: str | None = None

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def events(self) -> list[str]:
        """The data of each event of a stream, read the way the client reads it."""
        pending: list[str] = []
        found = [d for line in self.lines or [] if (d := sse_event(line, pending)) is not None]
        return found + (["\n".join(pending)] if pending else [])

    def chunks(self) -> list[dict[str, Any]]:
        """The JSON objects of a stream's events ([DONE] and non-JSON events left out)."""
        found = []
        for data in self.events():
            try:
                value = json.loads(data)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
        return found


@dataclass
class Evidence:
    """Everything the doctor's probes got back, by probe name (a probe not made is absent)."""

    model: str
    replies: dict[str, Reply] = field(default_factory=dict)
    bundled: PriceCard | None = None  # the price card evalkit ships for `model`, if any

    def ok(self, probe: str) -> Reply | None:
        """The probe's reply when it was an HTTP 200 with a JSON or stream body."""
        reply = self.replies.get(probe)
        return reply if reply is not None and reply.status == 200 and reply.failure is None else None

    def model_info(self) -> ModelInfo | None:
        """The model's entry in the live `/models`, as evalkit reads it."""
        reply = self.ok("models")
        try:
            models = read_models(reply.json() if reply else None)
        except (ConfigError, ValueError, TypeError, AttributeError):  # a catalog evalkit cannot read
            return None
        return models.get(self.model)

    def usage(self, probe: str) -> dict[str, Any] | None:
        """The usage of a plain reply, or of the last stream chunk that has one."""
        reply = self.ok(probe)
        if reply is None:
            return None
        if reply.lines is not None:
            found = [c["usage"] for c in reply.chunks() if isinstance(c.get("usage"), dict)]
            return found[-1] if found else None
        data = reply.json()
        usage = data.get("usage") if isinstance(data, dict) else None
        return usage if isinstance(usage, dict) else None


Status = Literal["conforms", "differs", "not_seen"]


@dataclass(frozen=True)
class Finding:
    """A check's verdict: `differs` says in plain words what evalkit would then get wrong."""

    status: Status
    detail: str
