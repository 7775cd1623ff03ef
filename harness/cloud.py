"""Test harness of the cloud tests: moto for AWS behind a fault-injecting proxy, a Kubernetes API.

None of it is used by the providers' code: the providers talk HTTP to what these serve.

:class:`MotoServer`: ``moto_server`` as a subprocess on a free loopback port;
:func:`aws_test_credentials` gives the standard credential chain dummy keys (moto accepts
any; no real account is reachable); :func:`create_network` makes a VPC with two subnets.

``KubeCluster``: kmock's ``KubernetesEmulator`` is an in-memory store behind the Kubernetes
HTTP API. It has no controllers, no ``metadata.generation``, ignores label selectors. What
the real cluster would add is played here, and only here:

* the API server's ``metadata.generation`` (bumped on every change of a Deployment's spec,
  also through the ``scale`` subresource; not through ``status``) — a small subclass;
* the Deployment controller and the kubelet (:class:`DeploymentController`): a thread that
  reads the Deployments through the API, creates/deletes their pods and writes their
  ``status`` through the ``status`` subresource, after an optional delay; per Deployment it
  can instead play a failure (image pull, crash loop, a rollout that never progresses);
* with :class:`PodProcesses`, the kubelet's containers: each pod is a real process of the
  sample service (infrastructure/local/sample_service.py) running the version of the
  Deployment's image tag, bound to a loopback IP of its own (127.x.y.z) on the container
  port; that IP is the pod IP, and the pod is Ready only once ``/healthz`` answers there;
* with ``pull``, the kubelet's image pull: the image reference resolved to a digest in a
  registry (the pod's ``imageID``), ImagePullBackOff while the registry does not have it;
* with :class:`TargetGroupBinding`, the AWS Load Balancer Controller: the Ready pods of each
  pool registered (``ip:port``) in the pool's target group in moto, the others deregistered.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import http.server
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import kmock
import yaml
from kubernetes import client

from clients import aws
from engine.contracts import AwsSettings
from harness.support import REPO, free_port, stop_process

_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of this run uses (moto is not reset between tests)."""
    return f"{prefix}-{os.getpid() % 100000}-{next(_names)}"


# --------------------------------------------------------------------------- #
# AWS: moto in server mode
# --------------------------------------------------------------------------- #

REGION = "eu-west-1"


class MotoError(RuntimeError):
    """moto_server is not installed or did not start."""


class MotoServer:
    """``moto_server`` (installed next to this Python) as a subprocess on a free loopback port."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3) -> str:
        """Start it and wait until it answers (a few ports are tried); returns its URL."""
        binary = Path(sys.executable).parent / "moto_server"
        if not binary.exists():
            msg = f"moto_server is not installed next to {sys.executable}: pip install 'moto[server]==5.2.5'"
            raise MotoError(msg)
        for _ in range(attempts):
            port = free_port()
            with self.log.open("w") as out:
                proc = subprocess.Popen(
                    [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
                )
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    httpx.get(f"{url}/moto-api/", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                proc.kill()
                proc.wait()
                continue
            self.proc, self.url = proc, url
            return url
        msg = f"moto_server did not start: {self.log.read_text()[-2000:]}"
        raise MotoError(msg)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


@contextlib.contextmanager
def aws_test_credentials() -> Iterator[None]:
    """Dummy keys for the standard credential chain (moto accepts any), restored on exit.

    The shared config and credentials files point at /dev/null (and stay so): no profile of
    this machine is read, no real account is reachable.
    """
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def create_network(endpoint_url: str, region: str = REGION, block: int = 0) -> dict[str, Any]:
    """A VPC ``10.<block>.0.0/16`` with one subnet in each of the zones ``a`` and ``b`` of ``region``."""
    ec2 = aws.client(AwsSettings(region=region, endpoint_url=endpoint_url), "ec2")
    vpc = ec2.create_vpc(CidrBlock=f"10.{block}.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{block}.{i}.0/24", AvailabilityZone=f"{region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    return {"region": region, "vpc": vpc, "subnets": subnets}


# --------------------------------------------------------------------------- #
# AWS: faults in front of moto
# --------------------------------------------------------------------------- #

THROTTLING = (400, "Throttling", "Rate exceeded")
UNAVAILABLE = (503, "ServiceUnavailable", "Service Unavailable")
ACCESS_DENIED = (403, "AccessDenied", "User is not authorized to perform this action")


class FaultProxy:
    """Forwards to moto; answers the next ``len(queue)`` requests with the queued errors instead.

    ``only`` limits the faults to requests whose body contains that text (e.g. ``Action=ModifyListener``).
    ``seen`` counts every request that reached the proxy (faulted or forwarded).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.queue: list[tuple[int, str, str]] = []
        self.only: str | None = None
        self.seen: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._take(body.decode(errors="replace"))
                if fault is not None:
                    status, code, message = fault
                    payload = (
                        "<ErrorResponse><Error><Type>Sender</Type>"
                        f"<Code>{code}</Code><Message>{message}</Message></Error>"
                        "<RequestId>fault-proxy</RequestId></ErrorResponse>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                r = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30
                )
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _take(self, body: str) -> tuple[int, str, str] | None:
        with self._lock:
            self.seen.append(body)
            if self.queue and (self.only is None or self.only in body):
                return self.queue.pop(0)
        return None

    def inject(self, *faults: tuple[int, str, str], only: str | None = None) -> None:
        with self._lock:
            self.queue = list(faults)
            self.only = only

    def calls(self, text: str) -> int:
        with self._lock:
            return sum(1 for b in self.seen if text in b)

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --------------------------------------------------------------------------- #
# Kubernetes: kmock + what a cluster adds
# --------------------------------------------------------------------------- #

RESOURCES = ("v1/pods", "v1/services", "apps/v1/deployments", "networking.k8s.io/v1/ingresses")


class GenerationalEmulator(kmock.KubernetesEmulator):
    """kmock plus the API server's ``metadata.generation`` for Deployments."""

    def _bump(self, request: Any, name: str | None, namespace: str | None) -> None:
        resource = request.resource
        if resource is None or resource.plural != "deployments" or request.subresource == "status":
            return
        obj = self.objects[resource, namespace, name]
        seen = getattr(self, "_specs", None)
        if seen is None:
            seen = self._specs = {}
        key = (namespace, name)
        spec = copy.deepcopy(obj.raw.get("spec"))
        if request.action == kmock.action.CREATE:
            seen[key] = spec
            obj.patch({"metadata": {"generation": 1}})
        elif seen.get(key) != spec:
            seen[key] = spec
            obj.patch({"metadata": {"generation": int(obj.raw["metadata"].get("generation") or 0) + 1}})

    async def _serve_create(self, request: Any) -> Any:
        data = request.data or {}
        async with self._lock:
            self._bump(
                request,
                request.name or data.get("metadata", {}).get("name"),
                request.namespace or data.get("metadata", {}).get("namespace"),
            )
        return await super()._serve_create(request)

    async def _serve_update(self, request: Any) -> Any:
        async with self._lock:
            key = (request.resource, request.namespace, request.name)
            if key in self.objects and not self.objects[key].deleted:
                self._bump(request, request.name, request.namespace)
        return await super()._serve_update(request)


class KubeCluster:
    """kmock served over HTTP from a thread, a kubeconfig for it, and a controller to play."""

    def __init__(self, tmp: Path) -> None:
        self.kubeconfig = tmp / "kubeconfig"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.url = ""
        self.controller: DeploymentController | None = None

    async def _serve(self) -> None:
        async with GenerationalEmulator() as emulator, kmock.Server(emulator) as server:
            for res in RESOURCES:
                emulator.resources[res] = {}
            self.emulator = emulator
            self.url = f"http://127.0.0.1:{server.port}"
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("kmock did not start")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "not-checked"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}],
            "current-context": "kmock",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        cfg = client.Configuration()
        cfg.host = self.url
        self.api = client.ApiClient(cfg)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.net = client.NetworkingV1Api(self.api)

    def play_controller(self, **kwargs: Any) -> DeploymentController:
        self.controller = DeploymentController(self, **kwargs)
        self.controller.start()
        return self.controller

    def stop(self) -> None:
        """Idempotent: the controller (and its pod processes), then the API server."""
        if self.controller:
            self.controller.stop()
            self.controller = None
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._loop = None
        self._thread.join(10)
        if hasattr(self, "api"):
            self.api.close()


class DeploymentController:
    """Plays the Deployment controller, the ReplicaSets and the kubelet, through the API.

    Every ``interval`` it reads each Deployment; a spec it has not reconciled yet is rolled
    out after ``delay`` seconds: pods ``NAME-i`` with the template's labels and an IP, and a
    status whose ``observedGeneration`` is the Deployment's generation. ``failures[name]``
    plays a failed rollout instead: ``ImagePullBackOff`` / ``CrashLoopBackOff`` (pods waiting
    with that reason, none ready) or ``ProgressDeadlineExceeded`` (the Progressing condition);
    ``failures["NAME@TAG"]`` only while the template's last container runs that image tag.
    """

    def __init__(
        self,
        cluster: KubeCluster,
        *,
        delay: float = 0.0,
        interval: float = 0.05,
        pods: PodProcesses | None = None,
        bindings: TargetGroupBinding | None = None,
        pull: Callable[[str], str | None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.delay = delay
        self.interval = interval
        self.pods = pods
        self.bindings = bindings
        self.pull = pull
        """The kubelet's image pull: image reference -> digest, None when the registry has no such
        image (then the pods are in ImagePullBackOff until it has)."""
        self.failures: dict[str, str] = {}
        self._first_seen: dict[tuple[str, str, int], float] = {}
        self._done: dict[tuple[str, str], tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.pods:
            self.pods.stop_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_all()
            except Exception as exc:
                self.errors.append(repr(exc))
            self._stop.wait(self.interval)

    def reconcile_all(self) -> None:
        c = self.cluster
        deployments = c.apps.list_deployment_for_all_namespaces().items
        live = {(d.metadata.namespace, d.metadata.name) for d in deployments}
        for d in deployments:
            self._reconcile(d)
        # Garbage collection: pods whose Deployment is gone.
        pods = c.core.list_pod_for_all_namespaces().items
        for pod in pods:
            owner = (pod.metadata.labels or {}).get("harness/deployment")
            if owner and (pod.metadata.namespace, owner) not in live:
                self._delete_pod(pod.metadata.name, pod.metadata.namespace)
        self._done = {k: v for k, v in self._done.items() if k in live}
        if self.bindings:
            self.bindings.sync(c.core.list_pod_for_all_namespaces().items)

    def _delete_pod(self, name: str, namespace: str) -> None:
        if self.pods:
            self.pods.remove(namespace, name)
        try:
            self.cluster.core.delete_namespaced_pod(name, namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def _pull(self, image: str, failure: str) -> tuple[str, bool]:
        """(the container's imageID, whether the pull failed)."""
        repository = image.rsplit(":", 1)[0]
        if not self.pull or failure:
            return f"{repository}@sha256:{'0' * 64}", False
        digest = self.pull(image)
        return (f"{repository}@{digest}", False) if digest else ("", True)

    def _reconcile(self, d: Any) -> None:
        ns, name = d.metadata.namespace, d.metadata.name
        generation = int(d.metadata.generation or 0)
        tag = d.spec.template.spec.containers[-1].image.rsplit(":", 1)[-1]
        failure = self.failures.get(f"{name}@{tag}", self.failures.get(name, ""))
        if self._done.get((ns, name)) == (generation, failure):
            return
        first = self._first_seen.setdefault((ns, name, generation), time.monotonic())
        if time.monotonic() - first < self.delay:
            return
        c = self.cluster
        replicas = int(d.spec.replicas or 0)
        template = d.spec.template
        labels = {**(template.metadata.labels or {}), "harness/deployment": name}
        image = template.spec.containers[0].image
        image_id, pull_failed = self._pull(image, failure)
        failure = "ImagePullBackOff" if pull_failed else failure
        pods = {
            p.metadata.name: p
            for p in c.core.list_namespaced_pod(ns).items
            if (p.metadata.labels or {}).get("harness/deployment") == name
        }
        wanted = {f"{name}-{i}" for i in range(replicas)}
        for pod_name in sorted(set(pods) - wanted):
            self._delete_pod(pod_name, ns)
        n_ready = 0
        for i in range(replicas):
            pod_name = f"{name}-{i}"
            ready = not failure
            ip = f"10.0.{abs(hash(name)) % 200}.{i + 1}"
            if self.pods and not failure:
                # The kubelet: the container is a real process; Ready once its readiness probe passes.
                ip = self.pods.ensure(
                    ns,
                    pod_name,
                    version=image.rsplit(":", 1)[-1],
                    pool=labels.get("pool", name),
                    slot=i,
                )
                ready = self.pods.ready(ns, pod_name)
            n_ready += ready
            container_status: dict[str, Any] = {
                "name": template.spec.containers[0].name,
                "image": image,
                "imageID": "" if failure == "ImagePullBackOff" else image_id,
                "ready": ready,
                "restartCount": 3 if failure == "CrashLoopBackOff" else 0,
            }
            if failure in ("ImagePullBackOff", "CrashLoopBackOff"):
                container_status["state"] = {
                    "waiting": {"reason": failure, "message": f"harness plays {failure}"}
                }
            else:  # null: the merge patch clears a waiting state a failing generation left
                container_status["state"] = {"running": {}, "waiting": None}
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": ns, "labels": labels},
                "spec": {"containers": [{"name": template.spec.containers[0].name, "image": image}]},
                "status": {
                    "phase": "Running" if not failure else "Pending",
                    "podIP": ip,
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                    "containerStatuses": [container_status],
                },
            }
            if pod_name in pods:
                c.core.patch_namespaced_pod(pod_name, ns, body)
            else:
                c.core.create_namespaced_pod(ns, body)
        progressing = (
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{name}-x" has timed out progressing.',
            }
            if failure == "ProgressDeadlineExceeded"
            else {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        )
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": n_ready,
            "availableReplicas": n_ready,
            "unavailableReplicas": replicas - n_ready,
            "conditions": [progressing],
        }
        c.apps.patch_namespaced_deployment_status(name, ns, {"status": status})
        if (n_ready == replicas or failure) and not pull_failed:
            self._done[(ns, name)] = (generation, failure)  # else: probe (or pull) again next round


class PodProcesses:
    """The containers of the pods: real sample-service processes, one loopback IP each.

    All of 127/8 is loopback on Linux: pod ``i`` gets ``127.N.x.y`` (N from this process's
    pid, so parallel test workers do not collide; an address whose port is taken is skipped)
    and serves the version it was started with on ``port`` (the container port). A pod whose
    version changes is a new process on a new IP, as a new pod would be.
    """

    def __init__(self, tmp: Path, port: int) -> None:
        self.port = port
        self.state_dir = tmp / "pods"
        (self.state_dir / "behaviour").mkdir(parents=True, exist_ok=True)
        self.log = tmp / "pods.log"
        self._net = 20 + os.getpid() % 200
        self._ips = itertools.count(1)
        self._lock = threading.Lock()
        self.running: dict[tuple[str, str], tuple[subprocess.Popen[bytes], str, str]] = {}
        self.started: list[tuple[str, str, str]] = []
        """(pod, ip, version) of every process started, in order."""
        self._http = httpx.Client(timeout=0.5)

    def _next_ip(self) -> str:
        while True:
            n = next(self._ips)
            ip = f"127.{self._net}.{n // 250}.{n % 250 + 1}"
            with socket.socket() as probe:
                try:
                    probe.bind((ip, self.port))
                except OSError:
                    continue
            return ip

    def ensure(self, namespace: str, pod: str, *, version: str, pool: str, slot: int) -> str:
        """The pod's IP; its process started (again) unless it already runs ``version``."""
        with self._lock:
            current = self.running.get((namespace, pod))
            if current and current[2] == version and current[0].poll() is None:
                return current[1]
        if current:
            self.remove(namespace, pod)
        ip = self._next_ip()
        argv = [sys.executable, "-m", "infrastructure.local.sample_service", "--version", version]
        argv += ["--pool", pool, "--slot", str(slot), "--port", str(self.port), "--host", ip]
        argv += ["--state-dir", str(self.state_dir)]
        with self.log.open("ab") as log:
            proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        with self._lock:
            self.running[(namespace, pod)] = (proc, ip, version)
            self.started.append((pod, ip, version))
        return ip

    def ready(self, namespace: str, pod: str) -> bool:
        """The readiness probe: ``GET /healthz`` on the pod's IP and port."""
        with self._lock:
            proc, ip, _ = self.running[(namespace, pod)]
        if proc.poll() is not None:
            return False
        try:
            return self._http.get(f"http://{ip}:{self.port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def remove(self, namespace: str, pod: str) -> None:
        with self._lock:
            entry = self.running.pop((namespace, pod), None)
        if entry is None:
            return
        stop_process(entry[0])

    def alive(self) -> list[int]:
        """Pids of the processes still running."""
        with self._lock:
            return [p.pid for p, _, _ in self.running.values() if p.poll() is None]

    def stop_all(self) -> None:
        with self._lock:
            keys = list(self.running)
        for namespace, pod in keys:
            self.remove(namespace, pod)
        self._http.close()


class TargetGroupBinding:
    """Plays the AWS Load Balancer Controller (TargetGroupBinding, ip targets) against moto.

    The Ready pods of ``app`` in each pool are registered as ``pod IP:port`` in that pool's
    target group; targets of pods that are gone or not Ready are deregistered.
    """

    def __init__(self, elb: Any, target_groups: dict[str, str], *, app: str, port: int) -> None:
        self.elb, self.target_groups, self.app, self.port = elb, target_groups, app, port
        self._synced: dict[str, set[str]] = {}

    def sync(self, pods: list[Any]) -> None:
        for pool, arn in self.target_groups.items():
            wanted = {
                p.status.pod_ip
                for p in pods
                if (p.metadata.labels or {}).get("app") == self.app
                and (p.metadata.labels or {}).get("pool") == pool
                and p.status
                and p.status.pod_ip
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            }
            if self._synced.get(pool) == wanted:
                continue
            health = self.elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            current = {t["Target"]["Id"] for t in health}
            if wanted - current:
                targets = [{"Id": ip, "Port": self.port} for ip in sorted(wanted - current)]
                self.elb.register_targets(TargetGroupArn=arn, Targets=targets)
            if current - wanted:
                targets = [{"Id": ip, "Port": self.port} for ip in sorted(current - wanted)]
                self.elb.deregister_targets(TargetGroupArn=arn, Targets=targets)
            self._synced[pool] = wanted


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def service_manifest(name: str, pool: str, namespace: str) -> dict[str, Any]:
    """A Service selecting the app's pods of ``pool`` ("" selects none)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"app": "sample-api", "pool": pool},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    }


def make_routing(kube: KubeCluster, namespace: str) -> None:
    """What the Kubernetes router expects to find: the users', canary and preview Services, and the
    NGINX canary Ingress (as k8s/production declares them)."""
    from activities.router.kubernetes import CANARY

    kube.core.create_namespaced_service(namespace, service_manifest("sample-api", "blue", namespace))
    kube.core.create_namespaced_service(namespace, service_manifest("sample-api-canary", "green", namespace))
    kube.core.create_namespaced_service(namespace, service_manifest("sample-api-preview", "", namespace))
    kube.net.create_namespaced_ingress(
        namespace,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "sample-api-canary",
                "namespace": namespace,
                "annotations": {CANARY: "true"},
            },
            "spec": {"ingressClassName": "nginx"},
        },
    )
