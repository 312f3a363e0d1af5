"""Where a run's requests go: the one resolver of endpoints, for the CLI and Python alike.

A run reaches the router named by its options (or the environment), or the bundled simulator with
`sim=True`; a model listed in `model_routes` may be served elsewhere. The runner asks here and never
starts a simulator itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.client.endpoint import Endpoint
    from evalkit.runner.config import RunConfig


@contextlib.contextmanager
def open_endpoint(config: RunConfig, tasks: Iterable[Any]) -> Iterator[Endpoint]:
    """The run's default endpoint, alive for the `with` block (a simulator is stopped after it)."""
    from evalkit.client.endpoint import Endpoint

    if not config.sim:
        yield Endpoint.from_env(base_url=config.base_url, api_key_env=config.api_key_env)
        return
    from evalkit import sim

    with sim.serve(
        tasks=tasks, seed=config.sim_seed, latency_scale=config.sim_latency_scale, faults=config.sim_faults
    ) as server:
        # its answers depend on its seed, so cached responses of another seed must not be reused
        identity = f"evalkit-sim/seed={config.sim_seed}"
        yield Endpoint(base_url=server.base_url, api_key="sim", simulated=True, identity=identity)


def model_endpoint(
    config: RunConfig, model: str, default: Endpoint, router_id: str | None = None
) -> Endpoint:
    """The model's own endpoint when the run routes it (or the router id of its variant) elsewhere,
    else `default`."""
    from evalkit.client.endpoint import Endpoint

    route = config.model_routes.get(model) or (config.model_routes.get(router_id) if router_id else None)
    if route is None or config.sim:
        return default
    return Endpoint.from_env(
        base_url=route.base_url or config.base_url,
        api_key_env=route.api_key_env or config.api_key_env,
    )
