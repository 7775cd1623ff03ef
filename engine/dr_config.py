"""Resolving an environment's disaster-recovery settings (deploy-code.yaml ``environments.X.dr``).

``resolve_dr`` returns the :class:`~engine.contracts.dr.DrSpec` a DR workflow runs, or raises
:class:`~engine.config.InputError` (starters exit 2 on it) before any side effect.
"""

from __future__ import annotations

from engine import catalog
from engine.config import DeployConfig, resolve_environment
from engine.contracts.dr import DrConfig, DrLocal, DrSpec
from engine.errors import InputError

AWS_PROVIDERS = frozenset({"rds", "route53"})
"""DR providers that read ``dr.aws``."""


def resolve_dr(
    config: DeployConfig, environment: str | None = None, *, local: DrLocal | None = None
) -> DrSpec:
    env_spec = resolve_environment(config, environment)
    env = config.environments[env_spec.name]
    dr = env.dr
    if dr is None:
        msg = (
            f"environment {env_spec.name!r} has no disaster recovery configured "
            f"(environments.{env_spec.name}.dr)"
        )
        raise InputError(msg)
    for capability, provider in dr.providers.model_dump().items():
        catalog.require(capability, provider, f"environments.{env_spec.name}.dr.providers.{capability}")
    _check_settings(env_spec.name, dr)
    if dr.providers.regions == "local" and local is None:
        # The environment's own local platform: its regions are the DR regions.
        if env_spec.local is None:
            msg = (
                f"environments.{env_spec.name}.dr: regions 'local' need the local platform "
                f"(environments.{env_spec.name}.providers.platform: local)"
            )
            raise InputError(msg)
        local = DrLocal(state_dir=env_spec.local.state_dir, port_base=env_spec.local.port_base)
    return DrSpec(
        app=config.app.name,
        environment=env_spec.name,
        version=config.app.initial_version,
        regions=list(dr.regions),
        providers=dr.providers,
        instances=dr.instances,
        standby_instances=dr.standby_instances,
        version_drift=dr.version_drift,
        **_workers(config, env_spec.name),
        rpo_budget=dr.rpo_budget,
        health_check_interval=dr.health_check_interval,
        health_check_failures=dr.health_check_failures,
        auto_approve=dr.auto_approve,
        monitor_force=dr.monitor_force,
        synchronous_replication=dr.synchronous_replication,
        catch_up_timeout=dr.catch_up_timeout,
        approvers=env_spec.approvers,
        approval_timeout=env_spec.approval_timeout,
        policy=env_spec.policy,
        local=local if dr.providers.regions == "local" else None,
        aws=dr.aws,
        kubernetes=dr.kubernetes,
    )


def _workers(config: DeployConfig, env: str) -> dict[str, int]:
    """The worker counts of the environment's regions (none when it releases no worker)."""
    chosen = config.environments[env].components
    workers = [
        c for n, c in config.app.components.items() if c.kind == "worker" and (chosen is None or n in chosen)
    ]
    if not workers:
        return {}
    worker = workers[0]
    return {"workers": worker.instances or 0, "standby_workers": worker.standby_instances or 1}


def _check_settings(env: str, dr: DrConfig) -> None:
    """The providers chosen have the settings they read (config error, not a failure mid-failover)."""
    where = f"environments.{env}.dr"
    aws_users = [f"{c} {p!r}" for c, p in (("database", dr.providers.database), ("global_entry",
                 dr.providers.global_entry)) if p in AWS_PROVIDERS]  # fmt: skip
    if aws_users and dr.aws is None:
        msg = (
            f"{where} selects {' and '.join(aws_users)}, which need {where}.aws "
            "(route53_zone_id, api_record_name and per region: aws.region, db_instance_id, record_value)"
        )
        raise InputError(msg)
    if dr.providers.regions == "kubernetes" and dr.kubernetes is None:
        msg = (
            f"{where} selects regions 'kubernetes', which needs {where}.kubernetes "
            "(per region: kubernetes.kubeconfig/context or in_cluster, namespace, app, image)"
        )
        raise InputError(msg)
    if dr.providers.database == "rds" and dr.synchronous_replication:
        msg = (
            f"{where}: RDS cross-region read replicas replicate asynchronously only; "
            "set synchronous_replication: false"
        )
        raise InputError(msg)


def check_region(spec: DrSpec, region: str) -> str:
    """Refuse a region the environment does not have (case-sensitive, with a hint)."""
    if region not in spec.regions:
        hint = ""
        if region.lower() in [r.lower() for r in spec.regions]:
            hint = " (region names are case-sensitive)"
        known = ", ".join(spec.regions)
        msg = f"unknown region {region!r}{hint}; environment {spec.environment!r} has: {known}"
        raise InputError(msg)
    return region
