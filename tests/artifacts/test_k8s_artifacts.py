"""Kubernetes manifests: official-client models, kubernetes-validate --strict, workload rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.artifact_checks import (
    K8S_DIR,
    kubernetes_validate,
    load_manifests,
    model_violations,
    workload_violations,
)

FILES = sorted(K8S_DIR.glob("*.yaml"))
DOCS = load_manifests(FILES)
NAMESPACE = "claude-deployment-prod"


def _of(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == kind}


def test_expected_files() -> None:
    names = {f.name for f in FILES}
    assert {"namespace.yaml", "deployments.yaml", "services.yaml", "configmaps.yaml", "secrets.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_object_matches_client_models(path: Path) -> None:
    problems = [v for p, d in DOCS if p == path for v in model_violations(d)]
    assert problems == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_kubernetes_validate_strict(path: Path) -> None:
    problems = [v for p, d in DOCS if p == path for v in kubernetes_validate(d)]
    assert problems == []


def test_everything_namespaced_in_production() -> None:
    for _, d in DOCS:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == NAMESPACE, d["metadata"]["name"]


@pytest.mark.parametrize("name", sorted(_of("Deployment")))
def test_workload_rules(name: str) -> None:
    assert workload_violations(_of("Deployment")[name]) == []


def test_replicas_and_seed_resources() -> None:
    deps = _of("Deployment")
    assert deps["claude-deployment-api"]["spec"]["replicas"] == 6
    assert deps["claude-deployment-worker"]["spec"]["replicas"] == 2
    assert deps["deploy-engine-worker"]["spec"]["replicas"] >= 2

    def res(dep: str, container: str) -> dict[str, Any]:
        (c,) = [c for c in deps[dep]["spec"]["template"]["spec"]["containers"] if c["name"] == container]
        return c["resources"]

    assert res("claude-deployment-api", "api") == {
        "requests": {"cpu": "500m", "memory": "2Gi"},
        "limits": {"cpu": "4000m", "memory": "8Gi"},
    }
    assert res("claude-deployment-worker", "worker") == {
        "requests": {"cpu": "500m", "memory": "2Gi"},
        "limits": {"cpu": "3000m", "memory": "8Gi"},
    }
    assert res("claude-deployment-api", "nginx") == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "200m", "memory": "256Mi"},
    }


def test_namespace_guards() -> None:
    assert _of("ResourceQuota") and _of("LimitRange")
    policies = _of("NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    assert len(policies) > 1, "explicit allows after the default deny"


def test_availability_and_scaling_cover_every_workload() -> None:
    deployments = set(_of("Deployment"))
    pdb_targets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in _of("PodDisruptionBudget").values()
    }
    assert deployments <= pdb_targets
    vpas = _of("VerticalPodAutoscaler").values()
    assert deployments <= {v["spec"]["targetRef"]["name"] for v in vpas}
    assert all(v["spec"]["updatePolicy"]["updateMode"] == "Off" for v in vpas)
    hpas = _of("HorizontalPodAutoscaler")
    assert {"claude-deployment-api", "claude-deployment-worker"} <= {
        h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()
    }
    for hpa in hpas.values():
        kinds = {(m["type"], m.get("resource", {}).get("name")) for m in hpa["spec"]["metrics"]}
        assert {("Resource", "cpu"), ("Resource", "memory")} <= kinds
        assert kinds & {("Pods", None), ("External", None), ("Object", None)}, "a custom metric"
    assert hpas["claude-deployment-api"]["spec"]["minReplicas"] == 6
    assert hpas["claude-deployment-api"]["spec"]["maxReplicas"] == 30


def test_no_secret_values_in_repository() -> None:
    assert not _of("Secret"), "use ExternalSecret objects"
    externals = _of("ExternalSecret")
    assert externals
    for es in externals.values():
        assert es["spec"]["secretStoreRef"]["name"] in _of("SecretStore")
        assert "template" not in es["spec"].get("target", {}), "templates can carry literal values"


BROKEN = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: claude-deployment-prod}
spec:
  replicaz: 3
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers:
        - name: app
          image: example/app:latest
          ports: [{containerPort: "http"}]
          securityContext: {privileged: true}
"""


def test_validators_reject_broken_manifest(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    ((_, doc),) = load_manifests([path])
    assert any("replicaz" in v for v in model_violations(doc))
    assert kubernetes_validate(doc)
    problems = "\n".join(workload_violations(doc))
    for expected in (
        "livenessProbe",
        "resources.limits",
        "readOnlyRootFilesystem",
        "capabilities",
        "zones",
        "pinned",
    ):
        assert expected in problems


def test_model_check_rejects_unknown_crd_field() -> None:
    doc = yaml.safe_load(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\n"
        "spec: {secretStoreRef: {name: s}, stringData: {password: hunter2}}\n"
    )
    assert model_violations(doc)
