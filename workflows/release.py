"""The release pipeline: everything around the strategy, as one durable workflow.

The runbook this replaces (the seed's deploy script and CI job):

1. Pre-deployment validation: the database accepts a connection, Redis answers, the
   external HTTP dependencies answer, the image CI built exists. Any "no" stops here,
   before anything changed.
2. Infrastructure: ``terraform plan``; no changes, go on; changes, show the plan and wait
   for an approver, then apply that saved plan (never a new one).
3. Image promotion: copy the CI image to the production repository by digest, and check
   that production now holds the digest CI built.
4. The strategy (canary, blue-green or rolling) as a child workflow; while it runs,
   controls go to it (``starters/control.py`` follows ``child_workflow_id``) and an abort
   sent here is forwarded to it. A whole-app release (``app.components``, more than one
   region) runs it for the api in the primary region among its other targets: every
   component in every region, one undo stack (``workflows/whole_app.py``).
5. Post-deployment: smoke tests on the live instances, the live image is the promoted
   digest; then the report (every stage: duration, verdict, approver, measurements).

Notifications go to a Slack-compatible webhook at start, when approval is needed, and at
the end. On failure the stages already done are compensated in reverse order where that
makes sense: the strategy restores traffic and instances itself; an applied
infrastructure change is not undone automatically, and the report says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ChildWorkflowError, FailureError

from workflows.operation import Interrupted, cause
from workflows.options import APPLY, CHECK, DELIVER, PLAN, QUICK, call
from workflows.whole_app import WholeApp

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts import (
        Control,
        EnvironmentRef,
        Phase,
        ReleaseResult,
        ReleaseStatus,
        SmokeRequest,
        StageReport,
    )
    from engine.contracts.activities import (
        CHECK_DEPENDENCY,
        IMAGE_PROMOTE,
        IMAGE_RESOLVE,
        IMAGE_VERIFY_LIVE,
        NOTIFY,
        OBSERVE,
        SMOKE_CHECK,
        TERRAFORM_APPLY,
        TERRAFORM_PLAN,
    )
    from engine.contracts.pipeline import (
        STAGES,
        CheckResult,
        ImageFound,
        ImageLookup,
        LiveImageRequest,
        Notification,
        PipelineSpec,
        PromoteRequest,
        PromoteResult,
        TerraformApplied,
        TerraformApplyRequest,
        TerraformPlan,
        TerraformPlanRequest,
    )
    from engine.contracts.windows import DeployWindows
    from engine.windows import closes_at, local_and_utc, next_opening, open_at, waiting_line, why_closed


@workflow.defn(name="Release")
class Release(WholeApp):
    """One release of one version into one environment: checks, infra, image, strategy, checks."""

    @workflow.init
    def __init__(self, pipeline: PipelineSpec) -> None:
        super().__init__(pipeline.release)
        self.pipeline = pipeline
        self.digest: str | None = None
        self._stage_started: dict[str, datetime] = {}
        self.update_status(stages=[StageReport(name=name) for name in STAGES])
        self.init_targets(pipeline.targets)
        self._window_watch: asyncio.Task[None] | None = None
        self._window_watch_done = False
        self._window_closed_at: datetime | None = None
        self._window_child: workflow.ChildWorkflowHandle | None = None

    @workflow.run
    async def run(self, pipeline: PipelineSpec) -> ReleaseResult:
        await self.notify("started", f"Release {self.spec.release_id} ({self.spec.strategy}) started")
        result = await self.execute()
        await self.stop_window_watch()
        report = next(s for s in self.status.stages if s.name == "report")
        if report.verdict == "pending":
            self.stage("report", "failed", detail=f"{result.outcome}: {result.reason}")
        event = {"succeeded": "succeeded", "no_change": "succeeded", "rolled_back": "rolled_back"}
        await self.notify(
            event.get(result.outcome, "failed"),
            f"Release {self.spec.release_id}: {result.outcome.upper()}: {result.reason}",
        )
        return result.model_copy(update={"status": self.query_status()})

    async def release(self) -> ReleaseResult:
        self.set_phase(Phase.PROGRESSING)
        if self.pipeline.undo is not None:  # input-gated: only an undo's run (control.py undo) has one
            await self.check_undo()
        await self.deploy_window()
        await self.pre_validation()
        await self.window_checkpoint()
        await self.infrastructure()
        await self.window_checkpoint()
        await self.promote_image()
        if self.targets and workflow.patched("whole-app"):
            outcome = await self.release_targets()
        else:
            outcome = await self.run_strategy()
        await self.stop_window_watch()
        if outcome.outcome not in ("succeeded", "no_change"):
            return await self.undo_after_strategy(outcome)
        await self.post_deployment()
        self.stage("report", "passed", detail="every stage passed")
        self.set_phase(Phase.SUCCEEDED)
        return self.result(outcome.outcome, outcome.reason)

    async def check_undo(self) -> None:
        """An undo's run (``engine/undo.py``): its approver, named or signed over the run it undoes and
        the version it returns to, before any change; refused (recorded, nothing changed) otherwise."""
        undo, env = self.pipeline.undo, self.env
        assert undo is not None
        if undo.to_version != self.spec.version:
            why = f"the undo returns to {undo.to_version}, but this run releases {self.spec.version}"
            raise Interrupted(why)
        approval = undo.approval
        self.authorize(
            approval,
            "undo",
            env.approvers,
            env.name,
            policy=env.policy,
            subject=undo.to_version,
            run_id=undo.of_run_id,
        )
        how = "the fast path (no analysis, no steps)" if undo.fast else "a normal release (its analysis)"
        reason = "; ".join(r for r in (undo.window, approval.reason) if r)
        what = f"undo {undo.from_version} back to {undo.to_version} by {how}"
        self.decide(what, by=approval.identity, reason=reason)
        if env.policy.required_approvals > 1:
            await self.wait_for_approval(f"undo {undo.from_version} back to {undo.to_version}")

    # ------------------------------------------------------------------ #
    # 0. The deploy window (environments.NAME.deploy_windows, engine/windows.py)
    # ------------------------------------------------------------------ #

    async def deploy_window(self) -> None:
        """Outside the environment's deploy windows, wait (a durable timer) until one opens, unless an
        approver overrides it with a reason; then watch for it closing."""
        windows = self.pipeline.windows
        if windows is None or self.pipeline.ignore_windows or not workflow.patched("deploy-window"):
            return
        while not self._window_overridden and not open_at(windows, now := workflow.now()):
            opens = next_opening(windows, now)
            if opens is None:
                raise Interrupted(f"no deploy window opens within two years: {why_closed(windows, now)}")
            if not self._window_waiting:
                line = waiting_line(windows, now)
                self.hold_for_window(line, waiting=True)
                self.set_phase(Phase.PAUSED)
                self.update_status(step=line)
                self.decide(line, reason=why_closed(windows, now))
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not self._window_waiting or self._interrupt is not None, timeout=opens - now
                )
            self.check_interrupt()
        if self._window_waiting:
            self._paused, self._pause_reason = False, ""
            self._window_paused = self._window_waiting = False
            self.decide(f"the deploy window opened ({local_and_utc(windows, workflow.now())})")
        self.set_phase(Phase.PROGRESSING)
        self.update_status(step="")
        if not self._window_overridden:
            self._window_watch = asyncio.ensure_future(self._watch_window(windows))

    def windows_apply(self) -> bool:
        return self.pipeline.windows is not None and not self.pipeline.ignore_windows

    async def _watch_window(self, windows: DeployWindows) -> None:
        """When the window closes: the strategy's child pauses after its current step (``window-closed``),
        the pipeline before its next stage or target; resume or override-window goes on."""
        while True:
            now = workflow.now()
            closes = closes_at(windows, now)
            if closes is None:
                return
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._window_overridden or self._window_watch_done, timeout=closes - now
                )
            if self._window_overridden or self._window_watch_done:
                return
            now = workflow.now()
            opens = next_opening(windows, now)
            again = f"it opens again at {local_and_utc(windows, opens)}" if opens else "no window opens soon"
            reason = f"closed at {local_and_utc(windows, closes)} ({why_closed(windows, now)}); {again}"
            self.hold_for_window(f"the deploy window closed: {reason}")
            self._window_closed_at = now
            self.decide("pause: the deploy window closed", reason=reason)
            child = self._window_child
            if child is not None:
                try:
                    await child.signal("window-closed", Control(identity="deploy-window", reason=reason))
                except FailureError as exc:  # it ended meanwhile: the pipeline holds before what is next
                    self.decide("the strategy ended before the window-closed signal", reason=str(exc))

    async def window_checkpoint(self) -> None:
        """Between stages and targets: hold while the deploy window's pause lasts (resume, override)."""
        if self._window_paused:
            await self.checkpoint()

    async def stop_window_watch(self) -> None:
        """The release's changes are done (or being undone): windows no longer pause it."""
        self._window_watch_done = True
        if self._window_watch is not None:
            await self._window_watch
            self._window_watch = None

    def _after_window_pause(self, child: ReleaseStatus) -> None:
        """The strategy's child paused for the closed window and an approver let it go on (resume or
        override-window, there): so does the pipeline."""
        since = self._window_closed_at
        given = {a.action for a in child.approvals if since is not None and a.at >= since}
        if "override-window" in given and not self._window_overridden:
            self._window_overridden = True
            self.decide("deploy window overridden (in the strategy's workflow): windows no longer pause")
        if given & {"override-window", "resume"} and self._window_paused:
            self._paused, self._pause_reason, self._window_paused = False, "", False

    # ------------------------------------------------------------------ #
    # 1. Pre-deployment validation
    # ------------------------------------------------------------------ #

    async def pre_validation(self) -> None:
        self.stage("pre-validation", "running")
        calls = [
            call(CHECK_DEPENDENCY, check, summary=f"check {check.name}", **CHECK)
            for check in self.pipeline.checks
        ]
        results: list[CheckResult] = list(await self.guarded(lambda: asyncio.gather(*calls)))
        image = self.pipeline.image
        if image is not None:
            try:
                found: ImageFound = await self.guarded(
                    lambda: call(
                        IMAGE_RESOLVE,
                        ImageLookup(image=image, repository=image.ci_repository),
                        summary=f"image {image.ci_repository}:{image.tag}",
                        **CHECK,
                    )
                )
            except ActivityError as exc:
                # No new command: the stage says why instead of staying "running" forever.
                why = f"pre-deployment validation failed: image: {cause(exc)}"
                self.stage("pre-validation", "failed", detail=why)
                raise Interrupted(why) from exc
            self.digest = found.digest
            where = f"{image.registry}/{image.ci_repository}:{image.tag}"
            results.append(
                CheckResult(
                    kind="image",
                    name="image",
                    target=where,
                    ok=found.digest is not None,
                    message=f"{where} is {found.digest}" if found.digest else f"{where} does not exist",
                )
            )
        measurements: dict[str, str | float | int | bool | None] = {
            r.name: ("ok" if r.ok else "FAILED") + f": {r.message}" for r in results
        }
        for r in results:
            self.decide(f"check {r.name}: {'ok' if r.ok else 'FAILED'}", reason=r.message)
        failed = [r for r in results if not r.ok]
        if failed:
            why = "pre-deployment validation failed: " + "; ".join(f"{r.name}: {r.message}" for r in failed)
            self.stage("pre-validation", "failed", detail=why, measurements=measurements)
            raise Interrupted(why)
        detail = f"{len(results)} checks passed" if results else "no checks configured"
        self.stage(
            "pre-validation", "passed" if results else "skipped", detail=detail, measurements=measurements
        )

    # ------------------------------------------------------------------ #
    # 2. Infrastructure
    # ------------------------------------------------------------------ #

    async def infrastructure(self) -> None:
        tf = self.pipeline.terraform
        if tf is None:
            self.stage("infrastructure", "skipped", detail="no terraform root configured")
            return
        self.stage("infrastructure", "running")
        plan: TerraformPlan = await self.guarded(
            lambda: call(
                TERRAFORM_PLAN,
                TerraformPlanRequest(terraform=tf, plan_id=workflow.info().run_id),
                summary="terraform plan",
                **PLAN,
            )
        )
        if not plan.changes:
            self.stage("infrastructure", "passed", detail="terraform plan: no changes")
            return
        summary = "; ".join(plan.summary)
        self.stage(
            "infrastructure",
            "waiting",
            detail=f"plan: {summary}",
            measurements={"changes": len(plan.summary)},
        )
        await self.notify(
            "approval_needed",
            f"Release {self.spec.release_id} waits for approval of a Terraform change: {summary}. "
            f"Approve: python starters/control.py approve --env {self.env.name}",
        )
        await self.wait_for_approval(f"terraform plan: {summary}")
        approver = next((d.by for d in reversed(self.status.decisions) if d.what == "approved"), None)
        self.on_failure_undo(
            "keep the applied infrastructure change (not undone automatically)", self._infra_stays
        )
        applied: TerraformApplied = await self.guarded(
            lambda: call(
                TERRAFORM_APPLY,
                TerraformApplyRequest(terraform=tf, plan=plan),
                summary="terraform apply (the approved plan)",
                **APPLY,
            )
        )
        self.stage(
            "infrastructure",
            "passed",
            approver=approver,
            detail=f"applied the approved plan: {summary}",
            measurements={"state_serial": applied.serial, "resumed": applied.resumed},
        )

    async def _infra_stays(self) -> None:
        self.stage(
            "infrastructure",
            "passed",
            detail="the applied change is NOT undone automatically: revert it in Terraform if needed",
            keep_duration=True,
        )

    # ------------------------------------------------------------------ #
    # 3. Image promotion
    # ------------------------------------------------------------------ #

    async def promote_image(self) -> None:
        image = self.pipeline.image
        if self.pipeline.expected_digest is not None:  # input-gated: only a train's later stage sets it
            self._check_expected_digest()
        if image is None or self.digest is None:
            self.stage("image promotion", "skipped", detail="no registry configured")
            return
        self.stage("image promotion", "running")
        digest = self.digest
        promoted: PromoteResult = await self.guarded(
            lambda: call(
                IMAGE_PROMOTE,
                PromoteRequest(image=image, digest=digest),
                summary=f"promote {image.tag} by digest",
                **QUICK,
            )
        )
        if promoted.digest != digest:
            why = f"production holds {promoted.digest}, CI built {digest}"
            self.stage("image promotion", "failed", detail=why)
            raise Interrupted(why)
        self.decide(f"promoted {image.production_repository}:{image.tag} = {digest}")
        self.stage(
            "image promotion",
            "passed",
            detail=f"{image.ci_repository} -> {image.production_repository}:{image.tag}, digest verified",
            measurements={"digest": digest, "previous_digest": promoted.previous_digest},
        )

    def _check_expected_digest(self) -> None:
        """A promotion train's later stage releases the digest its first stage promoted: refused, before
        anything is promoted, when the CI tag resolved (pre-validation) to another one."""
        expected, image = self.pipeline.expected_digest, self.pipeline.image
        where = f"{image.ci_repository}:{image.tag}" if image is not None else "no image registry"
        if image is not None and self.digest == expected:
            self.decide(f"{where} is {expected}, the digest the promotion train carries")
            return
        found = f"{where} is {self.digest}" if image is not None else f"{self.env.name} has no image registry"
        why = f"digest mismatch: {found}, the promotion train carries {expected} (released before)"
        self.stage("image promotion", "failed", detail=why, measurements={"expected_digest": expected})
        raise Interrupted(why)

    # ------------------------------------------------------------------ #
    # 4. The strategy
    # ------------------------------------------------------------------ #

    async def run_strategy(self) -> ReleaseResult:
        self.stage("strategy", "running", detail=f"{self.spec.strategy} ({self.pipeline.workflow_type})")
        child_id = f"{workflow.info().workflow_id}-{self.spec.strategy}"
        await self.window_checkpoint()
        self.check_interrupt()
        handle = await workflow.start_child_workflow(
            self.pipeline.workflow_type,
            self.spec,
            id=child_id,
            result_type=ReleaseResult,
            static_summary=f"{self.spec.strategy} of {self.spec.version} (release pipeline)",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(names.ENVIRONMENT, self.env.name),
                    SearchAttributePair(names.VERSION, self.spec.version),
                    SearchAttributePair(names.STRATEGY, self.spec.strategy),
                    SearchAttributePair(names.PHASE, Phase.PENDING.value),
                ]
            ),
        )
        self.decide(f"{self.spec.strategy} runs as child workflow {child_id}")
        try:
            outcome = await self.follow_child(handle, child_id)
        except ChildWorkflowError as exc:
            why = f"the {self.spec.strategy} workflow failed: {cause(exc)}"
            self.stage("strategy", "failed", detail=why)
            raise Interrupted(why) from exc
        child = outcome.status
        self.update_status(
            decisions=[*self.status.decisions, *child.decisions],
            approvals=[*self.status.approvals, *child.approvals],
            last_analysis=child.last_analysis,
            evidence=child.evidence,
            canary_weight=child.canary_weight,
            stable_version=child.stable_version,
            stable_pool=child.stable_pool,
            canary_pool=child.canary_pool,
        )
        approvers = sorted(
            {a.by for a in child.approvals} | {d.by for d in child.decisions if d.what == "approved"}
        )
        self.stage(
            "strategy",
            "passed" if outcome.outcome in ("succeeded", "no_change") else "failed",
            approver=", ".join(approvers) or None,
            detail=f"{outcome.outcome}: {outcome.reason}",
            measurements={
                "live_version": outcome.live_version,
                "steps": child.step_count,
                **{m.metric: m.value for m in child.last_analysis},
                **{
                    f"{e.template}/{e.metric}": f"{e.verdict}: {e.unit} canary {_g(e.canary)}, "
                    f"baseline {_g(e.baseline)}; {e.statistic} {_g(e.value)} (fails at {_g(e.bound)}); "
                    f"requests {e.canary_requests}/{e.baseline_requests}"
                    for e in child.evidence
                },
            },
        )
        return outcome

    async def follow_child(
        self, handle: workflow.ChildWorkflowHandle, child_id: str, *, forward_abort: bool = True
    ) -> ReleaseResult:
        """The child's result; controls go to it meanwhile, and an abort sent here is forwarded
        (not to a child that undoes: an abort is what started it)."""
        self.update_status(child_workflow_id=child_id)
        self._window_child = handle if forward_abort else None  # an undoing child ignores windows
        task = asyncio.ensure_future(self._child_result(handle))
        if forward_abort:
            await workflow.wait_condition(lambda: task.done() or self._interrupt is not None)
            if self._interrupt is not None and not task.done():
                # The child undoes its own changes; wait until it has.
                control = Control(identity=self._interrupt.by, reason=self._interrupt.reason)
                await handle.signal("abort-signal", control)
        await workflow.wait_condition(task.done)
        self.update_status(child_workflow_id=None)
        self._window_child = None
        if self._window_closed_at is not None and forward_abort:
            self._after_window_pause(task.result().status)
        return task.result()

    @staticmethod
    async def _child_result(handle: workflow.ChildWorkflowHandle) -> ReleaseResult:
        return await handle

    async def undo_after_strategy(self, outcome: ReleaseResult) -> ReleaseResult:
        """The strategy rolled back (or failed) by itself; undo what this pipeline did before it."""
        self.set_phase(Phase.ROLLING_BACK)
        ended = self.spec.strategy if not self.targets else "release"
        self.decide(f"the {ended} ended {outcome.outcome}", reason=outcome.reason)
        await self._compensations.run(lambda what: self.decide(f"undo: {what}"))
        self.stage("report", "failed", detail=f"{outcome.outcome}: {outcome.reason}")
        self.set_phase(Phase.ROLLED_BACK if outcome.outcome == "rolled_back" else Phase.FAILED)
        return self.result(outcome.outcome, outcome.reason, live_version=outcome.live_version)

    # ------------------------------------------------------------------ #
    # 5. Post-deployment
    # ------------------------------------------------------------------ #

    async def post_deployment(self) -> None:
        self.stage("post-deployment", "running")
        self.point_of_no_return("the strategy promoted the release; post-deployment checks follow")
        live = await call(
            OBSERVE,
            EnvironmentRef(environment=self.env),
            summary="observe after release",
            **QUICK,
        )
        instances = [i for i in live.instances if i.version == self.spec.version]
        serving = {p for p, w in live.router.weights.items() if w > 0}
        smoke = await call(
            SMOKE_CHECK,
            SmokeRequest(
                environment=self.env,
                instances=instances,
                path=self.spec.app.health_path,
                expect_version=self.spec.version,
            ),
            summary=f"post-deployment smoke on {len(instances)} instances",
            **QUICK,
        )
        problems = list(smoke.failures)
        if not instances:
            problems.append(f"no instance runs {self.spec.version}")
        if serving != {i.pool for i in instances}:
            problems.append(f"traffic goes to {sorted(serving)}, {self.spec.version} runs in other pools")
        measurements: dict[str, str | float | int | bool | None] = {
            "instances": len(instances),
            "smoke_checked": smoke.checked,
            "traffic": ", ".join(f"{p} {w:g}%" for p, w in sorted(live.router.weights.items())),
        }
        if self.pipeline.image is not None and self.digest is not None:
            image = await call(
                IMAGE_VERIFY_LIVE,
                LiveImageRequest(environment=self.env, version=self.spec.version, digest=self.digest),
                summary="the live image is the promoted digest",
                **QUICK,
            )
            measurements["live_image"] = image.message
            if not image.ok:
                problems.append(image.message)
        if problems:
            why = "post-deployment checks failed: " + "; ".join(problems)
            self.stage("post-deployment", "failed", detail=why, measurements=measurements)
            # Past the point of no return: the previous version is retired, nothing to restore.
            msg = f"{why} (the release is live; deploy the previous version to go back)"
            raise Interrupted(msg)
        self.stage("post-deployment", "passed", detail="smoke tests passed", measurements=measurements)

    # ------------------------------------------------------------------ #
    # Report and notifications
    # ------------------------------------------------------------------ #

    def stage(
        self,
        name: str,
        verdict: str,
        *,
        detail: str = "",
        approver: str | None = None,
        measurements: dict[str, str | float | int | bool | None] | None = None,
        keep_duration: bool = False,
    ) -> None:
        now = workflow.now()
        if verdict in ("running", "waiting") and name not in self._stage_started:
            self._stage_started[name] = now
        stages = []
        for s in self.status.stages:
            if s.name == name:
                started = self._stage_started.get(name, now)
                changes: dict[str, object] = {"verdict": verdict, "detail": detail or s.detail}
                if not keep_duration:
                    changes["duration_s"] = round((now - started).total_seconds(), 3)
                if approver is not None:
                    changes["approver"] = approver
                if measurements is not None:
                    changes["measurements"] = measurements
                s = s.model_copy(update=changes)  # noqa: PLW2901 - the updated copy replaces it
            stages.append(s)
        self.update_status(stages=stages)
        if verdict not in ("running",):
            self.decide(f"stage {name}: {verdict}", reason=detail)

    async def notify(self, event: str, text: str) -> None:
        url = self.pipeline.webhook_url
        if not url:
            return
        try:
            await call(
                NOTIFY,
                Notification(url=url, event=event, text=text),
                summary=f"notify {event}",
                **DELIVER,
            )
        except ActivityError as exc:
            workflow.logger.warning("notification %s not delivered: %s", event, cause(exc))
            self.decide(f"notification {event} not delivered", reason=cause(exc))


def _g(value: float | None) -> str:
    """A measurement for the report: four significant digits, or "-"."""
    return "-" if value is None else f"{value:.4g}"
