"""The DR drill gauge, derived from what Temporal knows, so that it survives worker restarts.

``deploy_dr_drill_last_success_timestamp_seconds{environment}`` feeds the DRDrillNotRun alert
(monitoring/production/prometheus/alerting-rules.yml). The DrDrill workflow sets it through its
workflow metric meter when a drill succeeds, but that value lives only in the memory of the
worker that ran the drill: a worker restart (every worker deploy) drops it, and the alert saw
"no drill for 8 days". So the worker also derives it from Temporal's visibility store, at start
and then periodically: for each environment, the close time of its newest ``DrDrill`` run that
completed with outcome ``succeeded`` (the environment and the outcome read from the run's input
and result, through the client's data converter, so with the payload codec applied). It sets
the same metric on the worker's own metrics endpoint (the SDK runtime's Prometheus exporter),
labelled by environment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from temporalio.client import Client
from temporalio.common import MetricMeter

from engine.contracts.dr import DrillRequest, DrResult

GAUGE = "deploy_dr_drill_last_success_timestamp_seconds"
DRILL_WORKFLOW = "DrDrill"
QUERY = f'WorkflowType = "{DRILL_WORKFLOW}" AND ExecutionStatus = "Completed"'
REFRESH_SECONDS = 300.0
"""How often the worker reads the drills again (a drill that succeeds on this worker also sets the
gauge at once, through the workflow's own metric)."""
LIMIT = 500
"""Completed drills read per refresh, newest first (weekly drills: years of them)."""

log = structlog.get_logger()


@dataclass
class DrillRecord:
    """What one completed drill run was: its environment, whether it succeeded, when it closed."""

    environment: str
    succeeded: bool
    closed: datetime


@dataclass
class DrillGauge:
    """The newest successful drill per environment, as Temporal's visibility store knows it.

    Completed runs never change, so each is read once (its input and result) and remembered.
    """

    client: Client
    limit: int = LIMIT
    _seen: dict[str, DrillRecord | None] = field(default_factory=dict)

    async def last_successes(self) -> dict[str, datetime]:
        """environment -> close time of its newest completed, successful DR drill."""
        newest: dict[str, datetime] = {}
        async for ran in self.client.list_workflows(QUERY, limit=self.limit):
            if ran.close_time is None:
                continue
            key = f"{ran.id}/{ran.run_id}"
            if key not in self._seen:
                self._seen[key] = await self._read(ran.id, ran.run_id, ran.close_time)
            record = self._seen[key]
            if record is None or not record.succeeded:
                continue
            if record.environment not in newest or record.closed > newest[record.environment]:
                newest[record.environment] = record.closed
        return newest

    async def _read(self, workflow_id: str, run_id: str, closed: datetime) -> DrillRecord | None:
        """The drill's environment (its input) and outcome (its result); None if unreadable."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        converter = self.client.data_converter
        request: DrillRequest | None = None
        result: DrResult | None = None
        try:
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_execution_started_event_attributes"):
                    payloads = event.workflow_execution_started_event_attributes.input.payloads
                    [request] = await converter.decode(payloads, [DrillRequest])
                elif event.HasField("workflow_execution_completed_event_attributes"):
                    payloads = event.workflow_execution_completed_event_attributes.result.payloads
                    [result] = await converter.decode(payloads, [DrResult])
        except Exception as exc:  # an old or foreign payload: skip this run, not the gauge
            log.warning("drill gauge: cannot read a drill run", workflow_id=workflow_id, error=str(exc))
            return None
        if request is None or result is None:
            return None
        return DrillRecord(request.dr.environment, result.outcome == "succeeded", closed)


async def export(client: Client, meter: MetricMeter, *, every: float = REFRESH_SECONDS) -> None:
    """Set the gauge from Temporal now and every ``every`` seconds, until cancelled."""
    gauge = meter.create_gauge_float(GAUGE, "end of the last successful drill (from Temporal)", "s")
    drills = DrillGauge(client)
    while True:
        try:
            for environment, closed in (await drills.last_successes()).items():
                gauge.set(closed.timestamp(), {"environment": environment})
        except Exception as exc:  # Temporal unreachable for a moment: the next refresh retries
            log.warning("drill gauge: cannot read the drills from Temporal", error=str(exc))
        await asyncio.sleep(every)
