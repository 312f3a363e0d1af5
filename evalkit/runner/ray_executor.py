"""The Ray executor: a run's calls and code scoring on a Ray cluster, its journal and money here.

    evalkit run TASK -m MODEL --executor ray                 # the cluster `ray start` made on this machine
    evalkit run TASK -m MODEL --executor ray://HEAD:10001    # a remote cluster, through Ray Client

Who does what:
  - The driver (the `evalkit run` process) is the run's one writer, as without Ray: it decides what is
    sent, journals every response before it is scored, writes every sample line and the manifest. So
    every guarantee of the journal holds unchanged, and a run started on Ray resumes locally (and
    the other way round): the files are the same.
  - One `Treasury` actor owns the money and the pace for the whole cluster: every attempt on any node
    first reserves its worst case against the ₽ budget there and takes a slot of its endpoint's AIMD
    concurrency limit, and settles both when it ends (`Budget` and `AdaptiveLimiter`, the very objects
    a local run uses, living in one place).
  - One `CallWorker` actor per node (async, no CPU reserved) holds the HTTP clients and runs calls with
    their retries; the key is read from the node's own environment (ROUTERAI_API_KEY, or the variable
    the run names), so it never travels through Ray.
  - One `ScoreWorker` actor per node, reserving CPUs, scores blocking (sandboxed code) scorers with a
    warm sandbox of its own.
  - A worker lost with its node: its calls in flight were never journaled, so they are sent again on
    another node (nothing journaled is ever re-sent); their reservations stay committed as
    `unconfirmed_rub` (the router may have billed them), so the ceiling still holds.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.client import CallRecord
    from evalkit.runner.scheduler import Runner
    from evalkit.runner.unit import Unit

SCORE_CPUS_ENV = "EVALKIT_RAY_SCORE_CPUS"  # CPUs each node's code scorer reserves (default 1)
MAX_REDISPATCH = 8  # a call whose worker is lost is sent again from another node, this many times at most


def connect(executor: str) -> Any:
    """The `ray` module, connected to the cluster the executor names (reused when already connected)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--executor {executor} needs Ray: pip install 'evalkit[ray]'", option="executor"
        ) from None
    if not ray.is_initialized():
        address = executor if executor.startswith("ray://") else os.environ.get("RAY_ADDRESS", "auto")
        try:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach a Ray cluster at {address}: {str(exc).splitlines()[0][:200]} "
                "(start one with `ray start --head`)",
                option="executor",
            ) from None
    return ray


def _driver_node(ray: Any) -> str | None:
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # Ray Client: the driver is not a node; Ray places the treasury
        return None


def _alive_nodes(ray: Any) -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node.get("Alive")]


# ---- the actors ---------------------------------------------------------------------------------


class _Refused(Exception):
    """The treasury refused an attempt: the budget cannot cover it, or the run has stopped."""


class TreasuryState:
    """The money and the pace of one run, for every node: ₽ reservations and an AIMD limit per endpoint.

    Tickets name attempts (`unit/attempt`) so that those of a worker that died can be given up:
    each keeps its worst case as unconfirmed ₽ and frees its slot."""

    def __init__(
        self,
        limit_rub: float | None,
        spent_rub: float,
        unconfirmed_rub: float,
        concurrency: int,
        endpoints: list[str],
    ) -> None:
        from evalkit.runner.budget import Budget
        from evalkit.runner.limiter import AdaptiveLimiter

        self.budget = Budget(limit_rub, spent_rub=spent_rub, unconfirmed_rub=unconfirmed_rub)
        self.limiters = {endpoint: AdaptiveLimiter(concurrency) for endpoint in endpoints}
        self.open: dict[str, tuple[str, Any, str, bool]] = {}  # ticket -> endpoint, reservation, worker, slot
        self.abandoned: dict[str, float] = {}  # unit ticket prefix -> ₽ left unconfirmed by a lost worker
        self.stopped: tuple[str, str] | None = None

    async def begin(
        self, ticket: str, worker: str, endpoint: str, worst_rub: float
    ) -> tuple[str, str] | None:
        """Reserve an attempt's worst case and a slot; (status, why) when it may not be sent."""
        from evalkit.runner.budget import BudgetExhausted

        if self.stopped is not None:
            return self.stopped
        try:
            reservation = await self.budget.reserve(worst_rub)
        except BudgetExhausted as exc:
            return ("budget_exhausted", str(exc))
        self.open[ticket] = (endpoint, reservation, worker, False)
        await self.limiters[endpoint].acquire()
        if ticket not in self.open:  # given up while waiting for a slot (its worker died)
            self.limiters[endpoint].release()
            return ("lost", "worker lost")
        self.open[ticket] = (endpoint, reservation, worker, True)
        return None

    async def end(
        self,
        ticket: str,
        error: str | None,
        actual_rub: float | None,
        estimated_rub: float | None,
        billed: bool,
    ) -> tuple[float, dict[str, Any]]:
        """Settle an attempt; returns the ₽ left unconfirmed and the run's totals now."""
        entry = self.open.pop(ticket, None)
        if entry is None:
            return 0.0, self.totals()
        from evalkit.runner.attempt import settle_attempt

        endpoint, reservation, _, slot = entry
        unconfirmed = await settle_attempt(
            self.budget, self.limiters[endpoint], reservation, error=error, actual_rub=actual_rub,
            estimated_rub=estimated_rub, possibly_billed=billed, holds_slot=slot,
        )  # fmt: skip
        return unconfirmed, self.totals()

    async def abandon(self, worker: str) -> dict[str, float]:
        """A worker is gone: its open attempts may have been billed; keep their worst cases committed."""
        for ticket, (endpoint, reservation, owner, slot) in list(self.open.items()):
            if owner != worker:
                continue
            del self.open[ticket]
            if slot:
                self.limiters[endpoint].release()
            unconfirmed = await self.budget.settle(reservation, None, None, possibly_billed=True)
            prefix = ticket.rsplit("/", 1)[0]
            self.abandoned[prefix] = self.abandoned.get(prefix, 0.0) + unconfirmed
        return dict(self.abandoned)

    def take_abandoned(self, prefix: str) -> float:
        return self.abandoned.pop(prefix, 0.0)

    def stop(self, status: str, message: str) -> None:
        self.stopped = self.stopped or (status, message)

    def totals(self) -> dict[str, Any]:
        limiters = self.limiters.values()
        return {
            "spent_rub": self.budget.spent_rub,
            "unconfirmed_rub": self.budget.unconfirmed_rub,
            "limit": sum(lim.limit for lim in limiters),
            "maximum": sum(lim.maximum for lim in limiters),
            "in_flight": sum(lim.in_flight for lim in limiters),
        }


class CallWorkerState:
    """The calls of one node: a client per endpoint, attempts cleared with the treasury."""

    def __init__(
        self, name: str, endpoints: dict[str, dict[str, Any]], client: dict[str, Any], treasury: Any
    ):
        import ray

        self.name = name
        self.node = ray.get_runtime_context().get_node_id()
        self.specs = endpoints
        self.client_options = client
        self.treasury = treasury
        self.clients: dict[str, Any] = {}

    def _client(self, endpoint_id: str) -> Any:
        from evalkit.client import Client, Endpoint, RetryPolicy

        if endpoint_id not in self.clients:
            spec = self.specs[endpoint_id]
            if spec.get("api_key") is not None:  # a simulator's: not a secret
                endpoint = Endpoint(
                    spec["base_url"], spec["api_key"], simulated=True, identity=spec["identity"]
                )
            else:
                endpoint = Endpoint.from_env(base_url=spec["base_url"], api_key_env=spec["api_key_env"])
            options = dict(self.client_options)
            retry = RetryPolicy(**options.pop("retry"))
            self.clients[endpoint_id] = Client(endpoint, retry=retry, **options)
        return self.clients[endpoint_id]

    def check(self) -> str | None:
        """Why this node cannot call every endpoint (a key missing from its environment), or None."""
        from evalkit.common.errors import EvalkitError

        try:
            for endpoint_id in self.specs:
                self._client(endpoint_id)
        except EvalkitError as exc:
            return f"node {self.node[:12]}: {exc}"
        return None

    async def call(
        self,
        ticket: str,
        endpoint_id: str,
        router_id: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        worst_rub: float,
        price: dict[str, float] | None,
        images: int,
    ) -> dict[str, Any]:
        from evalkit.client import CallHooks
        from evalkit.runner.budget import possibly_billed

        outcome: dict[str, Any] = {"sent": 0, "unconfirmed_rub": 0.0, "totals": None, "node": self.node}
        open_tickets: list[str] = []

        async def before_attempt(attempt: int) -> None:
            attempt_ticket = f"{ticket}/{attempt}"
            refused = await self.treasury.begin.remote(attempt_ticket, self.name, endpoint_id, worst_rub)
            if refused is not None:
                raise _Refused(*refused)
            open_tickets.append(attempt_ticket)
            outcome["sent"] += 1

        async def after_attempt(record: CallRecord, attempt: int) -> None:
            estimate = _estimate(price, record, images)
            unconfirmed, outcome["totals"] = await self.treasury.end.remote(
                open_tickets.pop(),
                record.error,
                record.cost_rub,
                estimate,
                possibly_billed(record.error, record.cost_rub, estimate),
            )
            outcome["unconfirmed_rub"] += unconfirmed

        try:
            record = await self._client(endpoint_id).call(
                router_id,
                messages,
                params,
                hooks=CallHooks(before_attempt=before_attempt, after_attempt=after_attempt),
            )
        except _Refused as refused:
            return outcome | {"refused": list(refused.args)}
        return outcome | {"record": record.to_dict()}

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()


class ScoreWorkerState:
    """Blocking (code) scoring on one node, each task's scorer built once and kept warm."""

    def __init__(self) -> None:
        self.scorers: dict[str, Any] = {}

    def score(self, task: Any, output: str, sample: Any) -> tuple[Any, str | None]:
        from evalkit.scorers.base import score_output

        if task.name not in self.scorers:  # one run's tasks have distinct names
            self.scorers[task.name] = task.build_scorer()
        return score_output(self.scorers[task.name], output, sample)

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def close(self) -> None:
        from evalkit.scorers.base import close_scorer

        for scorer in self.scorers.values():
            close_scorer(scorer)
        self.scorers.clear()


def _estimate(price: dict[str, float] | None, record: CallRecord, images: int) -> float | None:
    from evalkit.client import PriceCard

    estimate = record.estimate(None if price is None else PriceCard.from_api(price), images)
    return None if estimate is None else estimate.total


def _actor_classes(ray: Any) -> tuple[Any, Any, Any]:
    """The three actor classes, made remote once per process (the first two run on an event loop:
    Ray sees their coroutine methods)."""
    global _ACTORS
    if _ACTORS is None:
        treasury = ray.remote(num_cpus=0, max_concurrency=100_000)(TreasuryState)
        caller = ray.remote(num_cpus=0, max_concurrency=100_000)(CallWorkerState)
        _ACTORS = (treasury, caller, ray.remote(ScoreWorkerState))
    return _ACTORS


_ACTORS: tuple[Any, Any, Any] | None = None


# ---- the driver's side -------------------------------------------------------------------------

_LOST = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError", "NodeDiedError")


def _is_lost(exc: BaseException) -> bool:
    """The actor itself is gone (not an error raised inside it, which Ray wraps in a RayTaskError)."""
    if type(exc).__name__.startswith("RayTaskError"):
        return False
    return any(
        type(exc).__name__ == name or name in [c.__name__ for c in type(exc).__mro__] for name in _LOST
    )


class RayExecutor:
    """The runner's calls and blocking scoring on a Ray cluster (see the module's docstring)."""

    def __init__(self, ray: Any, runner: Runner) -> None:
        self.ray = ray
        self.runner = runner
        treasury_cls, self._caller_cls, self._scorer_cls = _actor_classes(ray)
        config = runner.config
        self.specs = {
            endpoint.cache_id: _endpoint_spec(runner, endpoint) for endpoint in set(runner.endpoints.values())
        }
        # on the driver's node: it lives as long as the run does, whichever worker node is lost
        self.treasury = treasury_cls.options(**self._pinned(_driver_node(ray))).remote(
            config.budget_rub,
            runner.budget.spent_rub,
            runner.budget.unconfirmed_rub,
            config.concurrency,
            list(self.specs),
        )
        self.client_options = {
            "stream": config.stream,
            "transport": config.transport,
            "deadline_s": config.deadline_s,
            "retry": {
                "max_attempts": config.max_attempts,
                "max_total_s": config.retry_max_total_s,
                "base_delay_s": config.retry_base_delay_s,
            },
        }
        self.callers: dict[str, Any] = {}
        self.scorers: dict[str, Any] = {}
        self.task_refs: dict[str, Any] = {}  # each task shipped to the object store once
        self.load: dict[str, int] = {}
        self._names = itertools.count()
        self.calls_by_node: collections.Counter[str] = collections.Counter()
        self.scored = 0
        self.lost: list[str] = []
        self._tickets = itertools.count()
        for node in _alive_nodes(ray):
            self._add_caller(node["NodeID"])

    @classmethod
    def start(cls, runner: Runner) -> RayExecutor:
        """Connect, start the treasury and a call worker per node, and check that every node can call
        (before anything is sent)."""
        from evalkit.runner.judging import is_judged

        if judged := [name for name, scorer in runner.scorers.items() if is_judged(scorer)]:
            # a judge's calls are reserved in this process's budget, which a cluster run leaves idle
            raise ConfigError(
                f"task(s) {', '.join(judged)} are scored by a judge, whose calls the Ray executor does not "
                "make yet; run them with the local executor",
                option="executor",
            )
        executor = cls(connect(runner.config.executor), runner)
        problems = [p for p in executor.ray.get([c.check.remote() for c in executor.callers.values()]) if p]
        if problems:
            executor.kill()
            raise ConfigError(
                "; ".join(problems) + " (each node reads the key from its own environment: set it "
                "where `ray start` runs)",
                option="executor",
            )
        return executor

    def _pinned(self, node_id: str | None) -> dict[str, Any]:
        if node_id is None:
            return {}
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}

    def _add_caller(self, node_id: str | None) -> None:
        name = f"caller-{next(self._names)}"
        self.callers[name] = self._caller_cls.options(**self._pinned(node_id)).remote(
            name, self.specs, self.client_options, self.treasury
        )
        self.load[name] = 0

    def _pick(self, pool: dict[str, Any]) -> str:
        return min(pool, key=lambda name: self.load.get(name, 0))

    async def call(
        self, unit: Unit, router_id: str, messages: list[dict[str, Any]], params: dict[str, Any], worst: float
    ) -> tuple[CallRecord | None, dict[str, Any]]:
        """One sample's call (all its attempts) on some node. (record, outcome); record is None when the
        treasury refused it (outcome["refused"] = [status, why])."""
        from evalkit.client import CallRecord

        runner = self.runner
        endpoint = runner.endpoints[unit.model]
        price = runner.prices.get(unit.model)
        ticket = f"t{next(self._tickets)}"
        images = sum(1 for m in messages for p in _parts(m) if p.get("type") == "image_url")
        for _ in range(MAX_REDISPATCH):
            if not self.callers:
                self._add_caller(None)  # every pinned worker is gone: one wherever Ray can place it
            name = self._pick(self.callers)
            self.load[name] += 1
            try:
                outcome = await self.callers[name].call.remote(
                    ticket,
                    endpoint.cache_id,
                    router_id,
                    messages,
                    params,
                    worst,
                    price and price.to_api(),
                    images,
                )
            except Exception as exc:
                if not _is_lost(exc):
                    raise _unwrapped(exc) from None
                await self._lost_caller(name)
                # never journaled, so sending it again pays nothing twice; the lost attempt's worst case
                # stays committed (the router may have billed it) and is journaled with the response
                lost = await self.treasury.take_abandoned.remote(ticket)
                runner.unconfirmed[unit.key] = runner.unconfirmed.get(unit.key, 0.0) + lost
                ticket = f"t{next(self._tickets)}"
                continue
            finally:
                self.load[name] = self.load.get(name, 1) - 1
            runner.invocation["sent"] += outcome["sent"]
            self.calls_by_node[outcome["node"]] += 1
            if outcome["unconfirmed_rub"]:
                runner.unconfirmed[unit.key] = (
                    runner.unconfirmed.get(unit.key, 0.0) + outcome["unconfirmed_rub"]
                )
            if outcome.get("totals"):
                self._mirror(outcome["totals"])
            if "refused" in outcome:
                return None, outcome
            return CallRecord.from_dict(outcome["record"]), outcome
        raise ConfigError(
            f"the Ray cluster lost the workers of {MAX_REDISPATCH} nodes in a row; is it shrinking?"
        )

    async def _lost_caller(self, name: str) -> None:
        if self.callers.pop(name, None) is not None:
            self.lost.append(name)
            await self.treasury.abandon.remote(name)

    async def stop(self, status: str, message: str) -> None:
        await self.treasury.stop.remote(status, message)

    async def score(self, task: Any, output: str, sample: Any) -> tuple[Any, str | None]:
        """A blocking scorer's verdict from a node's warm sandbox."""
        for _ in range(MAX_REDISPATCH):
            if not self.scorers:
                self._start_scorers()
            name = self._pick(self.scorers)
            self.load[name] = self.load.get(name, 0) + 1
            try:
                if task.name not in self.task_refs:
                    self.task_refs[task.name] = self.ray.put(task)
                verdict = await self.scorers[name].score.remote(self.task_refs[task.name], output, sample)
                self.scored += 1
                return verdict
            except Exception as exc:
                if not _is_lost(exc):
                    raise _unwrapped(exc) from None
                self.scorers.pop(name, None)
            finally:
                self.load[name] = self.load.get(name, 1) - 1
        raise ConfigError(f"the Ray cluster lost the code scorers of {MAX_REDISPATCH} nodes in a row")

    def _start_scorers(self) -> None:
        cpus = float(os.environ.get(SCORE_CPUS_ENV, "1"))
        nodes = [node["NodeID"] for node in _alive_nodes(self.ray) if node["Resources"].get("CPU", 0) >= cpus]
        for node_id in nodes or [None]:
            name = f"scorer-{next(self._names)}"
            options = self._pinned(node_id) | {"num_cpus": cpus, "max_concurrency": _scoring_threads(cpus)}
            self.scorers[name] = self._scorer_cls.options(**options).remote()

    def _mirror(self, totals: dict[str, Any]) -> None:
        """The driver's progress and manifest read the treasury's totals (its own budget is idle)."""
        budget, limiter = self.runner.budget, self.runner.limiter
        budget.spent_rub, budget.unconfirmed_rub = totals["spent_rub"], totals["unconfirmed_rub"]
        limiter.limit, limiter.maximum, limiter.in_flight = (
            totals["limit"],
            totals["maximum"],
            totals["in_flight"],
        )

    def summary(self) -> dict[str, Any]:
        """What the cluster did, for the manifest: calls per node (Ray node ids), workers lost."""
        return {
            "kind": "ray",
            "calls_by_node": dict(self.calls_by_node),
            "code_scored_on_nodes": self.scored,
            "workers_lost": len(self.lost),
        }

    async def close(self) -> None:
        """Settle the final totals and stop the actors (the cluster stays up)."""
        try:
            self._mirror(await self.treasury.totals.remote())
        except Exception as exc:
            if not _is_lost(exc):
                raise
        finally:
            for caller in self.callers.values():
                await _quietly(caller.close.remote())
            for scorer in self.scorers.values():
                await _quietly(scorer.close.remote())
            self.kill()

    def kill(self) -> None:
        """Stop every actor of this run now."""
        for actor in [*self.callers.values(), *self.scorers.values(), self.treasury]:
            self.ray.kill(actor)
        self.callers.clear()
        self.scorers.clear()


def _scoring_threads(cpus: float) -> int:
    """Samples a node's scorer takes at once: twice its CPUs, as the local thread pool does, since a
    sandboxed sample spends much of its time starting processes and waiting on them."""
    return max(2, 2 * int(cpus))


def _unwrapped(exc: BaseException) -> BaseException:
    """An evalkit error raised on a node, as itself (one clear line, not a remote traceback)."""
    from evalkit.common.errors import EvalkitError

    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, EvalkitError) else exc


async def _quietly(ref: Any) -> None:
    try:
        await ref
    except Exception:  # a worker already gone has nothing left to close
        return


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def _endpoint_spec(runner: Runner, endpoint: Any) -> dict[str, Any]:
    """How a node reaches an endpoint: its URL and where its key is, never the key (a simulator's key
    is not a secret and travels as is)."""
    config = runner.config
    if endpoint.simulated:
        return {"base_url": endpoint.base_url, "api_key": endpoint.api_key, "identity": endpoint.identity}
    key_env = config.api_key_env
    for model, model_endpoint in runner.endpoints.items():
        route = config.model_routes.get(model) or config.model_routes.get(runner.variants[model].router_id)
        if model_endpoint is endpoint and route is not None and route.api_key_env:
            key_env = route.api_key_env
    return {
        "base_url": endpoint.base_url,
        "api_key": None,
        "api_key_env": key_env,
        "identity": endpoint.identity,
    }


# ---- the score phase on a cluster ---------------------------------------------------------------


def score_on_cluster(jobs: list[Any], executor: str) -> Iterator[tuple[Any, tuple[Any, str | None]]]:
    """(job, (Score | None, failure)) for each job of `evalkit score`, scored on the cluster's nodes."""
    ray = connect(executor)
    _, _, scorer_cls = _actor_classes(ray)
    cpus = float(os.environ.get(SCORE_CPUS_ENV, "1"))
    nodes = [node["NodeID"] for node in _alive_nodes(ray) if node["Resources"].get("CPU", 0) >= cpus]
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def one_on(node: str | None) -> Any:
        placed = {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)} if node else {}
        return scorer_cls.options(num_cpus=cpus, max_concurrency=_scoring_threads(cpus), **placed).remote()

    # a lost node fails this phase; scoring it again scores only what is still unscored
    workers = [one_on(node) for node in nodes] or [one_on(None)]
    tasks = {job.task.name: ray.put(job.task) for job in jobs}
    try:
        refs = [
            workers[i % len(workers)].score.remote(
                tasks[job.task.name], job.call.get("output") or "", job.sample
            )
            for i, job in enumerate(jobs)
        ]
        for job, ref in zip(jobs, refs, strict=True):
            yield job, ray.get(ref)
    finally:
        for worker in workers:
            _quietly_get(ray, worker.close.remote())
            ray.kill(worker)


def _quietly_get(ray: Any, ref: Any) -> None:
    try:
        ray.get(ref, timeout=30)
    except Exception:  # a worker already gone has nothing left to close
        return
