"""Layout: ports and paths derive from state dir and port base only."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.local.layout import Layout, port_is_free


def test_ports_and_paths(tmp_path: Path) -> None:
    lay = Layout(state_dir=tmp_path, port_base=18000)
    assert (lay.router_port, lay.preview_port, lay.prometheus_port, lay.haproxy_metrics_port) == (
        18000,
        18001,
        18002,
        18003,
    )
    assert (lay.temporal_port, lay.temporal_ui_port, lay.worker_metrics_port) == (18004, 18005, 18006)
    assert lay.instance_port("blue", 0) == 18010
    assert lay.instance_port("green", 7) == 18037
    assert lay.instance_record("green", 2) == tmp_path.resolve() / "instances" / "green-2.json"
    assert lay.behaviour_file("v2") == tmp_path.resolve() / "behaviour" / "v2.json"
    with pytest.raises(ValueError):
        lay.instance_port("red", 0)
    with pytest.raises(ValueError):
        lay.instance_port("blue", 8)
    with pytest.raises(ValueError):
        Layout(state_dir=tmp_path, port_base=18000, max_slots=21)


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEPLOY_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DEPLOY_PORT_BASE", "19000")
    lay = Layout.from_env()
    assert lay.state_dir == tmp_path.resolve()
    assert lay.port_base == 19000
    assert Layout.from_env(port_base=19500).port_base == 19500


def test_for_tests_gives_free_distinct_blocks(tmp_path: Path) -> None:
    a = Layout.for_tests(tmp_path / "a")
    b = Layout.for_tests(tmp_path / "b")
    assert all(port_is_free(p) for p in range(a.port_base, a.port_base + 60))
    assert a.state_dir != b.state_dir


def test_long_state_dir_gets_short_socket(tmp_path: Path) -> None:
    lay = Layout(state_dir=tmp_path / ("x" * 120), port_base=18000)
    assert len(str(lay.haproxy_sock)) < 108
