"""A PostgreSQL 15 node of the local two-region stack: init, start, stop, replicate.

Facts this relies on (docs in /work/shared/notes/local-stack.md): PostgreSQL refuses
root, so every binary runs as ``postgres`` (``runuser``); ``initdb -A trust --no-sync``;
a standby is ``pg_basebackup -R -X stream -C -S SLOT``; a node's ``cluster_name`` is the
``application_name`` its WAL receiver reports, so synchronous_standby_names can name it.
Settings that differ per node (port, name) go on the command line, settings changed at
run time (fencing, synchronous_standby_names) through ``ALTER SYSTEM``, so they survive
a restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import structlog

from infrastructure.local import processes

log = structlog.get_logger(__name__)

DATABASE = "app"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
    # Jobs the API takes (POST /jobs) and the workers process: taken (and by whom), then done with
    # an outcome, by which worker version, against which region's database (node).
    "CREATE TABLE IF NOT EXISTS jobs (id bigserial PRIMARY KEY,"
    " created_at timestamptz NOT NULL DEFAULT now(), taken_at timestamptz, taken_by text,"
    " done_at timestamptz, outcome text, version text, node text)",
    "CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (id) WHERE done_at IS NULL",
)


class DatabaseError(RuntimeError):
    """A PostgreSQL command failed."""


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL binary (Debian's versioned directory first, then PATH)."""
    root = Path(os.environ.get("DEPLOY_PG_BIN", "/usr/lib/postgresql/15/bin"))
    if (root / name).exists():
        return str(root / name)
    found = shutil.which(name)
    if not found:
        raise DatabaseError(f"{name} not found: install postgresql-15 (or set DEPLOY_PG_BIN)")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class PgNode:
    """One PostgreSQL cluster (data dir + port) run as the ``postgres`` user."""

    def __init__(self, name: str, data_dir: Path, port: int, log_file: Path) -> None:
        self.name, self.data_dir, self.port, self.log_file = name, data_dir, port, log_file

    def conninfo(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    # ---- process -----------------------------------------------------------------------------
    def _run(self, argv: list[str], timeout: float = 60.0) -> str:
        r = subprocess.run(
            _as_postgres(argv), capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )
        if r.returncode != 0:
            raise DatabaseError(f"{Path(argv[0]).name} failed (rc={r.returncode}): {r.stderr.strip()[-800:]}")
        return r.stdout

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if processes.is_alive(pid, ["postgres", str(self.data_dir)]) else None

    def running(self) -> bool:
        return self.pid() is not None

    def _options(self) -> str:
        settings = {
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "''",
            "cluster_name": self.name,
            "wal_level": "replica",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "hot_standby": "on",
            "wal_keep_size": "256MB",
            "fsync": "off",  # a killed process loses nothing the OS has; the machine does not crash here
            "wal_receiver_status_interval": "1s",
            "wal_sender_timeout": "5s",
            "wal_receiver_timeout": "5s",
        }
        return " ".join(f"-c {k}={v}" for k, v in settings.items())

    def _prepare_dirs(self) -> None:
        root = self.data_dir.parent
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        _chown_postgres(root)

    def init_primary(self) -> None:
        """initdb, start, create the app database and its table (idempotent)."""
        self._prepare_dirs()
        if not self.initialized():
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._run(
                [pg_bin("initdb"), "-D", str(self.data_dir), "-A", "trust", "--no-sync", "-U", "postgres"]
            )
        self.start()
        with psycopg.connect(self.conninfo("postgres"), autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                conn.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=5) as conn:
            for statement in SCHEMA:
                conn.execute(statement)

    def start(self, timeout: float = 30.0) -> None:
        if self.running():
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        _chown_postgres(self.log_file)
        self._run(
            [
                pg_bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                self._options(),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            timeout=timeout + 10,
        )
        log.info("postgres_started", node=self.name, port=self.port)

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop (idempotent); ``immediate`` is a crash as far as the data is concerned."""
        if not self.running():
            return
        with contextlib.suppress(DatabaseError):
            self._run(
                [
                    pg_bin("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "stop",
                ],
                timeout=timeout + 10,
            )
        pid = self.pid()
        if pid is not None:
            processes.stop(pid, ["postgres", str(self.data_dir)], timeout=5, group=False)
        log.info("postgres_stopped", node=self.name, mode=mode)

    # ---- SQL ---------------------------------------------------------------------------------
    def connect(self, dbname: str = DATABASE, timeout: float = 2.0) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), autocommit=True, connect_timeout=max(1, int(timeout)))

    def in_recovery(self) -> bool:
        with self.connect() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    # ---- replication -------------------------------------------------------------------------
    def rebuild_from(self, primary: PgNode, slot: str, progress: Callable[[str], None] | None = None) -> None:
        """Throw this node's data away and make it a streaming standby of ``primary``."""
        self.stop("immediate")
        with primary.connect() as conn:
            row = conn.execute(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is not None:
                if row[0] is not None:
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    time.sleep(0.2)
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        if progress:
            progress(f"base backup of {primary.name} into {self.name}")
        self._prepare_dirs()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self._run(
            [
                pg_bin("pg_basebackup"),
                "-d",
                f"host=127.0.0.1 port={primary.port} user=postgres",
                "-D",
                str(self.data_dir),
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                slot,
                "--no-sync",
                "--checkpoint=fast",
            ],
            timeout=300,
        )
        self.start()
        log.info("standby_rebuilt", node=self.name, primary=primary.name)
