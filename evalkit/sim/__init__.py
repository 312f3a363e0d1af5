"""An offline, RouterAI-faithful, OpenAI-compatible router: the default endpoint of `evalkit demo` and
the test double of every end-to-end test.

    with evalkit.sim.serve(tasks=[task], faults="rate_limit=0.05", latency_scale=0) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)

Routes (under `/api/v1`): `POST /chat/completions` (JSON and SSE), `GET /models`, `GET /credits`,
`GET /generation?id=`; admin: `POST /sim/credits`, `GET /sim/stats`. Every response carries
`X-Evalkit-Simulated: 1`; every `/models` entry has `"simulated": true`.
Models: see `evalkit.sim.profiles` (`meta-llama/llama-4-scout`, `sim/small-fast`, `sim/large-accurate`,
`sim/ru-tuned`).
"""

from evalkit.sim.faults import FAULT_KINDS, Faults
from evalkit.sim.profiles import DEFAULT_MODELS, Latency, SimModel
from evalkit.sim.server import SimServer, serve

DEMO_MODELS: tuple[str, ...] = tuple(model.id for model in DEFAULT_MODELS)
"""The ids `evalkit demo` compares: every default simulated model."""

__all__ = [
    "DEFAULT_MODELS",
    "DEMO_MODELS",
    "FAULT_KINDS",
    "Faults",
    "Latency",
    "SimModel",
    "SimServer",
    "serve",
]
