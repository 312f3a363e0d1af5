"""Where requests go and the key that pays for them: `Endpoint`. The key comes from the environment
(ROUTERAI_API_KEY, else OPENAI_API_KEY) and is never shown: not in repr, str, manifests or logs."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field

from evalkit.common.errors import ConfigError
from evalkit.common.redact import url_without_credentials

DEFAULT_BASE_URL = "https://routerai.ru/api/v1"
KEY_ENV_VARS = ("ROUTERAI_API_KEY", "OPENAI_API_KEY")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def check_env_name(value: str | None) -> str | None:
    """`value` when it can name an environment variable; the error never repeats it (it may be a key)."""
    if value is not None and not ENV_NAME.fullmatch(value):
        raise ValueError(_NOT_AN_ENV_NAME)
    return value


_NOT_AN_ENV_NAME = (
    "expected the NAME of an environment variable holding the key (letters, digits and _); "
    "the value given is not shown, in case it is the key itself"
)


@dataclass(frozen=True)
class Endpoint:
    """Where requests go and the key that pays for them. The key is never shown (repr, str, manifests)."""

    base_url: str
    api_key: str = field(repr=False)
    simulated: bool = False
    identity: str | None = None  # what its answers depend on, when not its URL (a simulator's seed)

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.safe_url()!r}, api_key='***', simulated={self.simulated})"

    __str__ = __repr__

    @classmethod
    def from_env(
        cls, base_url: str | None = None, api_key_env: str | None = None, *, required: bool = True
    ) -> Endpoint:
        """Base URL from the argument, else `EVALKIT_BASE_URL`, else RouterAI; key from the environment.

        `api_key_env` names the one variable to read instead of ROUTERAI_API_KEY / OPENAI_API_KEY.
        With `required=False` a missing key gives an Endpoint with an empty key (enough for a
        public `GET /models`); otherwise it is a ConfigError.
        """
        try:
            check_env_name(api_key_env)
        except ValueError as exc:
            raise ConfigError(str(exc), where="--api-key-env") from None
        url = base_url or os.environ.get("EVALKIT_BASE_URL") or DEFAULT_BASE_URL
        names = (api_key_env,) if api_key_env else KEY_ENV_VARS
        key = next((os.environ[n] for n in names if os.environ.get(n)), None)
        if key is None and not required:
            return cls(base_url=url, api_key="")
        if key is None:
            wanted = api_key_env or "ROUTERAI_API_KEY (or OPENAI_API_KEY)"
            raise ConfigError(
                f"no API key: set {wanted}, or use --sim to run on the bundled simulator",
                where="environment",
            )
        return cls(base_url=url, api_key=key)

    @functools.cached_property  # asked once per sample; urlsplit each time cost ~8 µs
    def cache_id(self) -> str:
        """What identifies this endpoint in response-cache keys: `identity` when given, else the key-free
        URL ("sim" for a simulator, whose port changes every run)."""
        if self.identity is not None:
            return self.identity
        return "sim" if self.simulated else self.safe_url()

    def safe_url(self) -> str:
        """`base_url` without userinfo, query or fragment, and with a key in its path masked: safe to
        write to manifests and logs."""
        return url_without_credentials(self.base_url, self.api_key)
