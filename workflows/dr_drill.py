"""DR drill: prove the failover path end to end, then put everything back.

The runbook this replaces (docs/runbooks/disaster-recovery.md, "DR drills"):

1. Refuse while a release or a failover runs in the environment (nothing changed).
2. Detection: run the monitor's health check of the primary region as many times as the
   monitor needs to decide, and time it.
3. Fail over to the standby region (a ``DrFailover`` child in drill mode: no approval).
4. Fail back to the home region (a ``DrFailover`` child in failback mode: the old primary
   is rebuilt as a standby first, and afterwards the drill region becomes the standby again).
5. Clean up and check the platform is as the drill found it: the home region takes users
   and writes, the other region's database is its streaming standby, fully replayed.
6. Report detection time, RTO and RPO of both moves, and every step's duration.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.dr_base import DrWorkflow, Refused
from workflows.dr_failover import DrFailover
from workflows.operation import Interrupted
from workflows.options import DR_QUICK, DR_SLOW

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts.activities import (
        DR_CATCH_UP,
        DR_OBSERVE,
        DR_REGION_HEALTH,
        DR_RUNNING_WORKFLOWS,
    )
    from engine.contracts.dr import (
        BusyRequest,
        CatchUp,
        CatchUpRequest,
        DrillRequest,
        DrRef,
        DrResult,
        FailoverRequest,
        Health,
        RegionRef,
        Topology,
    )


@workflow.defn(name="DrDrill")
class DrDrill(DrWorkflow):
    """Fail over to the standby region and back, measured."""

    kind = "drill"

    @workflow.init
    def __init__(self, req: DrillRequest) -> None:
        super().__init__(req.dr, f"DR drill of {req.dr.app}/{req.dr.environment}")
        self.req = req
        self.measure(drill=True, trigger=req.trigger)

    @workflow.run
    async def run(self, req: DrillRequest) -> DrResult:
        return await self.execute()

    def count_outcome(self, outcome: str) -> None:
        """Drills feed the DRDrillFailed and DRDrillNotRun alerts."""
        meter = workflow.metric_meter()
        env = {"environment": self.dr.environment}
        meter.create_counter("deploy_dr_drill_total", "DR drills by outcome").add(
            1, {**env, "outcome": outcome}
        )
        if outcome == "succeeded":
            meter.create_gauge_float(
                "deploy_dr_drill_last_success_timestamp_seconds", "end of the last successful drill", "s"
            ).set(workflow.now().timestamp(), env)

    async def body(self) -> str:
        dr = self.dr
        # 1. Nothing else may move this environment meanwhile.
        busy = await self.call(
            DR_RUNNING_WORKFLOWS,
            BusyRequest(
                workflow_ids=[
                    names.release_workflow_id(dr.app, dr.environment),
                    names.dr_workflow_id(dr.app, dr.environment, "failover"),
                ]
            ),
        )
        if busy:
            raise Refused(f"a drill cannot run while {', '.join(busy)} runs in {dr.environment!r}")
        topology: Topology = await self.step("observe", lambda: self.call(DR_OBSERVE, DrRef(dr=dr)))
        home = topology.active_region
        if home is None:
            raise Refused("the global entry points nowhere: fix the platform before drilling")
        target = self.req.to_region or next(r for r in dr.regions if r != home)
        if target not in dr.regions:
            raise Refused(f"unknown region {target!r}; {dr.environment!r} has {', '.join(dr.regions)}")
        if target == home:
            raise Refused(f"{target} is already the primary region")
        self.measure(from_region=home, to_region=target)

        # 2. Detection, as the monitor would do it.
        started = workflow.now()
        for _ in range(dr.health_check_failures):
            health: Health = await self.call(DR_REGION_HEALTH, RegionRef(dr=dr, region=home))
            if not health.ok:
                raise Refused(f"{home} is unhealthy before the drill: {'; '.join(health.failures)}")
            await workflow.sleep(dr.health_check_interval)
        self.measure(detection_seconds=self.seconds(started, workflow.now()))

        # 3 and 4. Over and back, each a full failover of its own.
        wid = workflow.info().workflow_id
        over = await self.move(f"{wid}-failover", target, "failover")
        if over.outcome != "succeeded":
            error = Refused if over.outcome == "refused" else Interrupted
            raise error(f"the drill's failover to {target} did not succeed: {over.reason}")
        back = await self.move(f"{wid}-failback", home, "failback")
        if back.outcome != "succeeded":
            raise Interrupted(f"the drill's failback to {home} did not succeed: {back.reason}")

        # 5. As found: home primary and serving, the other region its streaming standby, in sync.
        caught: CatchUp = await self.step(
            "check standby in sync",
            lambda: self.call(
                DR_CATCH_UP,
                CatchUpRequest(dr=dr, standby=target, primary=home, timeout=dr.catch_up_timeout),
                DR_SLOW,
            ),
        )
        final: Topology = await self.step("observe", lambda: self.call(DR_OBSERVE, DrRef(dr=dr)))
        replica = final.replica_of(home, target)
        problems = []
        if final.active_region != home:
            problems.append(f"users reach {final.active_region}, not {home}")
        if final.primaries() != [home]:
            problems.append(f"writable primaries: {final.primaries()}")
        if replica is None or replica.state != "streaming" or caught.lag_bytes:
            problems.append(f"{target} is not an in-sync standby of {home}")
        if problems:
            raise Interrupted("; ".join(problems))
        self.measure(
            rto_seconds=max(filter(None, [over.report.rto_seconds, back.report.rto_seconds]), default=None),
            rpo_bytes=max((r.report.rpo_bytes or 0) for r in (over, back)),
            parts=[over.report, back.report],
        )
        return (
            f"drilled {home} -> {target} -> {home}: "
            f"RTO {over.report.rto_seconds}s / {back.report.rto_seconds}s, "
            f"{self.report.rpo_bytes} bytes not replayed; {target} is an in-sync standby again"
        )

    async def move(self, workflow_id: str, region: str, mode: str) -> DrResult:
        request = FailoverRequest(
            dr=self.dr,
            to_region=region,
            mode=mode,
            drill=True,
            trigger="drill",
            requested_by=self.req.requested_by,
        )
        return await self.step(
            f"{mode} to {region}",
            lambda: workflow.execute_child_workflow(
                DrFailover.run,
                request,
                id=workflow_id,
                execution_timeout=DR_QUICK["start_to_close_timeout"] * 60,
            ),
        )
