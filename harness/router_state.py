"""The split HAProxy has in force, read cheaply enough to poll every millisecond.

:meth:`infrastructure.local.haproxy.HAProxy.servers` reads every field of every server
(``show servers state`` and ``show stat``: two runtime-API round trips and ~0.4 ms of
Python per call). The bench's router watcher polls about every millisecond, in the
process that also runs the engine's worker, so :func:`pool_shares` asks only
``show servers state`` through :meth:`~infrastructure.local.haproxy.HAProxy.command`
(one round trip, ~0.1 ms) and decodes the admin state with the same bits as
:meth:`~infrastructure.local.haproxy.HAProxy.servers`.
"""

from __future__ import annotations

from infrastructure.local.haproxy import _ADMF_DRAIN, _ADMF_MAINT, HAProxy
from infrastructure.local.layout import POOLS

_OP_RUNNING = 2
"""srv_op_state of a server that passes its health checks (HAProxy src/server.h)."""


def pool_shares(haproxy: HAProxy, backend: str = "app") -> dict[str, float]:
    """Each pool's share (percent) of the summed weights of the servers that are enabled
    (neither in maintenance nor draining), running and of non-zero weight."""
    totals = dict.fromkeys(POOLS, 0)
    for line in haproxy.command(f"show servers state {backend}").splitlines()[2:]:
        f = line.split()
        if len(f) < 8 or f[1] != backend:
            continue
        op, admin, weight = int(f[5]), int(f[6]), int(f[7])
        if op == _OP_RUNNING and not admin & (_ADMF_MAINT | _ADMF_DRAIN) and weight > 0:
            totals[f[3].rstrip("0123456789")] += weight
    total = sum(totals.values())
    return {p: (100.0 * w / total if total else 0.0) for p, w in totals.items()}
