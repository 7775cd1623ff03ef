"""Detached child processes with pidfiles.

Every component of the local stack runs as its own session leader
(``start_new_session=True``) with stdout/stderr in ``logs/NAME.log``, so it survives
the death of whoever started it (the engine's worker is SIGKILLed in tests and must
not take the instances with it).  Liveness checks look at ``/proc/PID/cmdline`` for
an expected marker, so a recycled pid is never mistaken for ours.  Everything here
is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

Markers = str | Sequence[str]


def _markers(marker: Markers) -> list[str]:
    return [marker] if isinstance(marker, str) else list(marker)


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own exited child (avoids zombies)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def cmdline(pid: int) -> str:
    """The command line of ``pid`` with arguments joined by spaces ('' if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # Field 3, after the parenthesised command name (which may contain spaces).
    return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}


def _exists(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not _is_zombie(pid)


def _settled_cmdline(pid: int, wait: float) -> str:
    """``pid``'s cmdline, waiting up to ``wait`` s while it reads empty.

    It reads empty in two short windows: during ``execve`` (the parent's ``Popen`` has
    returned, because close-on-exec fds are closed before the new argv is in place)
    and while the process exits (its memory is gone before it is a zombie).  Either
    way a liveness check must not decide on it: it would take a process just started
    for a stranger, or forget it.
    """
    deadline = time.monotonic() + wait
    while not (line := cmdline(pid)) and time.monotonic() < deadline and _exists(pid):
        time.sleep(0.002)
    return line


def is_alive(pid: int | None, marker: Markers = ()) -> bool:
    """True if ``pid`` runs, is not a zombie, and its cmdline contains every marker."""
    if not pid or pid <= 0 or not _exists(pid):
        return False
    line = _settled_cmdline(pid, wait=0.5)
    return bool(line) and _exists(pid) and all(m in line for m in _markers(marker))


def find(marker: Markers) -> list[int]:
    """Pids of live processes whose cmdline contains every marker (scans ``/proc``)."""
    marks = _markers(marker)
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            pid = int(entry.name)
            line = cmdline(pid)
            if line and all(m in line for m in marks) and not _is_zombie(pid):
                out.append(pid)
    return out


def read_pidfile(path: Path) -> int | None:
    """The pid stored in ``path``, or None."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pidfile(path: Path, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def running_pid(pidfile: Path, marker: Markers) -> int | None:
    """The pid in ``pidfile`` if that process is alive and ours, else None."""
    pid = read_pidfile(pidfile)
    return pid if pid and is_alive(pid, marker) else None


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    pidfile: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached (own session, stdin closed, output appended to ``log_file``).

    Returns the pid (also written to ``pidfile`` if given).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=full_env,
            cwd=str(cwd) if cwd else None,
        )
    # Popen returns mid-execve: wait until the new program's argv is readable, so that
    # whoever checks this pid next (by its cmdline) sees what was started.
    _settled_cmdline(proc.pid, wait=2.0)
    if pidfile is not None:
        write_pidfile(pidfile, proc.pid)
    log.debug("spawned", pid=proc.pid, argv=list(argv)[:4], log=str(log_file))
    return proc.pid


def _signal(pid: int, sig: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def wait_exit(pid: int, timeout: float, marker: Markers = ()) -> bool:
    """Wait until ``pid`` is gone; True if it is."""
    deadline = time.monotonic() + timeout
    while is_alive(pid, marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop(pid: int | None, marker: Markers = (), *, timeout: float = 10.0, group: bool = True) -> bool:
    """SIGTERM ``pid`` (its whole process group if it leads one), SIGKILL after ``timeout``.

    Returns True once the process is gone (True at once if it was not running).
    A pid whose cmdline lacks ``marker`` is never signalled.
    """
    if pid is None or not is_alive(pid, marker):
        return True
    _signal(pid, signal.SIGTERM, group)
    if wait_exit(pid, timeout, marker):
        return True
    log.warning("sigkill", pid=pid, after_s=timeout)
    _signal(pid, signal.SIGKILL, group)
    return wait_exit(pid, 5.0, marker)


def stop_many(pids: Sequence[tuple[int, Markers]], *, timeout: float = 10.0) -> None:
    """Stop several processes in parallel: SIGTERM all, wait, SIGKILL the stragglers."""
    live = [(p, m) for p, m in pids if is_alive(p, m)]
    for pid, _ in live:
        _signal(pid, signal.SIGTERM, True)
    deadline = time.monotonic() + timeout
    for pid, m in live:
        if not wait_exit(pid, max(0.0, deadline - time.monotonic()), m):
            log.warning("sigkill", pid=pid, after_s=timeout)
            _signal(pid, signal.SIGKILL, True)
            wait_exit(pid, 5.0, m)


def stop_pidfile(pidfile: Path, marker: Markers, *, timeout: float = 10.0) -> bool:
    """Stop the process named by ``pidfile`` (if ours and alive) and remove the pidfile."""
    ok = stop(read_pidfile(pidfile), marker, timeout=timeout)
    if ok:
        pidfile.unlink(missing_ok=True)
    return ok


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' if missing)."""
    try:
        data = path.read_bytes()[-8192:]
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
