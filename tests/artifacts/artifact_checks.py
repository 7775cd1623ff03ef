"""Validators for the production artifacts, shared by the tests and their broken-input twins.

Each check returns a list of human-readable violations (empty = valid) or a CompletedProcess,
so a test can assert both that the real artifacts pass and that a deliberately broken file fails.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hcl2
import kubernetes.client
import yaml

REPO = Path(__file__).resolve().parents[2]
TF_PRIMARY = REPO / "infrastructure" / "terraform"
TF_SECONDARY = REPO / "infrastructure" / "terraform-secondary"
K8S_DIR = REPO / "k8s" / "production"
MON_DIR = REPO / "monitoring" / "production"
RUNBOOK_DIR = REPO / "docs" / "runbooks"
K8S_VERSION = "1.32"

# --------------------------------------------------------------------------- #
# Terraform
# --------------------------------------------------------------------------- #


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL quotes on keys and strings; strip them and the block markers."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@functools.cache
def load_tf(root: Path) -> dict[str, Any]:
    """Parse every .tf file of a root: resources, variables (defaults + *.tfvars) and outputs."""
    resources: list[tuple[str, str, dict[str, Any]]] = []
    variables: dict[str, Any] = {}
    outputs: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("*.tf")):
        with path.open() as f:
            doc = _unquote(hcl2.load(f))
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    resources.append((rtype, name, body))
        for block in doc.get("variable", []):
            for name, body in block.items():
                variables[name] = body.get("default")
        for block in doc.get("output", []):
            outputs.update(block)
    for path in sorted(root.glob("*.tfvars")):
        with path.open() as f:
            variables.update(_unquote(hcl2.load(f)))
    return {"resources": resources, "variables": variables, "outputs": outputs}


def _resolve(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str) and (m := re.fullmatch(r"\$\{var\.(\w+)\}", value)):
        return variables.get(m.group(1))
    return value


def _blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


def _alb_security_groups(resources: list[tuple[str, str, dict[str, Any]]]) -> set[str]:
    refs: set[str] = set()
    for rtype, _, body in resources:
        if rtype == "aws_lb":
            refs.update(re.findall(r"aws_security_group\.(\w+)\.id", json.dumps(body.get("security_groups"))))
    return refs


def _open_world(cidrs: Any) -> bool:
    return any(c in ("0.0.0.0/0", "::/0") for c in (cidrs if isinstance(cidrs, list) else [cidrs]))


# Resources whose only encryption setting is a KMS key attribute.
KMS_ATTRIBUTE = {
    "aws_cloudwatch_log_group": "kms_key_id",
    "aws_sns_topic": "kms_master_key_id",
    "aws_secretsmanager_secret": "kms_key_id",
}


def tf_violations(root: Path) -> list[str]:  # noqa: PLR0912 -- one flat list of invariants reads best
    """Production invariants of one Terraform root, as a list of violations."""
    tf = load_tf(root)
    res, var = tf["resources"], tf["variables"]
    out: list[str] = []
    alb_sgs = _alb_security_groups(res)
    encrypted_buckets = {
        m.group(1)
        for rtype, _, body in res
        if rtype == "aws_s3_bucket_server_side_encryption_configuration" and "aws:kms" in json.dumps(body)
        for m in [re.search(r"aws_s3_bucket\.(\w+)\.id", str(body.get("bucket")))]
        if m
    }
    for rtype, name, body in res:
        where = f"{rtype}.{name}"
        if rtype == "aws_db_instance":
            if body.get("storage_encrypted") is not True or not body.get("kms_key_id"):
                out.append(f"{where}: encryption at rest with KMS")
            if body.get("deletion_protection") is not True or body.get("skip_final_snapshot") is not False:
                out.append(f"{where}: deletion protection and a final snapshot")
            if body.get("multi_az") is not True:
                out.append(f"{where}: Multi-AZ")
            if body.get("publicly_accessible") is not False:
                out.append(f"{where}: publicly_accessible must be false")
            if (_resolve(body.get("backup_retention_period"), var) or 0) < 7:
                out.append(f"{where}: backups kept >= 7 days")
        elif rtype == "aws_db_subnet_group" and "aws_subnet.public" in json.dumps(body):
            out.append(f"{where}: database in public subnets")
        elif rtype == "aws_elasticache_replication_group":
            if (
                body.get("at_rest_encryption_enabled") is not True
                or body.get("transit_encryption_enabled") is not True
            ):
                out.append(f"{where}: encryption at rest and in transit")
            if body.get("multi_az_enabled") is not True or body.get("automatic_failover_enabled") is not True:
                out.append(f"{where}: Multi-AZ")
            if (_resolve(body.get("snapshot_retention_limit"), var) or 0) < 7:
                out.append(f"{where}: backups kept >= 7 days")
        elif rtype == "aws_db_instance_automated_backups_replication":
            if (_resolve(body.get("retention_period"), var) or 0) < 7:
                out.append(f"{where}: backups kept >= 7 days")
        elif rtype == "aws_eks_cluster" and not _blocks(body, "encryption_config"):
            out.append(f"{where}: secrets encryption (encryption_config)")
        elif rtype == "aws_eks_node_group":
            (scaling,) = _blocks(body, "scaling_config")
            lo, hi = _resolve(scaling.get("min_size"), var), _resolve(scaling.get("max_size"), var)
            if (lo, hi) != (3, 20):
                out.append(f"{where}: node group must scale 3..20, got {lo}..{hi}")
        elif rtype == "aws_ecr_repository":
            enc = _blocks(body, "encryption_configuration")
            if not enc or enc[0].get("encryption_type") != "KMS":
                out.append(f"{where}: KMS encryption")
        elif rtype == "aws_s3_bucket" and name not in encrypted_buckets:
            out.append(f"{where}: no aws:kms server-side encryption configuration")
        elif rtype in KMS_ATTRIBUTE and not body.get(KMS_ATTRIBUTE[rtype]):
            out.append(f"{where}: KMS encryption")
        elif rtype == "aws_kms_key" and body.get("enable_key_rotation") is not True:
            out.append(f"{where}: key rotation")
        elif rtype == "aws_launch_template":
            for bdm in _blocks(body, "block_device_mappings"):
                if any(e.get("encrypted") is not True for e in _blocks(bdm, "ebs")):
                    out.append(f"{where}: EBS encryption")
        elif rtype == "aws_lb" and body.get("enable_deletion_protection") is not True:
            out.append(f"{where}: deletion protection")
        out.extend(_ingress_violations(rtype, name, body, alb_sgs))
    return out


def _ingress_violations(rtype: str, name: str, body: dict[str, Any], alb_sgs: set[str]) -> list[str]:
    """0.0.0.0/0 (or ::/0) ingress is allowed only on 443/tcp of a security group an aws_lb uses."""
    rules: list[tuple[str, dict[str, Any], Any]] = []
    if rtype == "aws_security_group":
        rules = [
            (name, r, [*r.get("cidr_blocks", []), *r.get("ipv6_cidr_blocks", [])])
            for r in _blocks(body, "ingress")
        ]
    elif rtype == "aws_security_group_rule" and body.get("type") == "ingress":
        sg = re.search(r"aws_security_group\.(\w+)\.id", str(body.get("security_group_id")))
        rules = [
            (
                sg.group(1) if sg else "?",
                body,
                [*body.get("cidr_blocks", []), *body.get("ipv6_cidr_blocks", [])],
            )
        ]
    elif rtype == "aws_vpc_security_group_ingress_rule":
        sg = re.search(r"aws_security_group\.(\w+)\.id", str(body.get("security_group_id")))
        rules = [(sg.group(1) if sg else "?", body, [body.get("cidr_ipv4"), body.get("cidr_ipv6")])]
    out = []
    for sg_name, rule, cidrs in rules:
        if not _open_world(cidrs):
            continue
        https_only = (
            rule.get("from_port") == 443
            and rule.get("to_port") == 443
            and rule.get("protocol", rule.get("ip_protocol")) == "tcp"
        )
        if not (https_only and sg_name in alb_sgs):
            out.append(f"{rtype}.{name}: 0.0.0.0/0 ingress other than 443/tcp on the ALB")
    return out


def terraform_fmt(root: Path, tf_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(root)],
        capture_output=True,
        text=True,
        env=tf_env,
        timeout=60,
        check=False,
    )


# --------------------------------------------------------------------------- #
# Kubernetes
# --------------------------------------------------------------------------- #


def load_manifests(paths: Iterable[Path]) -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in paths:
        with path.open() as f:
            docs.extend((path, d) for d in yaml.safe_load_all(f) if d)
    return docs


# Kinds the official client has no model for, with the fields we allow (one level of nesting
# is enough to catch typos in these small objects; kubernetes-validate has no schema for them).
CRD_FIELDS: dict[tuple[str, str], dict[str, set[str]]] = {
    ("external-secrets.io/v1", "SecretStore"): {
        "spec": {"provider", "refreshInterval", "conditions", "controller"}
    },
    ("external-secrets.io/v1", "ExternalSecret"): {
        "spec": {"refreshInterval", "secretStoreRef", "target", "data", "dataFrom", "refreshPolicy"},
    },
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"): {
        "spec": {"targetRef", "updatePolicy", "resourcePolicy", "recommenders"},
    },
}


def model_class(api_version: str, kind: str) -> str | None:
    """The official client's model name for a built-in kind (V1Deployment, V2HorizontalPodAutoscaler)."""
    version = api_version.rsplit("/", 1)[-1]
    name = f"{version[0].upper()}{version[1:]}{kind}"
    return name if hasattr(kubernetes.client.models, name) else None


def _unknown_fields(data: Any, type_name: str, path: str) -> Iterator[str]:
    if m := re.fullmatch(r"list\[(.+)\]", type_name):
        for i, item in enumerate(data if isinstance(data, list) else []):
            yield from _unknown_fields(item, m.group(1), f"{path}[{i}]")
        return
    if m := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        for k, v in (data or {}).items():
            yield from _unknown_fields(v, m.group(1), f"{path}.{k}")
        return
    cls = getattr(kubernetes.client.models, type_name, None)
    if cls is None:  # primitive (str, int, object, datetime...)
        return
    if not isinstance(data, dict):
        yield f"{path}: expected an object for {type_name}, got {type(data).__name__}"
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for key, value in data.items():
        if key not in by_json:
            yield f"{path}.{key}: unknown field for {type_name}"
        else:
            yield from _unknown_fields(value, cls.openapi_types[by_json[key]], f"{path}.{key}")


def model_violations(doc: dict[str, Any]) -> list[str]:
    """Unknown fields against the official client's models; CRDs against CRD_FIELDS."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    name = f"{kind}/{doc.get('metadata', {}).get('name')}"
    if (api_version, kind) in CRD_FIELDS:
        allowed = {"apiVersion", "kind", "metadata", *CRD_FIELDS[(api_version, kind)]}
        out = [f"{name}: unknown field {k}" for k in doc if k not in allowed]
        for section, keys in CRD_FIELDS[(api_version, kind)].items():
            out += [f"{name}.{section}: unknown field {k}" for k in doc.get(section, {}) if k not in keys]
        return out
    cls = model_class(api_version, kind)
    if cls is None:
        return [f"{name}: no kubernetes client model for {api_version} {kind}"]
    out = list(_unknown_fields(doc, cls, name))
    try:  # the client's own deserializer enforces required fields and enum values
        kubernetes.client.ApiClient()._ApiClient__deserialize(doc, cls)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as exc:
        out.append(f"{name}: {exc}")
    return out


def kubernetes_validate(doc: dict[str, Any]) -> list[str]:
    """kubernetes-validate --strict against the bundled schemas; CRDs have none and are skipped."""
    import kubernetes_validate as kv

    if (doc.get("apiVersion"), doc.get("kind")) in CRD_FIELDS:
        return []
    try:
        kv.validate(doc, K8S_VERSION, strict=True)
    except kv.ValidationError as exc:
        return [f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {exc.message}"]
    except kv.SchemaNotFoundError as exc:
        return [str(exc)]
    return []


def workload_violations(doc: dict[str, Any]) -> list[str]:
    """Rules every Deployment follows: resources, probes, hardening, zone spread."""
    name = doc["metadata"]["name"]
    spec = doc["spec"]["template"]["spec"]
    out = []
    pod_sc = spec.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        out.append(f"{name}: pod securityContext.runAsNonRoot")
    spreads = spec.get("topologySpreadConstraints", [])
    if not any(
        s.get("topologyKey") == "topology.kubernetes.io/zone"
        and s.get("whenUnsatisfiable") == "DoNotSchedule"
        for s in spreads
    ):
        out.append(f"{name}: no hard topology spread across zones")
    for c in spec.get("containers", []):
        cname = f"{name}/{c.get('name')}"
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(part, {})):
                out.append(f"{cname}: resources.{part} cpu and memory")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe not in c:
                out.append(f"{cname}: {probe}")
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{cname}: readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{cname}: allowPrivilegeEscalation false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            out.append(f"{cname}: capabilities.drop [ALL]")
        if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0 or sc.get("privileged"):
            out.append(f"{cname}: runs as root or privileged")
        if c.get("image", "").endswith(":latest") or ":" not in c.get("image", ""):
            out.append(f"{cname}: image must be pinned to a tag")
    return out


# --------------------------------------------------------------------------- #
# Monitoring
# --------------------------------------------------------------------------- #

PROMQL_WORDS = {
    # aggregations, keywords and functions that may appear without a following "("
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (a lexical approximation good enough for our queries)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # strings
    s = re.sub(r"\{[^}]*\}", "", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)  # ranges
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)  # label lists
    s = re.sub(r"\$\{?\w+\}?", "", s)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d+\w*", word):
            continue
        names.add(word)
    return names


def catalog_metrics(path: Path) -> set[str]:
    """Backticked names in the first column of ENGINE_METRICS.md's tables."""
    return set(re.findall(r"^\|\s*`([A-Za-z_:][\w:]*)`\s*\|", path.read_text(), re.MULTILINE))


def recorded_metrics(rule_files: Iterable[Path]) -> set[str]:
    return {
        r["record"]
        for path in rule_files
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p.get("title", "?"), t["expr"]


def dashboard_violations(path: Path, known: set[str]) -> list[str]:
    """Panels must query only known metrics (catalog, recording rules, ALERTS)."""
    dashboard = json.loads(path.read_text())
    out = [] if dashboard.get("uid") and dashboard.get("title") else [f"{path.name}: uid and title required"]
    exprs = list(dashboard_exprs(dashboard))
    if not exprs:
        out.append(f"{path.name}: no queries")
    for title, expr in exprs:
        unknown = promql_metric_names(expr) - known - {"ALERTS", "time", "vector"}
        if unknown:
            out.append(f"{path.name} panel {title!r}: unknown metrics {sorted(unknown)}")
    return out


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60, check=False)


# --------------------------------------------------------------------------- #
# Runbooks
# --------------------------------------------------------------------------- #

STARTER_COMMAND = re.compile(r"python3?\s+(starters/[\w-]+\.py)([^`\n]*)")


def runbook_commands(paths: Iterable[Path]) -> list[tuple[str, list[str]]]:
    """Every `python starters/X.py ...` command in the runbooks: (script, argv)."""
    found: dict[tuple[str, tuple[str, ...]], None] = {}
    for path in paths:
        for m in STARTER_COMMAND.finditer(path.read_text()):
            argv = re.findall(r'"[^"]*"|\'[^\']*\'|\S+', m.group(2))
            found[(m.group(1), tuple(argv))] = None
    return [(script, list(argv)) for script, argv in found]


@functools.cache
def _help(repo: Path, script: str) -> tuple[int, str, str]:
    """`python SCRIPT --help`, once per script and process (starters import temporalio: ~1 s)."""
    proc = subprocess.run(
        [sys.executable, script, "--help"], cwd=repo, capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


def check_command(repo: Path, script: str, argv: list[str]) -> str | None:
    """None if `script --help` works and lists every option and choice the command uses.

    Returns "missing" when the starter file does not exist yet, else an error message.
    """
    if not (repo / script).exists():
        return "missing"
    code, help_text, stderr = _help(repo, script)
    if code != 0:
        return f"{script} --help exited {code}: {stderr.strip()[-500:]}"
    for flag in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text):
            return f"{script}: option {flag} not in --help"
    choices = re.search(r"\{([\w,-]+)\}", help_text)
    positionals = [a for a in argv if not a.startswith("-")]
    if choices and positionals and not positionals[0].startswith(("'", '"', "$")):
        allowed = choices.group(1).split(",")
        if positionals[0] not in allowed:
            return f"{script}: {positionals[0]!r} is not one of {allowed}"
    return None


def anchors(markdown: str) -> set[str]:
    """GitHub-style heading anchors."""
    out = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        out.add(slug)
    return out
