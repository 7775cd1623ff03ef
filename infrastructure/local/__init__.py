"""Local platform: the sample service, HAProxy, Prometheus, a load generator and Temporal on one machine.

Modules (import what you need; nothing heavy is imported here):

* :mod:`.layout` -- :class:`Layout`: every path and port of one stack, from a state dir and a port base.
* :mod:`.processes` -- detached processes, pidfiles, pid-reuse-safe liveness, stop with SIGTERM/SIGKILL.
* :mod:`.sample_service` -- the HTTP service (``python -m infrastructure.local.sample_service``) and
  :func:`set_behaviour`.
* :mod:`.instances` -- :class:`InstanceManager`: start/stop/list instances in pools ``blue``/``green``.
* :mod:`.haproxy` -- config writer and :class:`HAProxy` (runtime API: weights, states, servers).
* :mod:`.prometheus` -- config writer and :class:`Prometheus` (start, queries, wait for targets).
* :mod:`.traffic` -- load generator (:func:`run_load`, ``python -m infrastructure.local.traffic``).
* :mod:`.temporal_server` -- :class:`TemporalServer`, the Temporal dev server.
* :mod:`.platform` -- ``up`` / ``down`` / ``status`` / ``behave`` (CLI: ``python -m infrastructure.local``).
"""
