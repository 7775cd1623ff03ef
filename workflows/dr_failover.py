"""Regional failover (and failback): move users and writes from the primary region to the standby.

The runbook this replaces (docs/runbooks/disaster-recovery.md, "Failover" and "Failback"):

0. Failback only: rebuild the target region's database as a standby of the current
   primary and wait until it streams.
1. Preconditions: the target is not already where users are; its database is a healthy
   standby; replication lag is within the RPO budget (else refuse unless forced). The
   target serves the versions the source serves, every component: if not, start them
   there first (``version_drift: converge``) or refuse naming the drift unless forced.
2. Approval, unless the monitor started the run and auto-approve is configured, the run
   is a drill, or an approver approved when starting it.
3. Fence the primary: its region's instances stop writing, its database turns read-only.
   With the primary reachable, wait until the standby replayed everything it wrote.
4. Promote the standby (a standby already promoted is not an error).
5. Point the target region's instances at the promoted database, scale the region up.
6. Switch the global entry point to the target region: the point of no return.
7. Verify: a health check and a write probe through the global entry land in the target.
8. Report RTO and RPO. Failback: rebuild the old primary as the new primary's standby.

Before the switch, failure or abort undoes in reverse: the promoted standby is rebuilt as
a standby again (when the primary is reachable), the primary is unfenced and its instances
write to it again; users stay where they were.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.dr_base import DrWorkflow, Refused
from workflows.operation import Interrupted
from workflows.options import DR_QUICK, DR_SLOW, DR_UNDO

with workflow.unsafe.imports_passed_through():
    from engine.contracts.activities import (
        DR_CATCH_UP,
        DR_CONVERGE,
        DR_FENCE,
        DR_OBSERVE,
        DR_PROBE,
        DR_PROMOTE,
        DR_REBUILD_STANDBY,
        DR_SCALE_REGION,
        DR_SET_REPLICATION,
        DR_SWITCH_ENTRY,
        DR_UNFENCE,
        DR_USE_DATABASE,
    )
    from engine.contracts.dr import (
        CatchUp,
        CatchUpRequest,
        ConvergeRequest,
        DrRef,
        DrResult,
        FailoverRequest,
        Fenced,
        PointRequest,
        Probe,
        Promoted,
        RebuildRequest,
        RegionRef,
        ReplicationRequest,
        ScaleRequest,
        SwitchRequest,
        Topology,
    )


@workflow.defn(name="DrFailover")
class DrFailover(DrWorkflow):
    """Fail over (or back) one environment to one region."""

    @workflow.init
    def __init__(self, req: FailoverRequest) -> None:
        self.kind = req.mode
        super().__init__(req.dr, f"{req.mode} of {req.dr.app}/{req.dr.environment} to {req.to_region}")
        self.req = req
        self.target = req.to_region
        self.source = ""
        self.measure(drill=req.drill, trigger=req.trigger, to_region=req.to_region)

    @workflow.run
    async def run(self, req: FailoverRequest) -> DrResult:
        return await self.execute()

    async def body(self) -> str:  # noqa: PLR0915 - the runbook, step by step
        req, dr, target = self.req, self.dr, self.target
        if target not in dr.regions:
            raise Refused(f"unknown region {target!r}; {dr.environment!r} has {', '.join(dr.regions)}")
        topology = await self.step("observe", self.observe)
        self.source = self._source(topology)
        source = self.source
        self.measure(from_region=source)
        if req.outage_started_at and req.detected_at:
            self.measure(detection_seconds=self.seconds(req.outage_started_at, req.detected_at))

        # 0. Failback: the target becomes a standby of the current primary first.
        if req.mode == "failback" and not self._streams(topology, source, target):
            self.decide(f"rebuilding {target}'s database as a standby of {source}")
            await self.step(f"rebuild {target} as standby", lambda: self.rebuild(target, source))
            await self.step("replication", lambda: self.replication(source, target))
            topology = await self.step("observe", self.observe)

        # 1. Preconditions: the database, then the versions the target would serve.
        self._check_preconditions(topology)
        await self._same_versions(topology)

        # 2. Approval.
        await self._approval()

        # 3. Fence the primary.
        primary_reachable = topology.databases[source].reachable
        self.on_failure_undo(
            f"{source}'s instances write to {source} again", lambda: self.use_db(source, source, undo=True)
        )
        self.on_failure_undo(
            f"unfence {source}", lambda: self.call(DR_UNFENCE, RegionRef(dr=dr, region=source), DR_UNDO)
        )
        await self.step(f"stop writes in {source}", lambda: self.use_db(source, None))
        fenced: Fenced = await self.step(
            f"fence {source}", lambda: self.call(DR_FENCE, RegionRef(dr=dr, region=source))
        )
        outage_start = req.outage_started_at or fenced.at
        self.decide(f"fenced {source}" + ("" if fenced.reachable else " on disk (unreachable)"))
        if fenced.reachable:
            caught: CatchUp = await self.step(
                f"{target} catches up",
                lambda: self.call(
                    DR_CATCH_UP,
                    CatchUpRequest(dr=dr, standby=target, primary=source, timeout=dr.catch_up_timeout),
                    DR_SLOW,
                ),
            )
            self.measure(rpo_bytes=caught.lag_bytes)
            if caught.lag_bytes and not req.force:
                raise Interrupted(
                    f"{target} is still {caught.lag_bytes} bytes behind after {dr.catch_up_timeout}"
                )
            self.decide(f"{target} replayed everything {source} wrote ({caught.seconds:g}s)")

        # 4. Promote the standby.
        if primary_reachable:
            self.on_failure_undo(
                f"rebuild {target} as a standby of {source}", lambda: self._restore_standby(source, target)
            )
        promoted: Promoted = await self.step(
            f"promote {target}", lambda: self.call(DR_PROMOTE, RegionRef(dr=dr, region=target))
        )
        self.decide(f"promoted {target}" + (" (it already was primary)" if promoted.already_primary else ""))

        # 5. Target region writes to its promoted database, at full size.
        await self.step(f"{target} writes to {target}", lambda: self.use_db(target, target))
        self.on_failure_undo(
            f"scale {target} back", lambda: self.scale(target, dr.standby_instances, undo=True)
        )
        running = await self.step(f"scale {target}", lambda: self.scale(target, dr.instances))
        self.decide(f"{running} instances run in {target}")

        # 6. Switch the global entry point.
        await self.step(
            f"switch users to {target}",
            lambda: self.call(DR_SWITCH_ENTRY, SwitchRequest(dr=dr, region=target)),
        )
        self.point_of_no_return(f"users reach {target}")

        # 7. Verify.
        probe: Probe = await self.step(
            "verify", lambda: self.call(DR_PROBE, SwitchRequest(dr=dr, region=target), DR_SLOW)
        )
        if not probe.ok:
            self.measure(rto_seconds=None)
            raise Interrupted("verification failed: " + "; ".join(probe.failures))
        self.measure(rto_seconds=self.seconds(outage_start, probe.at))
        self.decide(f"verified: health and a write through the global entry land in {target}")

        # 8. Failback: the old primary becomes the new one's standby.
        if req.mode == "failback":
            await self.step(f"rebuild {source} as standby", lambda: self.rebuild(source, target))
            await self.step("replication", lambda: self.replication(target, source))
            await self.step(f"{source} writes to {source}", lambda: self.use_db(source, source))
            await self.step(f"scale {source}", lambda: self.scale(source, dr.standby_instances))
            self.decide(f"{source} is {target}'s standby again")
        rto = self.report.rto_seconds
        lost = self.report.rpo_bytes or 0
        return f"users and writes are in {target} (RTO {rto:g}s, {lost} bytes not replayed)"

    # ------------------------------------------------------------------ #

    def _source(self, topology: Topology) -> str:
        """Where users are now; refuse if that is already the target."""
        target = self.target
        source = topology.active_region or next(iter(topology.primaries()), None)
        if source is None:
            raise Refused("cannot tell which region is primary: the global entry points nowhere")
        if source == target:
            raise Refused(f"{target} is already the primary region: users and writes are there")
        return source

    @staticmethod
    def _streams(topology: Topology, primary: str, standby: str) -> bool:
        node = topology.databases[standby]
        replica = topology.replica_of(primary, standby)
        return (
            node.reachable and node.role == "standby" and replica is not None and replica.state == "streaming"
        )

    def _check_preconditions(self, topology: Topology) -> None:
        req, dr, source, target = self.req, self.dr, self.source, self.target
        standby = topology.databases[target]
        if not standby.reachable:
            raise Refused(f"the standby database in {target} is unreachable: {standby.error}")
        if standby.role != "standby" and not req.force:
            raise Refused(
                f"{target}'s database is a {standby.role}, not a standby (fail back with --failback to "
                f"rebuild it, or --force)"
            )
        primary = topology.databases[source]
        budget = dr.rpo_budget.total_seconds()
        if primary.reachable:
            replica = topology.replica_of(source, target)
            if replica is None or replica.state != "streaming":
                if not req.force:
                    raise Refused(f"{target} does not stream from {source}; --force to fail over anyway")
                self.decide(f"{target} does not stream from {source}: forced")
                return
            lag = replica.lag_seconds or 0.0
            self.measure(rpo_seconds=round(lag, 3))
            if lag > budget:
                if not req.force:
                    raise Refused(
                        f"replication lag {lag:.1f}s is over the {budget:g}s RPO budget; --force to accept"
                    )
                self.decide(f"replication lag {lag:.1f}s over the {budget:g}s budget: forced")
            else:
                self.decide(
                    f"{target} streams from {source}, lag {lag:.3f}s ({replica.sync}), budget {budget:g}s"
                )
        elif dr.synchronous_replication:
            self.decide(
                f"{source}'s database is unreachable; replication is synchronous, so no commit is lost"
            )
        elif not req.force:
            raise Refused(
                f"{source}'s database is unreachable and replication is asynchronous: the lag (data lost) is "
                "unknown; --force to accept"
            )
        else:
            self.decide(f"{source}'s database is unreachable, asynchronous replication: lag unknown, forced")

    async def _same_versions(self, topology: Topology) -> None:
        """Users must find in the target what they had in the source: each component's version."""
        req, dr, source, target = self.req, self.dr, self.source, self.target
        self.measure(versions=topology.versions)
        if source not in topology.versions:
            there = _versions(topology.versions.get(target))
            self.decide(f"versions not compared: {source} does not answer; {target} serves {there}")
            return
        drift = topology.drift(source, target)
        if not drift:
            self.decide(f"{target} serves what {source} serves: {_versions(topology.versions[source])}")
            return
        what = "; ".join(f"{c} {s} in {source}, {t or 'nothing'} in {target}" for c, (s, t) in drift.items())
        if not workflow.patched("version-check"):
            return
        if dr.version_drift == "refuse":
            if not req.force:
                raise Refused(
                    f"{target} does not serve what users get now ({what}): release there, or --force"
                )
            self.decide(f"version drift ({what}): forced")
            return
        self.decide(f"version drift ({what}): converging {target} first (it stays converged on failure)")
        wanted = {c: s for c, (s, _) in drift.items()}
        after = await self.step(
            f"converge {target}",
            lambda: self.call(DR_CONVERGE, ConvergeRequest(dr=dr, region=target, versions=wanted), DR_SLOW),
        )
        self.measure(versions={**topology.versions, target: after})
        self.decide(f"{target} serves {_versions(after)}")

    async def _approval(self) -> None:
        req, dr = self.req, self.dr
        if req.drill:
            self.decide("drill: no approval needed")
        elif req.trigger == "monitor" and dr.auto_approve:
            self.decide("started by the monitor; auto-approve is configured")
        elif (
            req.approved_by is not None and req.approved_by in dr.approvers and dr.policy.approvals == "named"
        ):
            # Where approvals are signed a name given at start proves nothing: a signed approve is needed.
            self._approved_by = req.approved_by
            self.decide("approved when started", by=req.approved_by)
        else:
            await self.wait_for_approval(f"fail over {self.source} -> {self.target}")

    # ------------------------------------------------------------------ #

    async def observe(self) -> Topology:
        return await self.call(DR_OBSERVE, DrRef(dr=self.dr))

    async def use_db(self, region: str, database: str | None, *, undo: bool = False) -> None:
        await self.call(
            DR_USE_DATABASE,
            PointRequest(dr=self.dr, region=region, database=database),
            (DR_UNDO if undo else DR_QUICK),
        )

    async def scale(self, region: str, count: int, *, undo: bool = False) -> int:
        return await self.call(
            DR_SCALE_REGION,
            ScaleRequest(dr=self.dr, region=region, count=count),
            (DR_UNDO if undo else DR_SLOW),
        )

    async def rebuild(self, region: str, primary: str, *, undo: bool = False) -> None:
        await self.call(
            DR_REBUILD_STANDBY,
            RebuildRequest(dr=self.dr, region=region, primary=primary),
            (DR_UNDO if undo else DR_SLOW),
        )

    async def replication(self, primary: str, standby: str, *, undo: bool = False) -> None:
        await self.call(
            DR_SET_REPLICATION,
            ReplicationRequest(
                dr=self.dr, primary=primary, standby=standby, synchronous=self.dr.synchronous_replication
            ),
            (DR_UNDO if undo else DR_QUICK),
        )

    async def _restore_standby(self, primary: str, standby: str) -> None:
        await self.rebuild(standby, primary, undo=True)
        await self.replication(primary, standby, undo=True)


def _versions(versions: dict[str, str] | None) -> str:
    """``api v1.2.3, worker v1.2.3`` (or ``nothing known``)."""
    return ", ".join(f"{c} {v}" for c, v in sorted((versions or {}).items())) or "nothing known"
