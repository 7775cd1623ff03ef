"""Every provider this engine ships: the one table that configuration and the registry read.

``deploy-code.yaml`` names a provider per capability (``router: haproxy``); configuration
checks the name here before any side effect, and ``activities/registry.py`` builds the
provider from its ``target`` (imported on first use, so a worker without boto3 or the
kubernetes client still serves the local providers). Adding a provider is one file under
``activities/<capability>/`` plus one line here; ``tests/unit/test_provider_types.py``
has mypy check every entry against its capability's Protocol (and a router against the
Protocol of each extra it claims), so this table cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError

RouterExtra = str
"""``preview``: a second route serving only chosen instances (``PreviewRouter``; blue-green needs
it). ``drain``: no new requests to chosen instances, with their in-flight count (``DrainRouter``;
rolling needs it). ``baseline``: a split over three pools, so a canary's fresh baseline takes
traffic beside it (a canary judged against ``baseline: fresh`` needs it)."""
EXTRA_PROTOCOL = {"preview": "PreviewRouter", "drain": "DrainRouter", "baseline": "Router"}
"""The Protocol a router claiming each extra must satisfy (tests/unit/test_provider_types.py)."""


@dataclass(frozen=True)
class Provider:
    """One implementation of one capability."""

    target: str
    """``module:Class``; the class is built from the capability's spec (see the registry)."""
    extras: frozenset[RouterExtra] = frozenset()
    note: str = ""


def _p(target: str, *extras: RouterExtra, note: str = "") -> Provider:
    return Provider(target=target, extras=frozenset(extras), note=note)


SIMULATED = "no I/O, state in the worker's memory: benchmarks and dry exercises, never a real environment"

CATALOG: dict[str, dict[str, Provider]] = {
    "platform": {
        "local": _p("activities.platform.local:LocalPlatform"),
        "kubernetes": _p("activities.platform.kubernetes:KubernetesPlatform"),
        "simulated": _p("activities.platform.simulated:SimulatedPlatform", note=SIMULATED),
    },
    "router": {
        "haproxy": _p("activities.router.haproxy:HAProxyRouter", "preview", "drain", "baseline"),
        "dispatch-local": _p("activities.router.dispatch_local:LocalDispatchRouter", "drain"),
        "alb": _p("activities.router.alb:AlbRouter", "preview"),
        "kubernetes": _p("activities.router.kubernetes:KubernetesRouter", "preview"),
        "simulated": _p(
            "activities.router.simulated:SimulatedRouter", "preview", "drain", "baseline", note=SIMULATED
        ),
    },
    "analysis": {
        "prometheus": _p("activities.analysis.prometheus:PrometheusMetrics"),
        "cloudwatch": _p("activities.analysis.cloudwatch:CloudWatchMetrics"),
        "simulated": _p("activities.analysis.simulated:SimulatedMetrics", note=SIMULATED),
    },
    "smoke": {
        "http": _p("activities.smoke.http:HttpSmoke"),
        "simulated": _p("activities.smoke.simulated:SimulatedSmoke", note=SIMULATED),
    },
    "images": {  # built from an ImageSpec (the release pipeline's image stage)
        "oci": _p("clients.oci:RegistryClient"),
        "ecr": _p("clients.ecr:EcrImages"),
    },
    # Disaster recovery: built from a DrSpec.
    "database": {
        "postgres-local": _p("activities.database.postgres_local:LocalPostgres"),
        "rds": _p("activities.database.rds:RdsDatabase", note="reads DrSpec.aws"),
    },
    "global_entry": {
        "haproxy-local": _p("activities.global_entry.haproxy_local:LocalGlobalEntry"),
        "route53": _p("activities.global_entry.route53:Route53GlobalEntry", note="reads DrSpec.aws"),
    },
    "regions": {
        "local": _p("activities.regions.local:LocalRegions"),
        "kubernetes": _p("activities.regions.kubernetes:KubernetesRegions", note="reads DrSpec.kubernetes"),
    },
}


def names(capability: str) -> tuple[str, ...]:
    """The provider names of a capability, as deploy-code.yaml writes them."""
    return tuple(CATALOG[capability])


def require(capability: str, name: str, where: str) -> Provider:
    """The provider, or an :class:`InputError` naming ``where`` it was asked for and what exists."""
    provider = CATALOG[capability].get(name)
    if provider is None:
        known = ", ".join(CATALOG[capability])
        msg = f"{where}: no {capability} provider named {name!r} in this engine (available: {known})"
        raise InputError(msg)
    return provider


def router_has(router: str, extra: RouterExtra) -> bool:
    """Whether the named router offers ``extra`` (``preview`` or ``drain``)."""
    provider = CATALOG["router"].get(router)
    return provider is not None and extra in provider.extras
