"""DR Regions provider for EKS: one cluster (kubeconfig context) per region, one Deployment each.

Settings: ``DrSpec.kubernetes`` (:class:`~engine.contracts.dr.KubernetesDrSettings`): per
region a :class:`~engine.contracts.KubernetesSettings` (cluster, namespace, app) and the
pool; the region's Deployment is ``{app}-{pool}``, the same name the ``kubernetes``
platform provider gives it (both use ``clients.kube.Deployments``).

* ``scale``: the Deployment's ``scale`` subresource, then the rollout wait of
  :class:`clients.kube.Deployments` (observedGeneration caught up,
  updated/ready/available = replicas; fails at once on ImagePullBackOff, CrashLoopBackOff,
  a progress deadline), reporting progress (the activity heartbeats). A missing Deployment
  is refused by name.
* ``use_database``: sets the app container's env ``DATABASE_HOST`` (the RDS endpoint of the
  region's database instance with ``dr.aws``, else ``database_host``) and ``DATABASE_NODE``
  (the DR region of that database); None: both empty, the instances refuse writes. It
  patches the pod template (resourceVersion-checked) and does not wait: the change reaches
  the pods through the rollout the next ``scale`` waits for; a region whose writes are being
  stopped is protected at once by the database fence, not by this (and when that region's
  cluster does not answer, ``use_database(region, None)`` logs it and returns).
* ``writes_to``: ``DATABASE_NODE`` of the Deployment's pod template (None when empty, and
  when the cluster does not answer: a lost region must not stop the failover's observation).
* ``health``: the Deployment exists, has available replicas and no broken pod; and, when
  ``health_url`` is set, the region's own entry (its ALB) answers 200 there.
* ``versions``: the ``version`` label of the api's Deployment and of the workers' (``worker``:
  a Deployment of its own, such as ``claude-deployment-worker``); ``converge``: a component's
  image tag and label set to a version (a Kubernetes rolling update of that Deployment), then
  the rollout waited for (progress deadline, crash-looping pods fail it at once). A failover
  converges a standby to what is live; a release converges each standby region and the
  workers of every region to the version it ships (``workflows/whole_app.py``).
* ``scale`` scales the workers with the api: ``dr.workers`` where users are, ``standby_workers``
  elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import structlog
import urllib3
from kubernetes import client

from activities.interfaces import Progress
from clients import kube
from engine.contracts.dr import DrSpec, KubernetesDrRegion, KubernetesDrSettings, KubernetesWorker
from engine.contracts.scalars import POOLS
from engine.errors import BadRequest

log = structlog.get_logger()


class KubernetesRegions:
    def __init__(self, spec: DrSpec) -> None:
        if spec.kubernetes is None:
            env = spec.environment
            msg = f"environment {env!r} has no Kubernetes DR settings (environments.{env}.dr.kubernetes)"
            raise BadRequest(msg)
        self.spec = spec
        self.settings: KubernetesDrSettings = spec.kubernetes
        self._clusters: dict[str, kube.Deployments] = {}
        self._rds: Any = None

    def _conf(self, region: str) -> KubernetesDrRegion:
        conf = self.settings.regions.get(region)
        if conf is None:
            msg = f"unknown region {region!r} (regions: {', '.join(self.settings.regions)})"
            raise BadRequest(msg)
        return conf

    def _cluster(self, region: str) -> kube.Deployments:
        if region not in self._clusters:
            self._clusters[region] = kube.Deployments(self._conf(region).kubernetes)
        return self._clusters[region]

    def _worker(self, region: str) -> KubernetesWorker:
        worker = self._conf(region).worker
        if worker is None:
            msg = f"region {region} has no worker Deployment (dr.kubernetes.regions.{region}.worker)"
            raise BadRequest(msg)
        return worker

    def _name(self, region: str, component: str) -> str:
        """The Deployment of a component in a region: the api's pool, or the workers' own."""
        if component == "worker":
            return self._worker(region).deployment
        if component != "api":
            msg = f"region {region}: the engine runs the api and the worker on Kubernetes, not {component!r}"
            raise BadRequest(msg)
        return self._cluster(region).name(self._pool(region))

    def _pool(self, region: str) -> str:
        """The pool whose Deployment runs the region's api: the configured one, or the other one where
        a release in that cluster moved it (a blue-green or canary ends on the other pool) unless
        another region in the same namespace is that pool; the configured one when neither exists."""
        conf, cluster = self._conf(region), self._cluster(region)
        if cluster.read(conf.pool) is not None:
            return conf.pool
        other = next(p for p in POOLS if p != conf.pool)
        place = conf.kubernetes.model_copy(update={"image": ""})
        claimed = any(  # regions that share a namespace tell their Deployments apart by pool
            r != region and c.pool == other and c.kubernetes.model_copy(update={"image": ""}) == place
            for r, c in self.settings.regions.items()
        )
        return other if not claimed and cluster.read(other) is not None else conf.pool

    def _deployment(self, region: str, component: str = "api") -> Any:
        cluster, name = self._cluster(region), self._name(region, component)
        d = cluster.read_named(name)
        if d is None:
            msg = f"no Deployment {name!r} in namespace {cluster.namespace!r} of region {region}'s cluster"
            raise BadRequest(msg)
        return d

    def _container(self, region: str, d: Any, component: str = "api") -> Any:
        containers = d.spec.template.spec.containers
        conf = self._conf(region)
        name = (
            (conf.worker.container if conf.worker else None) if component == "worker" else conf.kubernetes.app
        )
        return next((c for c in containers if c.name == name), containers[0])

    # ---- Regions ---------------------------------------------------------------------------
    def scale(self, region: str, count: int, *, progress: Progress) -> int:
        conf, cluster, pool = self._conf(region), self._cluster(region), self._pool(region)
        cluster.scale(pool=pool, count=count, progress=progress)
        workers = self.spec.workers if count >= self.spec.instances else self.spec.standby_workers
        if conf.worker is not None and workers:  # at full size where users are, standby size else
            name = conf.worker.deployment
            self._deployment(region, "worker")
            cluster.apps.patch_namespaced_deployment_scale(
                name, cluster.namespace, {"spec": {"replicas": workers}}
            )
            cluster.wait_for_named(name, workers, progress)
        pods = cluster.pods(cluster.labels(pool))
        return sum(1 for p in pods if not p.metadata.deletion_timestamp and p.status and p.status.pod_ip)

    def _host(self, database: str) -> str:
        if self.spec.aws is not None and database in self.spec.aws.regions:
            if self._rds is None:
                from clients import aws  # noqa: PLC0415 - only with dr.aws (boto3)

                self._rds = aws.DrRegionClients(self.spec.aws)
            endpoint = self._rds.describe_db(database).get("Endpoint") or {}
            if not endpoint.get("Address"):
                msg = f"the RDS instance of {database} has no endpoint yet"
                raise RuntimeError(msg)
            return f"{endpoint['Address']}:{endpoint.get('Port', 5432)}"
        host = self._conf(database).database_host
        if host is None:
            where = f"dr.kubernetes.regions.{database}.database_host"
            msg = f"no database host for region {database} (dr.aws or {where})"
            raise BadRequest(msg)
        return host

    def use_database(self, region: str, database: str | None) -> None:
        self._conf(region)
        try:
            self._use_database(region, database)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if database is not None:
                raise
            # A lost region's API: nothing to tell its instances; the database fence stops their writes.
            log.warning("region_unreachable_writes_not_stopped", region=region, error=str(exc)[:200])

    def _use_database(self, region: str, database: str | None) -> None:
        want = {
            self.settings.host_env: self._host(database) if database else "",
            self.settings.node_env: database or "",
        }

        def already(d: Any) -> bool:
            env = {
                e.name: e.value or "" for e in self._container(region, d).env or [] if e.value_from is None
            }
            return all(k in env and env[k] == v for k, v in want.items())

        def set_env(c: dict[str, Any]) -> None:
            rest = [e for e in c.get("env") or [] if e["name"] not in want]
            c["env"] = rest + [{"name": k, "value": v} for k, v in want.items()]

        if self._patch_app(region, "its database env was set", set_env, done=already) is not None:
            log.info("region_database", region=region, database=database, **want)

    def _patch_app(
        self,
        region: str,
        what: str,
        edit: Callable[[dict[str, Any]], None],
        *,
        component: str = "api",
        labels: dict[str, str] | None = None,
        done: Callable[[Any], bool] = lambda _: False,
    ) -> Any | None:
        """Patch the region's Deployment: its app container as ``edit`` changes it (``labels`` on the
        Deployment and its pods too). The whole container list goes in the patch (a strategic merge,
        containers and env by name, and a plain merge patch give the same result); resourceVersion
        makes a concurrent change a 409, and a conflict is re-read and retried. Returns the Deployment
        as read before the patch, or None when ``done`` says there is nothing to change."""
        cluster = self._cluster(region)
        for _ in range(5):
            d = self._deployment(region, component)
            if done(d):
                return None
            target = self._container(region, d, component)
            containers = cluster.apps.api_client.sanitize_for_serialization(d.spec.template.spec.containers)
            for c in containers:
                if c["name"] == target.name:
                    edit(c)
            metadata: dict[str, Any] = {"resourceVersion": d.metadata.resource_version}
            template: dict[str, Any] = {"spec": {"containers": containers}}
            if labels:
                metadata["labels"], template["metadata"] = labels, {"labels": labels}
            try:
                cluster.apps.patch_namespaced_deployment(
                    d.metadata.name, cluster.namespace, {"metadata": metadata, "spec": {"template": template}}
                )
            except client.ApiException as exc:
                if kube.status_of(exc) == 409:
                    continue
                raise
            return d
        msg = f"Deployment {self._name(region, component)!r} in {region} kept changing while {what}"
        raise RuntimeError(msg)

    def writes_to(self, region: str) -> str | None:
        """The region's database per its pod template; None also when its cluster does not answer."""
        try:
            d = self._deployment(region)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("region_unreachable", region=region, error=str(exc)[:200])
            return None
        for e in self._container(region, d).env or []:
            if e.name == self.settings.node_env:
                return e.value or None
        return None

    def versions(self, region: str) -> dict[str, str]:
        """The ``version`` label of the region's api Deployment and, when it has one, of its workers'
        (a component scaled to 0, or without its Deployment, runs nothing)."""
        out = {}
        for component in ("api", "worker") if self._conf(region).worker else ("api",):
            d = self._cluster(region).read_named(self._name(region, component))
            version = (d.metadata.labels or {}).get("version") if d is not None else None
            if d is not None and version and (d.spec.replicas or 0) > 0:
                out[component] = version
        return out

    def converge(self, region: str, versions: dict[str, str], *, progress: Progress) -> dict[str, str]:
        """Each component's Deployment in the region runs its version: image tag and ``version`` label
        patched (resourceVersion-checked), then Kubernetes' rolling update waited for (progress
        deadline, crash-looping or unpullable pods fail it at once) at the Deployment's size.
        Every component is checked before any is changed (an unknown one is refused by name)."""
        names = {component: self._name(region, component) for component in versions}
        have = self.versions(region)
        for component, want in versions.items():
            if have.get(component) == want:
                continue
            worker = self._conf(region).worker
            image = worker.image if component == "worker" and worker else self._conf(region).kubernetes.image

            def set_image(c: dict[str, Any], tag: str = f"{image}:{want}") -> None:
                c["image"] = tag

            what = f"its {component} version was set"
            d = self._patch_app(region, what, set_image, component=component, labels={"version": want})
            assert d is not None  # without done(), a patch is always made
            log.info(
                "region_converged",
                region=region,
                component=component,
                version=want,
                deployment=names[component],
            )
            self._cluster(region).wait_for_named(names[component], d.spec.replicas or 1, progress)
        return self.versions(region)

    def health(self, region: str) -> list[str]:
        conf, cluster = self._conf(region), self._cluster(region)
        failures = []
        try:
            pool = self._pool(region)
            d = cluster.read(pool)
            if d is None:
                failures.append(f"no Deployment {cluster.name(pool)!r} in {region}")
            else:
                try:
                    cluster.rollout_state(pool, int(d.spec.replicas or 0))
                except kube.RolloutFailed as exc:
                    failures.append(f"{region}: {exc}")
                available = int((d.status and d.status.available_replicas) or 0)
                if available < 1:
                    failures.append(f"Deployment {d.metadata.name!r} in {region}: no available replica")
        except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            failures.append(f"cluster of {region}: {type(exc).__name__}: {str(exc)[:200]}")
        if conf.health_url:
            try:
                response = httpx.get(conf.health_url, timeout=2.0)
                if response.status_code != 200:
                    failures.append(f"{conf.health_url}: HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                failures.append(f"{conf.health_url}: {type(exc).__name__}")
        return failures
