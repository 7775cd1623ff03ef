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

Preview route (blue-green, as Argo Rollouts' preview service): a second listener
(``aws.preview_listener_arn``, its own port) whose default action forwards to the target
group of the pool being previewed, or answers a fixed 503 while nothing is. Users stay on
the main listener; the switch is the main listener's forward action moving to the other
target group (``set_traffic`` 100/0, health-gated and read back like any split). What the
preview route serves is read back as the healthy registered targets of the target group it
forwards to, so it matches the instances only once the pods are registered there.
"""

from __future__ import annotations

from typing import Any

from clients import aws
from engine.contracts import EnvironmentSpec, Instance, RouterState
from engine.errors import BadRequest

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


class AlbRouter:
    """Traffic split between pools as the weights of an ALB forward action."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._settings = aws.settings_for(env)
        if not self._settings.listener_arn or len(self._settings.target_groups) < 2:
            msg = (
                f"environment {env.name!r}: the ALB router needs aws.listener_arn and aws.target_groups "
                "with a target group per pool (alb_listener_arn, blue/green_target_group_arn)"
            )
            raise BadRequest(msg)
        self._listener = self._settings.listener_arn
        self._rule = self._settings.rule_arn
        self._pools = dict(self._settings.target_groups)
        self._preview = self._settings.preview_listener_arn
        self._env_name = env.name
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
        detail: dict[str, object] = {
            "rule" if self._rule else "listener": self._rule or self._listener,
            "alb_weights": {by_arn.get(a, a): w for a, w in current.items()},
        }
        if self._preview:
            # Also checks the configured preview listener exists, before a release changes anything.
            detail["preview_pool"] = self._preview_pool(self._preview_action())
        return RouterState(weights=shares, detail=detail)

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

    # ---- preview route (blue-green) --------------------------------------------------------------
    def _preview_listener(self) -> dict[str, Any]:
        if not self._preview:
            msg = (
                f"environment {self._env_name!r}: the ALB's preview route needs aws.preview_listener_arn "
                "(alb_preview_listener_arn, a second listener on its own port)"
            )
            raise BadRequest(msg)
        with aws.refusals(*_MISSING, what=f"preview listener {self._preview}"):
            listeners = self._elb.describe_listeners(ListenerArns=[self._preview])["Listeners"]
        if not listeners:
            msg = f"preview listener {self._preview} does not exist"
            raise BadRequest(msg)
        return dict(listeners[0])

    def _preview_action(self) -> dict[str, Any]:
        """The preview listener's one action: forward (to a pool) or fixed-response (nothing)."""
        actions = list(self._preview_listener().get("DefaultActions") or [])
        kinds = [a.get("Type") for a in actions]
        if kinds not in (["forward"], ["fixed-response"]):
            msg = (
                f"preview listener {self._preview} has action(s) {kinds}; the ALB router only rewrites a "
                "single forward or fixed-response action there"
            )
            raise BadRequest(msg)
        return actions[0]

    def _preview_pool(self, action: dict[str, Any]) -> str | None:
        if action.get("Type") != "forward":
            return None
        by_arn = {arn: pool for pool, arn in self._pools.items()}
        live = [arn for arn, weight in self._current(action).items() if weight > 0]
        return by_arn.get(live[0], live[0]) if len(live) == 1 else None

    def set_preview(self, *, members: list[Instance]) -> None:
        pools = sorted({m.pool for m in members})
        if len(pools) > 1:
            msg = f"the preview listener forwards to one target group, not to pools {pools}"
            raise BadRequest(msg)
        if pools and pools[0] not in self._pools:
            msg = f"unknown pool {pools[0]!r} (target groups are configured for {', '.join(self._pools)})"
            raise BadRequest(msg)
        current = self._preview_action()  # exists, and an action we may rewrite: before any change
        if pools:
            with aws.refusals(*_MISSING, what=f"target group of pool {pools[0]!r}"):
                self._elb.describe_target_groups(TargetGroupArns=[self._pools[pools[0]]])
            if current.get("Type") == "forward" and self._preview_pool(current) == pools[0]:
                return
            action: dict[str, Any] = {
                "Type": "forward",
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": self._pools[pools[0]], "Weight": 1}]},
            }
        else:
            if current.get("Type") == "fixed-response":
                return
            action = {
                "Type": "fixed-response",
                "FixedResponseConfig": {
                    "StatusCode": "503",
                    "ContentType": "text/plain",
                    "MessageBody": "no release on the preview route",
                },
            }
        with aws.refusals(*_MISSING, "InvalidConfigurationRequest", what="preview listener action"):
            self._elb.modify_listener(ListenerArn=self._preview, DefaultActions=[action])
        got = self._preview_pool(self._preview_action())
        if got != (pools[0] if pools else None):
            msg = f"the preview listener reads back pool {got}, not {pools[0] if pools else None}"
            raise WeightsNotApplied(msg)

    def read_preview(self) -> list[str]:
        """Healthy registered targets (``ip:port``) of the target group the preview listener forwards to."""
        action = self._preview_action()
        groups = [arn for arn, weight in self._current(action).items() if weight > 0]
        if action.get("Type") != "forward" or len(groups) != 1:
            return []
        with aws.refusals(*_MISSING, what=f"target group {groups[0]} of the preview listener"):
            health = self._elb.describe_target_health(TargetGroupArn=groups[0])
        return sorted(
            f"{t['Target']['Id']}:{t['Target']['Port']}"
            for t in health["TargetHealthDescriptions"]
            if t.get("TargetHealth", {}).get("State") == "healthy"
        )

    def preview_url(self) -> str:
        if self._settings.preview_url:
            return self._settings.preview_url
        listener = self._preview_listener()
        with aws.refusals(*_MISSING, what="load balancer of the preview listener"):
            lbs = self._elb.describe_load_balancers(LoadBalancerArns=[listener["LoadBalancerArn"]])
        dns = lbs["LoadBalancers"][0]["DNSName"]
        return f"{str(listener.get('Protocol', 'HTTP')).lower()}://{dns}:{listener['Port']}"
