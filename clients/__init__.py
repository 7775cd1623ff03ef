"""Clients of the outside world that providers, the local platform and the starters share.

AWS sessions (``aws``), Kubernetes (``kube``: API clients and Deployments), image registries
(``oci``, ``ecr`` behind ``images``), the Terraform CLI (``terraform``) and the simulated
world (``simulated``). A client knows one system; it does not know releases. It imports
nothing from ``activities``, ``workflows``, ``infrastructure`` or ``starters``.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]
"""Called by long operations while they wait, so the activity can heartbeat."""
