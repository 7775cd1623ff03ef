"""The local platform's PostgreSQL pair (infrastructure/local/dr.py) as the DR ``Database``.

Fencing sets ``default_transaction_read_only`` with ``ALTER SYSTEM`` (so it survives a
restart) and ends the client sessions; a node that cannot be reached is fenced in its
``postgresql.auto.conf`` on disk, so it cannot come back writable. Promotion clears
``synchronous_standby_names`` (a promoted synchronous standby inherits it and every
write would then wait forever for a standby that is not there).
"""

from __future__ import annotations

import contextlib
import re
import time

import psycopg
import structlog

from activities.interfaces import Progress
from engine.contracts.dr import DbNode, DrSpec, Replica
from engine.errors import BadRequest
from infrastructure.local import dr as local_dr
from infrastructure.local.database import PgNode, pg_bin
from infrastructure.local.regions import layout_for

log = structlog.get_logger()
_FENCE_LINE = re.compile(r"^\s*default_transaction_read_only\s*=.*$\n?", re.MULTILINE)


class LocalPostgres:
    def __init__(self, spec: DrSpec) -> None:
        self.spec = spec
        self.dr = layout_for(spec)
        self._by_name = {self.dr.db_application_name(r): r for r in self.dr.regions}

    def _node(self, region: str) -> PgNode:
        try:
            return local_dr.node(self.dr, region)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    # ---- observe -----------------------------------------------------------------------------
    def node(self, region: str) -> DbNode:
        pg = self._node(region)
        try:
            with pg.connect(timeout=1) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
                    " ELSE pg_current_wal_lsn() END"
                ).fetchone()
                assert row is not None
                replicas = []
                if not row[0]:
                    for name, state, sync, lag, seconds in conn.execute(
                        "SELECT application_name, state, sync_state,"
                        " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn),"
                        " extract(epoch FROM replay_lag) FROM pg_stat_replication"
                    ).fetchall():
                        replicas.append(
                            Replica(
                                region=self._by_name.get(name, name or "?"),
                                state=state,
                                sync=sync,
                                lag_bytes=int(lag or 0),
                                lag_seconds=float(seconds) if seconds is not None else None,
                            )
                        )
        except psycopg.Error as exc:
            return DbNode(region=region, reachable=False, error=str(exc).strip()[:300])
        return DbNode(
            region=region,
            reachable=True,
            role="standby" if row[0] else "primary",
            fenced=row[1] == "on",
            lsn=str(row[2]) if row[2] is not None else None,
            replicas=replicas,
        )

    # ---- fence -------------------------------------------------------------------------------
    def fence(self, region: str) -> bool:
        pg = self._node(region)
        try:
            with pg.connect(timeout=2) as conn:
                conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
                conn.execute("SELECT pg_reload_conf()")
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            with pg.connect(timeout=2) as conn:  # a new session must see it
                row = conn.execute("SHOW default_transaction_read_only").fetchone()
                if not row or row[0] != "on":
                    raise RuntimeError(f"{region}: fence not in force yet")
            return True
        except psycopg.OperationalError:
            pass
        # Unreachable: fence it where it lies, and make sure no half-dead postmaster serves.
        if pg.running():
            pg.stop("immediate", timeout=5)
        auto = pg.data_dir / "postgresql.auto.conf"
        if auto.exists():
            text = _FENCE_LINE.sub("", auto.read_text())
            auto.write_text(text.rstrip("\n") + "\ndefault_transaction_read_only = 'on'\n")
        log.warning("fenced_offline", region=region)
        return False

    def unfence(self, region: str) -> None:
        pg = self._node(region)
        try:
            with pg.connect(timeout=2) as conn:
                conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                conn.execute("SELECT pg_reload_conf()")
            return
        except psycopg.OperationalError:
            pass
        auto = pg.data_dir / "postgresql.auto.conf"
        if auto.exists():
            auto.write_text(_FENCE_LINE.sub("", auto.read_text()))

    # ---- promote -----------------------------------------------------------------------------
    def promote(self, region: str) -> bool:
        pg = self._node(region)
        already = not pg.in_recovery()
        if not already:
            with contextlib.suppress(Exception):  # promote of a node promoting meanwhile: checked below
                pg._run([pg_bin("pg_ctl"), "-D", str(pg.data_dir), "-w", "-t", "30", "promote"], timeout=40)
            deadline = time.monotonic() + 30
            while pg.in_recovery():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{region} still in recovery 30 s after pg_ctl promote")
                time.sleep(0.05)
        with pg.connect() as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
            conn.execute("SELECT pg_reload_conf()")
        return already

    # ---- replication -------------------------------------------------------------------------
    def _streaming(self, region: str, primary: str) -> bool:
        node = self.node(primary)
        return any(r.region == region and r.state == "streaming" for r in node.replicas)

    def rebuild_as_standby(self, region: str, *, primary: str, progress: Progress) -> None:
        if region == primary:
            raise BadRequest(f"{region} cannot be a standby of itself")
        target = self.node(region)
        if not (target.reachable and target.role == "standby" and self._streaming(region, primary)):
            self._node(region).rebuild_from(
                self._node(primary), local_dr.slot_name(self.dr, region), progress=progress
            )
        deadline = time.monotonic() + 60
        while not self._streaming(region, primary):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{region} does not stream from {primary} 60 s after the rebuild")
            progress(f"waiting for {region} to stream from {primary}")
            time.sleep(0.2)

    def set_replication(self, *, primary: str, standby: str | None, synchronous: bool) -> None:
        local_dr.set_synchronous(self.dr, primary, standby if synchronous else None)

    def catch_up(self, *, standby: str, primary: str, timeout: float, progress: Progress) -> int:
        deadline = time.monotonic() + timeout
        while True:
            with self._node(primary).connect() as conn:
                row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
            assert row is not None
            with self._node(standby).connect() as conn:
                lag = conn.execute(
                    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (str(row[0]),)
                ).fetchone()
            missing = max(0, int(lag[0] if lag and lag[0] is not None else 0))
            if missing == 0 or time.monotonic() > deadline:
                return missing
            progress(f"{standby} is {missing} bytes behind {primary}")
            time.sleep(0.05)
