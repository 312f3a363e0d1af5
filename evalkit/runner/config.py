"""Run options: validated once, recorded in the manifest, reused on resume."""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalkit.client.endpoint import check_env_name
from evalkit.common.clock import SYSTEM_CLOCK
from evalkit.common.errors import ConfigError
from evalkit.common.redact import url_without_credentials

DEFAULT_CONCURRENCY = 32
Transport = Literal["aiohttp", "httpx"]
Phase = Literal["all", "generate"]
# a run id names one folder directly inside the results folder: no separators, no "..", no hidden or absolute names
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# an environment variable's name; anything else given as one may be the key itself, so it is never shown


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class ModelRoute(BaseModel):
    """Where one model is served when it is not the run's default endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key_env: str | None = None

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return check_env_name(value)


def check_run_id(value: str | None) -> str | None:
    if value is not None and (not RUN_ID.fullmatch(value) or ".." in value or _not_portable(value)):
        raise ValueError(
            f"run id {value[:80]!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit and not ending with '.', and not a device name such as "
            "CON or NUL (it names a folder inside the results folder)"
        )
    return value


def _not_portable(run_id: str) -> bool:
    """Names Windows (and SMB shares) cannot keep apart: `abc.` is the folder `abc`, `nul.x` a device."""
    return run_id.endswith(".") or run_id.split(".")[0].upper() in _DEVICE_NAMES


_DEVICE_NAMES = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}


# what decides which units a run holds; a resume keeps what was saved and refuses another value
_SELECTION = ("limit", "limit_per_language", "languages", "seed", "epochs", "shard")


class RunConfig(BaseModel):
    """Everything that decides what a run sends. The key is not here: it stays in the Endpoint.

    tasks: task names (looked up in tasks/), YAML paths, or Task objects.
    models: model ids as the router names them; `id@effort=low,high` runs one variant per effort.
    limit / limit_per_language / languages / seed: which samples (seed shuffles before limiting).
    epochs: repeats of every sample (pass@k, variance); each epoch sends `seed + epoch`.
    concurrency: most requests in flight; lowered automatically on sustained 429s.
    deadline_s / max_attempts / retry_*: a hard limit per attempt, and the bounds of retries.
    budget_rub: a hard ceiling in ₽ for the whole run, resumed parts included.
    sim: run on the bundled router simulator (no key, no network).
    base_url / api_key_env / model_routes: the default endpoint, and per-model overrides of it.
    out / run_id / resume / retry_errors / force: where results go and how to continue a run.
    cache: reuse recorded responses of identical requests (no request is paid twice).
    phase: "all" (ask and score) or "generate" (record responses only; `evalkit score RUN` scores them).
    shard: "I/N" runs only the I-th of N disjoint parts of the samples (`evalkit merge` joins them).
    executor: "local" (this process), "ray" (a Ray cluster found as `ray.init()` finds it) or
        "ray://HOST:PORT" (a Ray client address).
    clock: the time that retries, backoff, the limiter and deadlines read (virtual in tests).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    tasks: list[Any] = Field(default_factory=list, exclude=True)
    models: list[str]
    limit: int | None = Field(default=None, gt=0)
    limit_per_language: int | None = Field(default=None, gt=0)
    languages: list[str] | None = None
    seed: int | None = None
    epochs: int = Field(default=1, ge=1)
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=4096)
    budget_rub: float | None = Field(default=None, ge=0)
    sim: bool = False
    sim_seed: int = 0
    sim_latency_scale: float = Field(default=1.0, ge=0)
    sim_faults: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    model_routes: dict[str, ModelRoute] = Field(default_factory=dict)
    stream: bool = True
    transport: Transport = "aiohttp"
    deadline_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    retry_max_total_s: float = Field(default=900.0, gt=0)
    retry_base_delay_s: float = Field(default=1.0, ge=0)
    out: str = "results"
    run_id: str | None = None
    resume: str | None = None
    retry_errors: bool = False
    force: bool = False
    cache: bool = True
    phase: Phase = "all"
    shard: str | None = None
    executor: str = "local"
    progress: Any = Field(default=True, exclude=True)
    clock: Any = Field(default=SYSTEM_CLOCK, exclude=True)  # evalkit.common.clock.ManualClock in tests

    @field_validator("models")
    @classmethod
    def _models_named(cls, value: list[str]) -> list[str]:
        if any(not m or not m.strip() for m in value):
            raise ValueError("model ids must not be empty")
        from evalkit.client.variants import expand_models

        return expand_models(value)  # `id@effort=low,high`: one model per setting

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return check_env_name(value)

    @field_validator("run_id", "resume")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        return check_run_id(value)

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        from evalkit.runner.partition import parse_shard

        return None if value is None else str(parse_shard(value))  # " 1/2 " is recorded as "1/2"

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        if value not in ("local", "ray") and not value.startswith("ray://"):
            raise ValueError(f"executor {value[:80]!r}: expected local, ray or ray://HOST:PORT")
        return value

    @field_validator("model_routes", mode="before")
    @classmethod
    def _routes_from_text(cls, value: Any) -> Any:
        """Accept the CLI's `MODEL=URL[,KEY_ENV]` strings as well as mappings."""
        if not isinstance(value, (list, tuple)):
            return value
        routes: dict[str, dict[str, str | None]] = {}
        for number, item in enumerate(value, 1):
            model, sep, rest = str(item).partition("=")
            if not sep or not model or not rest:  # not echoed: a key pasted here must not be printed
                raise ValueError(f"route {number}: expected MODEL=BASE_URL[,KEY_ENV]")
            url, _, key_env = rest.partition(",")
            routes[model] = {"base_url": url or None, "api_key_env": key_env or None}
        return routes

    @classmethod
    def build(cls, **options: Any) -> RunConfig:
        options = {k: v for k, v in options.items() if v is not None}  # unset: `model_fields_set` says so
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid run options: {problems}") from None

    def resumed_from(self, saved: RunConfig) -> RunConfig:
        """The saved run's options, with what may change between sessions taken from `self`.

        What decides the samples and requests (tasks, models, limits, seed, generation) stays as saved;
        where results go, how fast, how much more may be spent and where the router lives may change,
        but only when given now (`model_fields_set`: `build` drops options left as None).
        """
        given = self.model_fields_set
        for name in _SELECTION:  # which units the run holds: given again, it must say the same
            if name in given and getattr(self, name) != getattr(saved, name):
                raise ConfigError(
                    f"run {self.resume} was started with {name} {getattr(saved, name)!r}, not "
                    f"{getattr(self, name)!r}: a resume finishes the run it started; start a new run for "
                    "another selection"
                )
        always = {"resume", "retry_errors", "progress", "clock", "force", "out", "phase", "executor"}
        if_given = {"budget_rub", "concurrency", "api_key_env", "base_url"}
        update = {name: getattr(self, name) for name in always | (if_given & given)}
        update["run_id"] = self.resume
        return saved.model_copy(update=update)

    def recorded(self) -> dict[str, Any]:
        """The options as written into the manifest (no secrets, no live objects)."""
        data = self.model_dump(mode="json")
        routes = (data.get("model_routes") or {}).values()
        keys = [
            os.environ.get(name or "", "")
            for name in [data.get("api_key_env")] + [r.get("api_key_env") for r in routes]
        ]
        data["base_url"] = _without_credentials(data.get("base_url"), keys)
        for route in routes:
            route["base_url"] = _without_credentials(route.get("base_url"), keys)
        return data


def _without_credentials(url: str | None, keys: list[str]) -> str | None:
    return url_without_credentials(url, *keys) if url else url
