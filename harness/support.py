"""Small helpers shared by the tests and the benchmarks.

``REPO`` (the repository root, the working directory of every subprocess started here),
:func:`retrying` (a Temporal call retried while the server restarts), :func:`stop_process`,
:func:`free_port`, :func:`ssh_key` and :func:`allowed_signers` (approvers' keys made by ``ssh-keygen``)
and :class:`WorkerProcess` (``python worker.py`` as a real process).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from temporalio.service import RPCError

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


async def retrying(call: Callable[[], Awaitable[T]], within: float = 60) -> T:
    """``call()``, retried while the Temporal server does not answer (it may be restarting)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_key(keys: Path, who: str, kind: str = "ed25519") -> Path:
    """``keys/who``: a fresh passphrase-less SSH key of ``who`` (its ``.pub`` beside it), made once."""
    key = keys / who
    if not key.exists():
        keys.mkdir(parents=True, exist_ok=True)
        size = ["-b", "2048"] if kind == "rsa" else []
        argv = ["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-C", who, "-f", str(key)]
        subprocess.run(argv, check=True)
    return key


def allowed_signers(keys: Path, *who: str) -> Path:
    """``keys/allowed_signers`` (git's format) listing ``who``'s keys, made by :func:`ssh_key`."""
    path = keys / "allowed_signers"
    path.write_text("".join(f"{w} {ssh_key(keys, w).with_suffix('.pub').read_text()}" for w in who))
    return path


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class WorkerProcess:
    """``python worker.py`` as a real process, to be killed (SIGKILL) and restarted."""

    def __init__(
        self, env: Mapping[str, str], log_file: Path, task_queue: str, metrics_bind: str = ""
    ) -> None:
        self.env, self.log_file, self.task_queue = dict(env), log_file, task_queue
        self.metrics_bind = metrics_bind
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "worker.py",
                "--task-queue",
                self.task_queue,
                "--metrics-bind",
                self.metrics_bind,
            ],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log_file.open("ab"),
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
