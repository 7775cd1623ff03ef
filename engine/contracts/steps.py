"""Canary steps (Argo Rollouts' vocabulary): set a weight, pause, analyse."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from engine.contracts.scalars import Duration, Percent, Strict


class SetWeightStep(Strict):
    """Send this percentage of traffic to the canary."""

    set_weight: Percent


class PauseSpec(Strict):
    duration: Duration | None = None


class PauseStep(Strict):
    """Hold for a duration, or (without one) until an approver approves."""

    pause: PauseSpec


class AnalysisStepSpec(Strict):
    templates: Annotated[list[str], Field(min_length=1)]


class AnalysisStep(Strict):
    """Run the named analysis templates to a verdict before going on."""

    analysis: AnalysisStepSpec


CanaryStep = SetWeightStep | PauseStep | AnalysisStep


def describe_step(step: CanaryStep) -> str:
    """A one-line, human description of a canary step."""
    match step:
        case SetWeightStep(set_weight=w):
            return f"set weight {w}%"
        case PauseStep(pause=PauseSpec(duration=None)):
            return "pause for approval"
        case PauseStep(pause=PauseSpec(duration=d)):
            return f"pause {d}"
        case AnalysisStep(analysis=a):
            return f"analysis {', '.join(a.templates)}"
    return repr(step)
