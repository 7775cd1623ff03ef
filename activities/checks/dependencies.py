"""Pre-deployment dependency checks: a database that accepts a connection, a Redis that
answers PING, an HTTP dependency that answers 2xx. Plain sockets and httpx, no drivers.

Each returns ``(ok, message)``; a check never raises for an unhealthy dependency, so the
pre-validation stage can show every verdict at once.
"""

from __future__ import annotations

import socket
import struct
from urllib.parse import urlsplit

import httpx

TIMEOUT = 3.0


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def postgres(url: str) -> tuple[bool, str]:
    """PostgreSQL accepts a connection: startup message answered by AuthenticationOk, then
    ReadyForQuery (trust), or by an authentication request (the server accepts connections)."""
    host, port = _host_port(url, 5432)
    parts = urlsplit(url)
    user = parts.username or "postgres"
    database = parts.path.lstrip("/") or user
    params = f"user\0{user}\0database\0{database}\0\0".encode()
    startup = struct.pack("!ii", 8 + len(params), 196608) + params
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            s.settimeout(TIMEOUT)
            s.sendall(startup)
            kind = s.recv(1)
            if kind == b"R":
                struct.unpack("!i", s.recv(4))
                (code,) = struct.unpack("!i", s.recv(4))
                s.sendall(b"X\0\0\0\x04")  # Terminate
                if code == 0:
                    return True, f"PostgreSQL at {host}:{port} accepted a connection as {user}"
                return True, f"PostgreSQL at {host}:{port} accepts connections (asks authentication {code})"
            if kind == b"E":
                body = s.recv(1024)
                text = " ".join(
                    p.decode(errors="replace")[1:] for p in body[4:].split(b"\0") if p[:1] == b"M"
                )
                return False, f"PostgreSQL at {host}:{port} refused the connection: {text or 'error'}"
            return False, f"{host}:{port} does not speak the PostgreSQL protocol (got {kind!r})"
    except OSError as exc:
        return False, f"PostgreSQL at {host}:{port} is unreachable: {exc.strerror or exc}"


def redis(url: str) -> tuple[bool, str]:
    """Redis answers PING with PONG."""
    host, port = _host_port(url, 6379)
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            s.settimeout(TIMEOUT)
            s.sendall(b"PING\r\n")
            answer = s.recv(64)
    except OSError as exc:
        return False, f"Redis at {host}:{port} is unreachable: {exc.strerror or exc}"
    if answer.startswith(b"+PONG"):
        return True, f"Redis at {host}:{port} answered PONG"
    return False, f"Redis at {host}:{port} answered {answer[:40]!r} to PING"


def http(url: str) -> tuple[bool, str]:
    """An HTTP dependency answers a GET with 2xx."""
    try:
        r = httpx.get(url, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return False, f"{url} is unreachable: {exc}"
    if 200 <= r.status_code < 300:
        return True, f"{url} answered {r.status_code}"
    return False, f"{url} answered {r.status_code}"


CHECKS = {"database": postgres, "redis": redis, "http": http}
