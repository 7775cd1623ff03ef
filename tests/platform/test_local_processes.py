"""Liveness by cmdline: a process whose cmdline reads empty for a moment is not forgotten.

``/proc/PID/cmdline`` reads empty during ``execve`` (``Popen`` has already returned) and
while a process exits.  CI once saw a worker started a millisecond earlier reported as
not running, and an instance's record pruned as dead.  The helper below blanks its own
argv through ``/proc/self/mem`` for a while, which is exactly what such a reader sees.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from infrastructure.local import processes

BLANK_FOR_A_WHILE = """
import sys, time
fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
with open("/proc/self/mem", "r+b", buffering=0) as mem:
    mem.seek(start)
    saved = mem.read(end - start)
    mem.seek(start)
    mem.write(bytes(end - start))
    open(sys.argv[2], "w").close()
    time.sleep(float(sys.argv[1]))
    mem.seek(start)
    mem.write(saved)
time.sleep(60)
"""


def _blank_process(tmp_path: Path, seconds: float) -> tuple[subprocess.Popen[bytes], Path]:
    ready = tmp_path / "blank"
    proc = subprocess.Popen([sys.executable, "-c", BLANK_FOR_A_WHILE, str(seconds), str(ready)])
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "helper never blanked its argv"
        time.sleep(0.01)
    return proc, ready


def test_a_live_process_whose_cmdline_reads_empty_for_a_moment_is_still_ours(tmp_path: Path) -> None:
    proc, ready = _blank_process(tmp_path, seconds=0.15)
    try:
        assert processes.cmdline(proc.pid) == ""  # the window the check has to sit out
        assert processes.is_alive(proc.pid, [str(ready)])
    finally:
        proc.kill()
        proc.wait()


def test_a_cmdline_that_stays_empty_is_not_taken_for_ours(tmp_path: Path) -> None:
    proc, ready = _blank_process(tmp_path, seconds=30)
    try:
        t0 = time.monotonic()
        assert not processes.is_alive(proc.pid, [str(ready)])
        assert not processes.is_alive(proc.pid)  # no marker: still not "ours" on an unknown cmdline
        assert time.monotonic() - t0 < 3
    finally:
        proc.kill()
        proc.wait()


def test_spawn_returns_once_the_new_program_is_visible(tmp_path: Path) -> None:
    for i in range(50):
        pid = processes.spawn(["sleep", "60"], log_file=tmp_path / "sleep.log", pidfile=tmp_path / "s.pid")
        try:
            assert processes.cmdline(pid) == "sleep 60", i
            assert processes.running_pid(tmp_path / "s.pid", ["sleep 60"]) == pid
        finally:
            assert processes.stop(pid, ["sleep 60"], timeout=2)
