"""The dashboard's pages as rendered for what a release can be in (no platform): where approvals are
signed the browser gets no Approve button but the command to sign with; a chart says when it has no
data; a finished release offers no controls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.contracts import Decision, Phase, ReleaseStatus
from engine.contracts.dr import DrReport, DrStatus
from harness.browser import elements
from starters.dashboard import History, ReleaseView, dr_page, release_page, svg_chart

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def view(approvals: str, *, running: bool = True) -> ReleaseView:
    status = ReleaseStatus(
        release="sample-api/production@v1.2.3",
        version="v1.2.3",
        strategy="canary",
        environment="production",
        phase=Phase.AWAITING_APPROVAL,
        step_index=2,
        step_count=3,
        step="pause for approval",
        canary_weight=5,
        awaiting_approval=True,
    )
    return ReleaseView(
        workflow_id="release-sample-api-production",
        run_id="r1",
        running=running,
        status=status,
        strategy_status=status,
        steps=["set weight 5%", "pause for approval", "set weight 50%"],
        history=History(),
        strategy_history=History(),
        approvals=approvals,
    )


def buttons(dom: str) -> set[str]:
    return {b.attrs["data-testid"] for c in elements(dom, "controls") for b in c.all("button")}


def test_signed_approvals_get_the_cli_command_not_a_button() -> None:
    dom = release_page(view("signed"), token="t")
    assert buttons(dom) == {"button-pause", "button-abort"}
    (hint,) = elements(dom, "signed-approval")
    assert "python starters/control.py approve --env production --key" in hint.text
    assert buttons(release_page(view("named"), token="t")) == {
        "button-pause",
        "button-abort",
        "button-approve",
    }


def test_a_finished_release_has_no_controls_and_marks_no_step() -> None:
    dom = release_page(view("named", running=False), token="t")
    assert not elements(dom, "controls") and not elements(dom, "current-step")
    assert len(elements(dom, "step-item")) == 3


def test_charts_carry_their_data_or_say_they_have_none() -> None:
    empty = svg_chart("chart-x", {}, title="nothing")
    (svg,) = elements(empty, "chart-x")
    assert svg.attrs["data-points"] == "0" and "no data yet" in svg.text
    series = {"canary": [(T0, 0.0), (T0 + timedelta(seconds=5), 30.0)], "stable": [(T0, 100.0)]}
    (svg,) = elements(svg_chart("chart-w", series, title="w", y_range=(0, 100), steps=True), "chart-w")
    assert svg.attrs["data-points"] == "3"
    assert [c.attrs["data-v"] for c in svg.all("circle")] == ["0", "30", "100"]
    (bound,) = elements(
        svg_chart("chart-e", {"e": [(T0, 2.0)]}, title="e", log=True, bound=400), "chart-e-bound"
    )
    assert bound.tag == "line"


def test_a_failover_page_shows_its_decisions_and_what_it_measured() -> None:
    report = DrReport(kind="failover", from_region="A", to_region="B", started_at=T0, rto_seconds=4.2)
    status = DrStatus(
        operation="failover A -> B",
        phase=Phase.SUCCEEDED,
        decisions=[Decision(at=T0, what="promoted B")],
        report=report,
    )
    dom = dr_page("dr-failover-sample-api-local", "r1", status, "succeeded: B serves", running=False)
    assert [d.text for d in elements(dom, "decisions")[0].all("td")][1] == "promoted B"
    fields = {f.attrs["data-field"]: f.all("td")[1].text for f in elements(dom, "report-field")}
    assert fields["rto_seconds"] == "4.2" and fields["to_region"] == "B"
