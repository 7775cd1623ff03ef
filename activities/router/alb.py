"""Router provider: an AWS Application Load Balancer's weighted forward action.

Each pool is a target group (Terraform outputs ``blue_target_group_arn`` and
``green_target_group_arn``); the split is the weights of one forward action with both
target groups, on the listener's default action (``alb_listener_arn``) or on one listener
rule (``aws.rule_arn``). Canary is any split; blue-green is the switch 0/100 -> 100/0.

Before a change: the listener (or rule) and the target groups must exist and the action
must be a forward action (anything else is refused, nothing is changed); a target group
about to take more traffic must have healthy targets (``describe_target_health``). After
it: the weights are read back and compared with what was sent. Weights are validated
against AWS's limits (0-999) here, not left to the API. The targets themselves are
registered by whoever runs the pods (on EKS, the AWS Load Balancer Controller), so
``members`` is only checked for emptiness.
"""

from __future__ import annotations

from typing import Any

from activities.cloud import aws
from activities.interfaces import BadRequest
from engine.contracts import AwsSettings, EnvironmentSpec, Instance, RouterState

MAX_WEIGHT = 999
"""AWS: a target group's weight in a forward action is 0-999."""
_MISSING = ("ListenerNotFound", "RuleNotFound", "TargetGroupNotFound", "ValidationError")


class NoHealthyTargets(RuntimeError):
    """A target group about to take traffic has no healthy target yet (retryable: targets register)."""


class WeightsNotApplied(RuntimeError):
    """The load balancer accepted a change but reads back something else (retryable)."""


def alb_weights(weights: dict[str, int]) -> dict[str, int]:
    """Percent per pool -> ALB weights (the same integers), validated against AWS's limits."""
    for pool, weight in weights.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= MAX_WEIGHT:
            msg = f"weight {weight!r} of pool {pool!r} is outside the ALB's 0-{MAX_WEIGHT}"
            raise BadRequest(msg)
    if sum(weights.values()) == 0:
        msg = "a split must send traffic somewhere (every weight is 0)"
        raise BadRequest(msg)
    return dict(weights)


def settings_for(env: EnvironmentSpec) -> AwsSettings:
    if env.aws is None:
        msg = f"environment {env.name!r} has no aws settings (environments.{env.name}.aws)"
        raise BadRequest(msg)
    return env.aws


class AlbRouter:
    """Traffic split between pools as the weights of an ALB forward action."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._settings = settings_for(env)
        if not self._settings.listener_arn or len(self._settings.target_groups) < 2:
            msg = (
                f"environment {env.name!r}: the ALB router needs aws.listener_arn and aws.target_groups "
                "with a target group per pool (alb_listener_arn, blue/green_target_group_arn)"
            )
            raise BadRequest(msg)
        self._listener = self._settings.listener_arn
        self._rule = self._settings.rule_arn
        self._pools = dict(self._settings.target_groups)
        self._elb = aws.client(self._settings, "elbv2")

    # ---- reading -------------------------------------------------------------------------------
    def _actions(self) -> list[dict[str, Any]]:
        what = f"rule {self._rule}" if self._rule else f"listener {self._listener}"
        with aws.refusals(*_MISSING, what=what):
            if self._rule:
                rules = self._elb.describe_rules(RuleArns=[self._rule])["Rules"]
                return list(rules[0]["Actions"]) if rules else []
            listeners = self._elb.describe_listeners(ListenerArns=[self._listener])["Listeners"]
            return list(listeners[0]["DefaultActions"]) if listeners else []

    def _forward(self) -> dict[str, Any]:
        """The one forward action; anything else is refused (we never rewrite other actions)."""
        actions = self._actions()
        where = f"rule {self._rule}" if self._rule else f"listener {self._listener}"
        kinds = [a.get("Type") for a in actions]
        if kinds != ["forward"]:
            msg = (
                f"{where} has action(s) {kinds}; the ALB router only rewrites a single forward action "
                "(change the listener to forward to the blue/green target groups first)"
            )
            raise BadRequest(msg)
        return actions[0]

    def _current(self, action: dict[str, Any]) -> dict[str, int]:
        """Target group ARN -> weight of a forward action."""
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        return {action["TargetGroupArn"]: 1} if action.get("TargetGroupArn") else {}

    def read(self) -> RouterState:
        current = self._current(self._forward())
        by_arn = {arn: pool for pool, arn in self._pools.items()}
        total = sum(current.values())
        shares = {pool: 0.0 for pool in self._pools}
        for arn, weight in current.items():
            shares[by_arn.get(arn, arn)] = 100.0 * weight / total if total else 0.0
        return RouterState(
            weights=shares,
            detail={
                "rule" if self._rule else "listener": self._rule or self._listener,
                "alb_weights": {by_arn.get(a, a): w for a, w in current.items()},
            },
        )

    def healthy_targets(self, pool: str) -> int:
        with aws.refusals(*_MISSING, what=f"target group of pool {pool!r}"):
            health = self._elb.describe_target_health(TargetGroupArn=self._pools[pool])
        return sum(
            1
            for t in health["TargetHealthDescriptions"]
            if t.get("TargetHealth", {}).get("State") == "healthy"
        )

    # ---- writing -------------------------------------------------------------------------------
    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(self._pools))
        if unknown:
            msg = f"unknown pool(s) {unknown} (target groups are configured for {', '.join(self._pools)})"
            raise BadRequest(msg)
        wanted = alb_weights({pool: weights.get(pool, 0) for pool in self._pools})
        for pool, weight in wanted.items():
            if weight > 0 and not members.get(pool):
                msg = f"pool {pool!r} is asked {weight}% but has no instances behind it"
                raise BadRequest(msg)
        action = self._forward()
        with aws.refusals(*_MISSING, what="target groups"):
            self._elb.describe_target_groups(TargetGroupArns=list(self._pools.values()))
        by_arn = {arn: pool for pool, arn in self._pools.items()}
        before = {by_arn.get(a, a): w for a, w in self._current(action).items()}
        total_before = sum(before.values()) or 1
        for pool, weight in wanted.items():
            gains = weight / sum(wanted.values()) > before.get(pool, 0) / total_before
            if gains and self.healthy_targets(pool) == 0:
                msg = f"target group of pool {pool!r} has no healthy targets; not shifting traffic to it"
                raise NoHealthyTargets(msg)
        forward: dict[str, Any] = {
            "TargetGroups": [{"TargetGroupArn": self._pools[p], "Weight": w} for p, w in wanted.items()]
        }
        stickiness = (action.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")
        if stickiness:
            forward["TargetGroupStickinessConfig"] = stickiness
        new_action = {"Type": "forward", "ForwardConfig": forward}
        with aws.refusals(*_MISSING, "InvalidConfigurationRequest", what="forward action"):
            if self._rule:
                self._elb.modify_rule(RuleArn=self._rule, Actions=[new_action])
            else:
                self._elb.modify_listener(ListenerArn=self._listener, DefaultActions=[new_action])
        got = {by_arn.get(a, a): w for a, w in self._current(self._forward()).items()}
        if {p: got.get(p, 0) for p in self._pools} != wanted:
            msg = f"the load balancer reads back weights {got}, not {wanted}"
            raise WeightsNotApplied(msg)
        total = sum(wanted.values())
        return {p: 100.0 * w / total for p, w in wanted.items()}
