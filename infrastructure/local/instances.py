"""Start, stop and list the instances of one component of the local platform, per pool.

The ``api`` component is the sample service (pools ``blue``, ``green`` and a canary's
``baseline``), the ``worker`` component the sample worker (``blue``, ``green``). Instances are
detached processes on fixed slot ports (see :class:`Layout`); each has a record
``instances/{name}.json`` (``blue-0``, ``worker-green-1``). Prometheus scrapes every slot's
port as a static target, so nothing is rewritten when instances come and go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import structlog
from pydantic import BaseModel

from infrastructure.local import processes
from infrastructure.local.layout import API, REPO_ROOT, Layout, instance_name, pools_of, port_is_free

log = structlog.get_logger(__name__)

SERVICE_MODULE = "infrastructure.local.sample_service"
MODULES = {API: SERVICE_MODULE, "worker": "infrastructure.local.sample_worker"}
"""What each component runs."""


class InstanceError(RuntimeError):
    """An instance could not be started or does not match what was asked."""


class VersionConflictError(InstanceError):
    """A slot already runs another version: stop the pool first."""


class InstanceRecord(BaseModel):
    """What is stored in ``instances/{name}.json``."""

    pid: int
    port: int
    version: str
    pool: str
    slot: int
    started_at: str


class InstanceInfo(BaseModel):
    """A running instance as reported by :meth:`InstanceManager.list` / ``start``."""

    version: str
    pool: str
    slot: int
    port: int
    pid: int
    healthy: bool
    started_at: str = ""

    @property
    def url(self) -> str:
        """Direct URL of the instance (bypassing the router)."""
        return f"http://127.0.0.1:{self.port}"


def _markers(layout: Layout, pool: str, slot: int, component: str = API) -> list[str]:
    port = layout.instance_port(pool, slot, component)
    return [MODULES[component], f"--pool {pool} --slot {slot} --port {port} --state-dir {layout.state_dir}"]


def probe_health(port: int, timeout: float = 0.3) -> bool:
    """True if ``127.0.0.1:port/healthz`` answers 200 within ``timeout``."""
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=timeout)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


class InstanceManager:
    """Instances of one component (the API unless told otherwise) for one :class:`Layout`."""

    def __init__(self, layout: Layout, component: str = API) -> None:
        """Bind to ``layout`` (directories are created on demand)."""
        if component not in MODULES:
            raise InstanceError(f"unknown component {component!r} (expected one of {tuple(MODULES)})")
        self.layout = layout
        self.component = component
        self.pools = pools_of(component)
        self.slots = layout.slots(component)

    def _name(self, pool: str, slot: int) -> str:
        return instance_name(pool, slot, self.component)

    def _port(self, pool: str, slot: int) -> int:
        return self.layout.instance_port(pool, slot, self.component)

    def _markers(self, pool: str, slot: int) -> list[str]:
        return _markers(self.layout, pool, slot, self.component)

    # ---- records ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.layout.instances_dir.mkdir(parents=True, exist_ok=True)
        with (self.layout.instances_dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self, pool: str, slot: int) -> InstanceRecord | None:
        try:
            path = self.layout.instance_record(pool, slot, self.component)
            return InstanceRecord.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None

    def _write(self, rec: InstanceRecord) -> None:
        path = self.layout.instance_record(rec.pool, rec.slot, self.component)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(rec.model_dump_json())
        tmp.replace(path)

    def _alive(self, rec: InstanceRecord) -> bool:
        return processes.is_alive(rec.pid, self._markers(rec.pool, rec.slot))

    def _records(self) -> list[InstanceRecord]:
        """Live records (dead ones are pruned)."""
        out: list[InstanceRecord] = []
        for pool in self.pools:
            for slot in range(self.slots):
                rec = self._read(pool, slot)
                if rec is None:
                    continue
                if self._alive(rec):
                    out.append(rec)
                else:
                    self.layout.instance_record(pool, slot, self.component).unlink(missing_ok=True)
        return out

    # ---- API ----------------------------------------------------------------------------------
    def start(
        self,
        version: str,
        pool: str,
        count: int,
        timeout: float = 20.0,
        on_progress: Callable[[str], None] | None = None,
    ) -> list[InstanceInfo]:
        """Run ``version`` in slots ``0..count-1`` of ``pool`` and wait until all are healthy.

        Idempotent: a slot already running ``version`` is reused.  A slot running another
        version raises :class:`VersionConflictError`.  ``on_progress`` is called about every
        0.5 s while waiting (for activity heartbeats).
        """
        if pool not in self.pools:
            raise InstanceError(f"unknown pool {pool!r} of {self.component}")
        if not 0 <= count <= self.slots:
            raise InstanceError(f"count must be 0..{self.slots}, got {count}")
        self.layout.ensure_dirs()
        t0 = time.monotonic()
        recs: list[InstanceRecord] = []
        with self._lock():
            for slot in range(count):
                rec = self._read(pool, slot)
                if rec is not None and self._alive(rec):
                    if rec.version != version:
                        name = self._name(pool, slot)
                        msg = f"{name} runs {rec.version}, not {version}: stop pool {pool} first"
                        raise VersionConflictError(msg)
                    recs.append(rec)
                    continue
                port = self._port(pool, slot)
                orphan = self._adopt_orphan(version, pool, slot)
                if orphan is not None:
                    recs.append(orphan)
                    continue
                if not port_is_free(port):
                    name = self._name(pool, slot)
                    raise InstanceError(f"port {port} for {name} is taken by a process we do not own")
                pid = processes.spawn(
                    [
                        sys.executable,
                        "-m",
                        MODULES[self.component],
                        "--version",
                        version,
                        "--pool",
                        pool,
                        "--slot",
                        str(slot),
                        "--port",
                        str(port),
                        "--state-dir",
                        str(self.layout.state_dir),
                    ],
                    log_file=self.layout.log_file(self._name(pool, slot)),
                    cwd=REPO_ROOT,
                    env={"PYTHONPATH": _pythonpath()},
                )
                rec = InstanceRecord(
                    pid=pid,
                    port=port,
                    version=version,
                    pool=pool,
                    slot=slot,
                    started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                )
                self._write(rec)
                recs.append(rec)
                log.info(
                    "instance_spawned",
                    component=self.component,
                    pool=pool,
                    slot=slot,
                    version=version,
                    pid=pid,
                    port=port,
                )
        self._wait_healthy(recs, timeout, on_progress)
        log.info(
            "instances_ready",
            component=self.component,
            pool=pool,
            version=version,
            count=count,
            seconds=round(time.monotonic() - t0, 3),
        )
        return [_info(r, healthy=True) for r in recs]

    def _wait_healthy(
        self, recs: Sequence[InstanceRecord], timeout: float, on_progress: Callable[[str], None] | None
    ) -> None:
        pending = {(r.pool, r.slot): r for r in recs}
        deadline = time.monotonic() + timeout
        last_progress = 0.0
        with httpx.Client(timeout=0.5) as client:
            while pending:
                for key, r in list(pending.items()):
                    if not self._alive(r):
                        name = self._name(r.pool, r.slot)
                        raise InstanceError(
                            f"{name} ({r.version}) exited during start:\n"
                            + processes.tail(self.layout.log_file(name))
                        )
                    try:
                        if client.get(f"http://127.0.0.1:{r.port}/healthz").status_code == 200:
                            del pending[key]
                    except httpx.HTTPError:
                        pass
                if not pending:
                    break
                now = time.monotonic()
                if now >= deadline:
                    names = ", ".join(self._name(p, s) for p, s in pending)
                    raise InstanceError(f"not healthy after {timeout:.0f}s: {names}")
                if on_progress is not None and now - last_progress >= 0.5:
                    last_progress = now
                    on_progress(f"waiting for {len(pending)}/{len(recs)} instances to be healthy")
                time.sleep(0.05)

    def _adopt_orphan(self, version: str, pool: str, slot: int) -> InstanceRecord | None:
        """Adopt an instance without record (its starter died between spawn and record write)."""
        for pid in processes.find(self._markers(pool, slot)):
            line = processes.cmdline(pid)
            if f"--version {version} " not in line:
                name = self._name(pool, slot)
                msg = f"{name} runs another version (pid {pid}, {line!r}): stop pool {pool} first"
                raise VersionConflictError(msg)
            rec = InstanceRecord(
                pid=pid,
                port=self._port(pool, slot),
                version=version,
                pool=pool,
                slot=slot,
                started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            )
            self._write(rec)
            log.warning("instance_adopted", component=self.component, pool=pool, slot=slot, pid=pid)
            return rec
        return None

    def stop(self, pool: str, slots: Sequence[int] | None = None, timeout: float = 10.0) -> list[int]:
        """Stop the given slots of ``pool`` (all if None); returns the slots that were stopped.

        In-flight requests finish (SIGTERM), SIGKILL after ``timeout``.  Idempotent.
        """
        if pool not in self.pools:
            raise InstanceError(f"unknown pool {pool!r} of {self.component}")
        wanted = range(self.slots) if slots is None else slots
        victims: list[InstanceRecord] = []
        targets: list[tuple[int, processes.Markers]] = []
        for slot in wanted:
            rec = self._read(pool, slot)
            markers = self._markers(pool, slot)
            if rec is not None:
                victims.append(rec)
                targets.append((rec.pid, markers))
            # Orphans (spawned, starter killed before the record was written) are found by cmdline.
            targets += [(pid, markers) for pid in processes.find(markers) if rec is None or pid != rec.pid]
        processes.stop_many(targets, timeout=timeout)
        if not self.layout.state_dir.exists():  # purged: nothing to record, do not recreate it
            return [r.slot for r in victims]
        with self._lock():
            for r in victims:
                self.layout.instance_record(r.pool, r.slot, self.component).unlink(missing_ok=True)
        if victims:
            log.info(
                "instances_stopped", component=self.component, pool=pool, slots=[r.slot for r in victims]
            )
        return [r.slot for r in victims]

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every instance of every pool."""
        for pool in self.pools:
            self.stop(pool, timeout=timeout)

    def list(self, probe: bool = True) -> list[InstanceInfo]:
        """Running instances (dead records pruned), each probed on /healthz unless ``probe`` is False."""
        recs = self._records()
        if not probe or not recs:
            return [_info(r, healthy=False) for r in recs]
        with ThreadPoolExecutor(max_workers=min(16, len(recs))) as ex:
            health = list(ex.map(lambda r: probe_health(r.port), recs))
        return [_info(r, healthy=h) for r, h in zip(recs, health, strict=True)]


def _info(r: InstanceRecord, *, healthy: bool) -> InstanceInfo:
    return InstanceInfo(
        version=r.version,
        pool=r.pool,
        slot=r.slot,
        port=r.port,
        pid=r.pid,
        healthy=healthy,
        started_at=r.started_at,
    )


def _repo_root() -> str:
    return str(REPO_ROOT)


def _pythonpath() -> str:
    parts = [_repo_root(), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)
