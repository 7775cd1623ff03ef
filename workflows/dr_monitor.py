"""The automatic trigger: watch the primary region, fail over after N consecutive failed checks.

1. Every ``health_check_interval``: which region do users reach (the primary), and does it
   pass its health check (router and database)?
2. After ``health_check_failures`` consecutive failures, and with the other region's database
   a reachable standby, start ``DrFailover`` (id ``dr-failover-APP-ENV``: never two at once)
   with the time of the first failure, so its report shows detection time and the RTO from
   the start of the outage. It waits for approval unless ``auto_approve`` is configured.
3. Wait for that failover to end, then watch the new primary. A failover that was refused
   or failed is not started again until the region has recovered once.
Stopped by cancelling it (``starters/dr_monitor.py stop``); a failover it started goes on.
Continues as new every ``checks_per_run`` checks.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError, ChildWorkflowError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

from workflows.dr_failover import DrFailover
from workflows.options import DR_QUICK, call

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts.activities import DR_OBSERVE, DR_REGION_HEALTH
    from engine.contracts.dr import (
        DrRef,
        FailoverRequest,
        Health,
        MonitorRequest,
        MonitorStatus,
        RegionRef,
        Topology,
    )


@workflow.defn(name="DrMonitor")
class DrMonitor:
    @workflow.init
    def __init__(self, req: MonitorRequest) -> None:
        self.req = req
        self.status = MonitorStatus()
        self._latched = False

    @workflow.run
    async def run(self, req: MonitorRequest) -> None:
        dr = req.dr
        first_failure: datetime | None = None
        for _ in range(req.checks_per_run):
            self.status = self.status.model_copy(update={"checks": self.status.checks + 1})
            try:
                topology = await call(DR_OBSERVE, DrRef(dr=dr), summary=DR_OBSERVE.name, **DR_QUICK)
                primary = topology.active_region
                health: Health | None = None
                if primary is not None:
                    check = RegionRef(dr=dr, region=primary)
                    health = await call(DR_REGION_HEALTH, check, summary=DR_REGION_HEALTH.name, **DR_QUICK)
            except ActivityError as exc:
                if isinstance(exc.cause, CancelledError) and workflow.patched("monitor-stops-when-cancelled"):
                    raise  # stopped by an operator (starters/dr_monitor.py stop)
                workflow.logger.warning("health check could not run: %s", exc)
                await workflow.sleep(dr.health_check_interval)
                continue
            if health is None or primary is None or health.ok:
                first_failure, self._latched = None, False
                self.status = self.status.model_copy(
                    update={"primary": primary, "consecutive_failures": 0, "last_failures": []}
                )
            else:
                first_failure = first_failure or health.at
                failures = self.status.consecutive_failures + 1
                self.status = self.status.model_copy(
                    update={
                        "primary": primary,
                        "consecutive_failures": failures,
                        "last_failures": health.failures,
                    }
                )
                workflow.logger.warning("%s failed its health check (%d in a row)", primary, failures)
                if failures >= dr.health_check_failures and not self._latched:
                    await self._fail_over(topology, primary, first_failure, health.at)
                    first_failure = None
            await workflow.sleep(dr.health_check_interval)
        workflow.continue_as_new(req)

    async def _fail_over(
        self, topology: Topology, primary: str, first_failure: datetime, detected: datetime
    ) -> None:
        dr = self.req.dr
        target = next(r for r in dr.regions if r != primary)
        standby = topology.databases[target]
        self._latched = True
        if not (standby.reachable and standby.role == "standby"):
            workflow.logger.error(
                "%s failed, but %s has no standby database to fail over to", primary, target
            )
            return
        request = FailoverRequest(
            dr=dr,
            to_region=target,
            trigger="monitor",
            force=dr.monitor_force,
            requested_by="dr-monitor",
            outage_started_at=first_failure,
            detected_at=detected,
        )
        workflow_id = names.dr_workflow_id(dr.app, dr.environment, "failover")
        self.status = self.status.model_copy(
            update={"failovers_started": [*self.status.failovers_started, workflow_id]}
        )
        workflow.logger.warning("starting failover %s -> %s", primary, target)
        try:
            result = await workflow.execute_child_workflow(
                DrFailover.run,
                request,
                id=workflow_id,
                # Stopping the monitor never stops a failover half-way.
                parent_close_policy=ParentClosePolicy.ABANDON,
                cancellation_type=ChildWorkflowCancellationType.ABANDON,
            )
            workflow.logger.warning("failover ended: %s (%s)", result.outcome, result.reason)
            if result.outcome == "succeeded":
                self._latched = False
        except ChildWorkflowError as exc:
            if isinstance(exc.cause, CancelledError) and workflow.patched("monitor-stops-when-cancelled"):
                raise  # the monitor was stopped; the failover goes on (abandoned, not cancelled)
            workflow.logger.error("failover failed: %s", exc)
        self.status = self.status.model_copy(update={"consecutive_failures": 0})

    @workflow.query(name="status")
    def query_status(self) -> MonitorStatus:
        return self.status
