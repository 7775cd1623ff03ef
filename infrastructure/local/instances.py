"""Start, stop and list sample-service instances in the two pools (``blue``, ``green``).

Instances are detached processes on fixed slot ports (see :class:`Layout`); each has a
record ``instances/{pool}-{slot}.json``.  After every change the Prometheus file_sd
target list is rewritten from the live records.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import structlog
from pydantic import BaseModel

from engine.contracts import ALL_POOLS
from infrastructure.local import processes
from infrastructure.local.layout import APP_LABEL, REPO_ROOT, Layout, port_is_free

log = structlog.get_logger(__name__)

SERVICE_MODULE = "infrastructure.local.sample_service"


class InstanceError(RuntimeError):
    """An instance could not be started or does not match what was asked."""


class VersionConflictError(InstanceError):
    """A slot already runs another version: stop the pool first."""


class InstanceRecord(BaseModel):
    """What is stored in ``instances/{pool}-{slot}.json``."""

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


def _markers(layout: Layout, pool: str, slot: int) -> list[str]:
    port = layout.instance_port(pool, slot)
    return [SERVICE_MODULE, f"--pool {pool} --slot {slot} --port {port} --state-dir {layout.state_dir}"]


def probe_health(port: int, timeout: float = 0.3) -> bool:
    """True if ``127.0.0.1:port/healthz`` answers 200 within ``timeout``."""
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=timeout)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


class InstanceManager:
    """Instances of the sample service for one :class:`Layout`."""

    def __init__(self, layout: Layout) -> None:
        """Bind to ``layout`` (directories are created on demand)."""
        self.layout = layout

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
            return InstanceRecord.model_validate_json(self.layout.instance_record(pool, slot).read_text())
        except (OSError, ValueError):
            return None

    def _write(self, rec: InstanceRecord) -> None:
        path = self.layout.instance_record(rec.pool, rec.slot)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(rec.model_dump_json())
        tmp.replace(path)

    def _alive(self, rec: InstanceRecord) -> bool:
        return processes.is_alive(rec.pid, _markers(self.layout, rec.pool, rec.slot))

    def _records(self) -> list[InstanceRecord]:
        """Live records (dead ones are pruned)."""
        out: list[InstanceRecord] = []
        for pool in ALL_POOLS:
            for slot in range(self.layout.max_slots):
                rec = self._read(pool, slot)
                if rec is None:
                    continue
                if self._alive(rec):
                    out.append(rec)
                else:
                    self.layout.instance_record(pool, slot).unlink(missing_ok=True)
        return out

    def write_targets(self) -> None:
        """Rewrite Prometheus' file_sd list from the live instances (atomic replace)."""
        with self._lock():
            self._write_targets_locked()

    def _write_targets_locked(self) -> None:
        groups = [
            {
                "targets": [f"127.0.0.1:{r.port}"],
                "labels": {"version": r.version, "pool": r.pool, "slot": str(r.slot), "app": APP_LABEL},
            }
            for r in self._records()
        ]
        path = self.layout.prometheus_targets
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(groups, indent=1))
        tmp.replace(path)

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
        if pool not in ALL_POOLS:
            raise InstanceError(f"unknown pool {pool!r}")
        if not 0 <= count <= self.layout.max_slots:
            raise InstanceError(f"count must be 0..{self.layout.max_slots}, got {count}")
        self.layout.ensure_dirs()
        t0 = time.monotonic()
        recs: list[InstanceRecord] = []
        with self._lock():
            for slot in range(count):
                rec = self._read(pool, slot)
                if rec is not None and self._alive(rec):
                    if rec.version != version:
                        raise VersionConflictError(
                            f"{pool}-{slot} runs {rec.version}, not {version}: stop pool {pool} first"
                        )
                    recs.append(rec)
                    continue
                port = self.layout.instance_port(pool, slot)
                orphan = self._adopt_orphan(version, pool, slot)
                if orphan is not None:
                    recs.append(orphan)
                    continue
                if not port_is_free(port):
                    raise InstanceError(f"port {port} for {pool}-{slot} is taken by a process we do not own")
                pid = processes.spawn(
                    [
                        sys.executable,
                        "-m",
                        SERVICE_MODULE,
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
                    log_file=self.layout.log_file(f"{pool}-{slot}"),
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
                log.info("instance_spawned", pool=pool, slot=slot, version=version, pid=pid, port=port)
        self._wait_healthy(recs, timeout, on_progress)
        self.write_targets()
        log.info(
            "instances_ready",
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
                        raise InstanceError(
                            f"{r.pool}-{r.slot} ({r.version}) exited during start:\n"
                            + processes.tail(self.layout.log_file(f"{r.pool}-{r.slot}"))
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
                    names = ", ".join(f"{p}-{s}" for p, s in pending)
                    raise InstanceError(f"not healthy after {timeout:.0f}s: {names}")
                if on_progress is not None and now - last_progress >= 0.5:
                    last_progress = now
                    on_progress(f"waiting for {len(pending)}/{len(recs)} instances to be healthy")
                time.sleep(0.05)

    def _adopt_orphan(self, version: str, pool: str, slot: int) -> InstanceRecord | None:
        """Adopt an instance without record (its starter died between spawn and record write)."""
        for pid in processes.find(_markers(self.layout, pool, slot)):
            line = processes.cmdline(pid)
            if f"--version {version} " not in line:
                raise VersionConflictError(
                    f"{pool}-{slot} runs another version (pid {pid}, {line!r}): stop pool {pool} first"
                )
            rec = InstanceRecord(
                pid=pid,
                port=self.layout.instance_port(pool, slot),
                version=version,
                pool=pool,
                slot=slot,
                started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            )
            self._write(rec)
            log.warning("instance_adopted", pool=pool, slot=slot, pid=pid)
            return rec
        return None

    def stop(self, pool: str, slots: Sequence[int] | None = None, timeout: float = 10.0) -> list[int]:
        """Stop the given slots of ``pool`` (all if None); returns the slots that were stopped.

        In-flight requests finish (SIGTERM), SIGKILL after ``timeout``.  Idempotent.
        """
        if pool not in ALL_POOLS:
            raise InstanceError(f"unknown pool {pool!r}")
        wanted = range(self.layout.max_slots) if slots is None else slots
        victims: list[InstanceRecord] = []
        targets: list[tuple[int, processes.Markers]] = []
        for slot in wanted:
            rec = self._read(pool, slot)
            markers = _markers(self.layout, pool, slot)
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
                self.layout.instance_record(r.pool, r.slot).unlink(missing_ok=True)
            self._write_targets_locked()
        if victims:
            log.info("instances_stopped", pool=pool, slots=[r.slot for r in victims])
        return [r.slot for r in victims]

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every instance of every pool."""
        for pool in ALL_POOLS:
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
