"""Helpers shared by the test suites."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
