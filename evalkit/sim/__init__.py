"""An offline, RouterAI-faithful, OpenAI-compatible router: the default endpoint of `evalkit demo` and
the test double of every end-to-end test.

    with evalkit.sim.serve(tasks=[task], faults="rate_limit=0.05", latency_scale=0) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)

Routes (under `/api/v1`): `POST /chat/completions` (JSON and SSE), `GET /models`, `GET /credits`,
`GET /generation?id=`; admin: `POST /sim/credits`, `POST /sim/gate`
(hold requests after the Nth until released: a test hook), `GET /sim/stats`. Every response carries
`X-Evalkit-Simulated: 1`; every `/models` entry has `"simulated": true`.
Models: see `evalkit.sim.profiles` (`meta-llama/llama-4-scout`, `sim/small-fast`, `sim/large-accurate`,
`sim/ru-tuned`, `sim/reasoner`, `sim/thinker`, and the judges `sim/judge`, `sim/judge-biased`; judge
prompts get a verdict from any model with a `JudgeProfile`: `evalkit.sim.judge`).
"""

from __future__ import annotations

from typing import Any

KEY_ENV = "EVALKIT_SIM_API_KEY"  # the only key a simulator process accepts, when set

_EXPORTS = {
    "FAULT_KINDS": "evalkit.sim.faults",
    "Faults": "evalkit.sim.faults",
    "DEFAULT_MODELS": "evalkit.sim.profiles",
    "Latency": "evalkit.sim.profiles",
    "SimModel": "evalkit.sim.profiles",
    "SimServer": "evalkit.sim.server",
    "serve": "evalkit.sim.server",
}

__all__ = ["DEMO_MODELS", "KEY_ENV", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    """Load the server only when used, so `evalkit --help` and `import evalkit.sim.command` stay fast."""
    if name == "DEMO_MODELS":
        from evalkit.sim.profiles import DEFAULT_MODELS

        return tuple(model.id for model in DEFAULT_MODELS)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit.sim' has no attribute {name!r}")
    from evalkit.common.lazy import load

    return load(f"{module}:{name}")
