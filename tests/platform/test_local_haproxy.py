"""HAProxy router: exact weighted splits through the runtime API, no reload, state read-back."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from infrastructure.local.haproxy import HAProxy, RouterError, ServerState
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import Layout
from infrastructure.local.traffic import run_load


def _wait_up(router: HAProxy, backend: str, names: set[str], timeout: float = 5.0) -> dict[str, ServerState]:
    deadline = time.monotonic() + timeout
    while True:
        servers = {s.name: s for s in router.servers(backend)}
        if all(servers[n].status == "UP" for n in names):
            return servers
        assert time.monotonic() < deadline, {n: servers[n].status for n in names}
        time.sleep(0.05)


def _split(url: str, n: int) -> Counter[str]:
    with httpx.Client(timeout=5) as client:
        return Counter(client.get(url).headers["x-version"] for _ in range(n))


def test_weighted_split_is_exact_and_needs_no_reload(
    layout: Layout, instances: InstanceManager, router: HAProxy
) -> None:
    instances.start("v1", "blue", 2)
    instances.start("v2", "green", 1)
    pid = router.pid()
    # 80 % blue over two servers, 20 % green over one: 2 + 2 : 1
    for name, weight in (("blue0", 2), ("blue1", 2), ("green0", 1)):
        router.set_server("app", name, weight=weight, state="ready")
    servers = _wait_up(router, "app", {"blue0", "blue1", "green0"})
    assert {n: (s.weight, s.admin) for n, s in servers.items() if s.admin != "maint"} == {
        "blue0": (2, "ready"),
        "blue1": (2, "ready"),
        "green0": (1, "ready"),
    }
    assert servers["blue2"].admin == "maint"
    assert servers["blue2"].weight == 0
    assert router.weights("app") == {"blue0": 2, "blue1": 2, "green0": 1}
    assert _split(layout.router_url, 500) == {"v1": 400, "v2": 100}

    # shift to 50/50 at runtime: same process, applies at once
    router.set_weight("app", "blue0", 1)
    router.set_weight("app", "blue1", 1)
    router.set_weight("app", "green0", 2)
    assert router.get_weight("app", "green0") == 2
    assert _split(layout.router_url, 500) == {"v1": 250, "v2": 250}

    # all to green, blue drained then in maintenance
    router.set_state("app", "blue0", "drain")
    router.set_state("app", "blue1", "maint")
    states = {s.name: s.admin for s in router.servers("app")}
    assert (states["blue0"], states["blue1"], states["green0"]) == ("drain", "maint", "ready")
    assert _split(layout.router_url, 50) == {"v2": 50}
    assert router.pid() == pid

    # the preview frontend has its own backend, untouched by the above
    router.set_server("preview", "green0", weight=1, state="ready")
    _wait_up(router, "preview", {"green0"})
    assert _split(layout.preview_url, 10) == {"v2": 10}


def test_split_under_concurrent_load(layout: Layout, instances: InstanceManager, router: HAProxy) -> None:
    instances.start("v1", "blue", 1)
    instances.start("v2", "green", 1)
    router.set_server("app", "blue0", weight=3, state="ready")
    router.set_server("app", "green0", weight=1, state="ready")
    _wait_up(router, "app", {"blue0", "green0"})
    summary = run_load(layout.router_url, rps=2000, max_requests=400, threads=4)
    assert summary.failed == 0
    assert summary.by_version == {"v1": 300, "v2": 100}


def test_route_pool_and_errors(instances: InstanceManager, router: HAProxy) -> None:
    instances.start("v1", "blue", 2)
    router.route_pool("app", "blue", 2)
    assert router.weights("app") == {"blue0": 1, "blue1": 1}
    with pytest.raises(RouterError, match="No such server"):
        router.set_weight("app", "nope", 1)
    with pytest.raises(RouterError, match=r"0\.\.256"):
        router.set_weight("app", "blue0", 300)
    with pytest.raises(RouterError):
        router.servers("nobackend")
    with pytest.raises(RouterError):
        router.command("definitely not a command")


def test_runtime_api_takes_many_changes_and_start_is_idempotent(router: HAProxy) -> None:
    """Speed is the benchmark's business (bench/run.py, P1); here: every change lands."""
    pid = router.pid()
    assert router.start() == pid
    for i in range(1, 201):
        router.set_weight("app", "blue0", i % 3)
        if i % 50 == 0:
            assert {s.name: s.weight for s in router.servers("app")}["blue0"] == i % 3
    router.stop()
    assert not router.running()
    router.stop()


def test_injected_errors_pass_the_router_unretried(
    layout: Layout, instances: InstanceManager, router: HAProxy
) -> None:
    from infrastructure.local.sample_service import set_behaviour

    set_behaviour(layout, "v1", error_rate=0.2)
    instances.start("v1", "blue", 1)
    router.route_pool("app", "blue", 1)
    summary = run_load(layout.router_url, rps=2000, max_requests=500, threads=2)
    assert summary.by_code == {"200": 400, "500": 100}


def test_switch_and_abrupt_kill_under_load_lose_nothing(
    layout: Layout, instances: InstanceManager, router: HAProxy
) -> None:
    import threading

    instances.start("v1", "blue", 2)
    router.route_pool("app", "blue", 2)
    result = {}
    load = threading.Thread(
        target=lambda: result.update(s=run_load(layout.router_url, rps=250, duration=4, threads=4))
    )
    load.start()
    time.sleep(0.5)
    instances.start("v2", "green", 2)
    for w in (1, 4, 16):
        router.set_weight("app", "green0", w)
        router.set_weight("app", "green1", w)
        router.set_state("app", "green0", "ready")
        router.set_state("app", "green1", "ready")
        time.sleep(0.3)
    router.route_pool("app", "green", 2)
    instances.stop("blue")  # graceful, after the router stopped sending
    time.sleep(0.3)
    instances.stop("green", [1], timeout=0.01)  # abrupt: SIGKILL while it still has weight
    load.join()
    s = result["s"]
    assert s.failed == 0, s
    assert s.sent >= 900
    assert set(s.by_version) == {"v1", "v2"}
