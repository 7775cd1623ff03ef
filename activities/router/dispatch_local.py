"""Router provider for the local workers: which of them take jobs (``infrastructure/local/dispatch.py``).

Workers pull jobs from their region's database; there is no traffic to split. What a
release needs of a router still holds: ``set_traffic`` decides which workers take jobs
(every member of a pool with a weight above 0; a weight says whether, not how many, since
workers pull), ``drain`` stops single workers taking new jobs and reports the job each still
has in hand (``GET /admin/inflight``), ``read`` gives back what is in force.
"""

from __future__ import annotations

import httpx

from activities.splits import check_split
from engine.contracts import POOLS, EnvironmentSpec, Instance, RouterState
from engine.errors import BadRequest
from infrastructure.local import dispatch
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import WORKER, instance_name, layout_for


class LocalDispatchRouter:
    """The region's dispatch file, written whole on every change."""

    def __init__(self, env: EnvironmentSpec) -> None:
        if env.component == "api":
            msg = "the dispatch router serves workers; the api takes traffic through a real router (haproxy)"
            raise BadRequest(msg)
        self._layout = layout_for(env)
        self._http = httpx.Client(timeout=2.0)

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        check_split(weights, members, POOLS, kind="workers")
        taking = {pool: [i.slot for i in members.get(pool, [])] for pool, w in weights.items() if w > 0}
        dispatch.write(self._layout, dispatch.Dispatch(members=taking, draining=[]))
        total = sum(weights.values())
        return {pool: 100.0 * w / total for pool, w in weights.items()}

    def read(self) -> RouterState:
        current = dispatch.read(self._layout)
        running = InstanceManager(self._layout, WORKER).list(probe=False)
        if current is None:  # no release wrote it yet: every running worker takes jobs
            taking = {p: [i.slot for i in running if i.pool == p] for p in POOLS}
            source = "every running worker (no dispatch written yet)"
        else:
            live = {(i.pool, i.slot) for i in running}
            taking = {
                p: [s for s in current.members.get(p, []) if current.takes_jobs(p, s) and (p, s) in live]
                for p in POOLS
            }
            source = str(dispatch.path(self._layout))
        total = sum(len(s) for s in taking.values())
        weights = {p: (100.0 * len(s) / total if total else 0.0) for p, s in taking.items()}
        return RouterState(weights=weights, detail={"provider": "dispatch-local", "source": source})

    def drain(self, *, instances: list[Instance]) -> dict[str, int]:
        current = dispatch.read(self._layout)
        if current is None:  # take the running workers as the members before draining some
            running = InstanceManager(self._layout, WORKER).list(probe=False)
            current = dispatch.Dispatch(members={p: [i.slot for i in running if i.pool == p] for p in POOLS})
        names = {instance_name(i.pool, i.slot, WORKER) for i in instances}
        if not names <= set(current.draining):
            current.draining = sorted(set(current.draining) | names)
            dispatch.write(self._layout, current)
        return {i.address: self._inflight(i) for i in instances}

    def _inflight(self, instance: Instance) -> int:
        """Jobs in hand; a worker that does not answer has none (it is gone)."""
        try:
            answer = self._http.get(f"http://{instance.address}/admin/inflight")
            return int(answer.json()["inflight"]) if answer.status_code == 200 else 0
        except (httpx.HTTPError, ValueError, KeyError):
            return 0
