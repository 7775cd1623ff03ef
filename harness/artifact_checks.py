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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import hcl2
import kubernetes.client
import yaml

from harness.support import REPO

TF_PRIMARY = REPO / "infrastructure" / "terraform"
TF_SECONDARY = REPO / "infrastructure" / "terraform-secondary"
K8S_DIR = REPO / "k8s" / "production"
MON_DIR = REPO / "monitoring" / "production"
RUNBOOK_DIR = REPO / "docs" / "runbooks"
K8S_VERSION = "1.32"

# --------------------------------------------------------------------------- #
# Terraform
# --------------------------------------------------------------------------- #
#
# A root is read together with the local modules it calls (recursively). Each module resource's
# body has its `var.x` arguments replaced by what the caller passes (itself resolved in the
# caller's scope), so the invariants below judge the effective arguments, wherever they live.
# What terraform validate would say about module calls and references cannot be had here (no
# AWS provider can be downloaded); module_violations() is the offline subset of it.

META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}
_UNSET = object()
# References in expressions: var.x, local.x, module.x(.y), data.t.n, and resources t.n.
_REF = re.compile(
    r"(?<![\w.])(?:(var|local)\.(\w+)|module\.(\w+)(?:\.(\w+))?|data\.(\w+)\.(\w+)|((?:aws|random|tls)_\w+)\.(\w+))"
)


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL quotes on keys and strings; strip them, block markers and comments."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@dataclass(frozen=True)
class TfDir:
    """The blocks of one directory's .tf files (a root or a module), unevaluated."""

    path: Path
    resources: dict[str, dict[str, Any]]  # "type.name" -> body
    data: dict[str, dict[str, Any]]  # "data.type.name" -> body
    variables: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    locals: dict[str, Any]
    modules: dict[str, dict[str, Any]]  # call name -> arguments (source included)
    moved: list[tuple[str, str]]

    def expressions(self) -> Iterator[tuple[str, Any]]:
        """(where, value) of everything Terraform evaluates here (moved blocks are addresses)."""
        for kind, blocks in (
            ("resource", self.resources),
            ("data", self.data),
            ("output", self.outputs),
            ("module", self.modules),
        ):
            for name, body in blocks.items():
                yield f"{kind} {name}", body
        for name, body in self.variables.items():
            yield f"variable {name}", {k: v for k, v in body.items() if k != "type"}
        for name, value in self.locals.items():
            yield f"local {name}", value


@functools.cache
def parse_dir(path: Path) -> TfDir:
    resources: dict[str, dict[str, Any]] = {}
    data: dict[str, dict[str, Any]] = {}
    variables: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}
    local_values: dict[str, Any] = {}
    modules: dict[str, dict[str, Any]] = {}
    moved: list[tuple[str, str]] = []
    for tf_file in sorted(path.glob("*.tf")):
        with tf_file.open() as f:
            doc = _unquote(hcl2.load(f))
        for kind, target in (("resource", resources), ("data", data)):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        target[f"data.{rtype}.{name}" if kind == "data" else f"{rtype}.{name}"] = body
        for block in doc.get("variable", []):
            variables.update(block)
        for block in doc.get("output", []):
            outputs.update(block)
        for block in doc.get("locals", []):
            local_values.update(block)
        for block in doc.get("module", []):
            modules.update(block)
        for block in doc.get("moved", []):
            moved.append((_strip_interp(block["from"]), _strip_interp(block["to"])))
    return TfDir(path, resources, data, variables, outputs, local_values, modules, moved)


def _strip_interp(value: str) -> str:
    return value[2:-1] if value.startswith("${") and value.endswith("}") else value


def module_dir(caller: Path, source: Any) -> Path | None:
    """The directory of a local module source ("./modules/x", "../terraform/modules/x")."""
    if not isinstance(source, str) or not source.startswith(("./", "../")):
        return None
    return (caller / source).resolve()


def _substitute(value: Any, inputs: dict[str, Any]) -> Any:
    """Replace every value that is exactly `${var.x}` by inputs[x] (when x is known)."""
    if isinstance(value, dict):
        return {k: _substitute(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, inputs) for v in value]
    if isinstance(value, str) and (m := re.fullmatch(r"\$\{var\.(\w+)\}", value)) and m.group(1) in inputs:
        return inputs[m.group(1)]
    return value


class Resource(NamedTuple):
    module: str  # "" in the root, "module.eks" (or "module.a.module.b") in a module
    rtype: str
    name: str
    body: dict[str, Any]
    none: bool = False  # count/for_each known to be empty with these inputs: no instance at all

    @property
    def address(self) -> str:
        return f"{self.module}.{self.rtype}.{self.name}".lstrip(".")


def _instances(
    tf_dir: TfDir, prefix: str, inputs: dict[str, Any]
) -> Iterator[tuple[str, TfDir, dict[str, Any]]]:
    """This directory and every local module it calls: (module prefix, dir, variable values)."""
    yield prefix, tf_dir, inputs
    for call, args in tf_dir.modules.items():
        child_path = module_dir(tf_dir.path, args.get("source"))
        if child_path is None or not child_path.is_dir():
            continue
        child = parse_dir(child_path)
        child_inputs = {}
        for var, body in child.variables.items():
            value = _substitute(args[var], inputs) if var in args else body.get("default", _UNSET)
            if value is not _UNSET:
                child_inputs[var] = value
        yield from _instances(child, f"{prefix}.module.{call}".lstrip("."), child_inputs)


@functools.cache
def load_tf(root: Path) -> dict[str, Any]:
    """A root and its modules: resources (effective arguments), root variables (defaults + *.tfvars),
    root outputs, and the parsed directories by module prefix ("" for the root)."""
    root_dir = parse_dir(root)
    variables = {name: body.get("default") for name, body in root_dir.variables.items()}
    for path in sorted(root.glob("*.tfvars")):
        with path.open() as f:
            variables.update(_unquote(hcl2.load(f)))
    resources: list[Resource] = []
    dirs: dict[str, TfDir] = {}
    for prefix, tf_dir, inputs in _instances(root_dir, "", variables):
        dirs[prefix] = tf_dir
        for key, body in tf_dir.resources.items():
            rtype, name = key.split(".", 1)
            effective = _substitute(body, inputs)
            resources.append(Resource(prefix, rtype, name, effective, _no_instances(body, inputs)))
    return {"resources": resources, "variables": variables, "outputs": root_dir.outputs, "dirs": dirs}


def _static(expr: str, inputs: dict[str, Any]) -> Any:
    """Value of the few expression forms count/for_each use here (`c ? a : b`, `==`/`!=` null,
    var.x, toset(), literals); ValueError for anything else (unknown)."""
    expr = expr.strip()
    if m := re.fullmatch(r"([^?]+?)\s*\?\s*([^:]+?)\s*:\s*(.+)", expr, re.DOTALL):
        return _static(m.group(2) if _static(m.group(1), inputs) else m.group(3), inputs)
    if m := re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", expr):
        equal = _static(m.group(1), inputs) == _static(m.group(3), inputs)
        return equal if m.group(2) == "==" else not equal
    if m := re.fullmatch(r"var\.(\w+)", expr):
        if m.group(1) not in inputs:
            raise ValueError(expr)
        return inputs[m.group(1)]
    if m := re.fullmatch(r"toset\((.+)\)", expr, re.DOTALL):
        return set(_static(m.group(1), inputs))
    try:
        return json.loads(expr)
    except json.JSONDecodeError:
        raise ValueError(expr) from None


def _no_instances(body: dict[str, Any], inputs: dict[str, Any]) -> bool:
    """True when count/for_each is statically 0/empty (a module resource the caller switched off)."""
    for key in ("count", "for_each"):
        value = body.get(key)
        if isinstance(value, str):
            try:
                value = _static(_strip_interp(value), inputs)
            except ValueError:
                return False
        if value is not None and not value:
            return True
    return False


def _refs(value: Any) -> Iterator[re.Match[str]]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)
    elif isinstance(value, str):
        yield from _REF.finditer(value)


def _kind(body: dict[str, Any]) -> str:
    return "count" if "count" in body else "for_each" if "for_each" in body else "single"


def module_violations(root: Path) -> list[str]:
    """What `terraform validate` would refuse in module wiring, checked offline.

    For the root and every local module it calls: each module source exists; each argument of a
    module call is a variable the module declares and every variable without a default is passed;
    every var./local./module.x.y/data./resource reference names something declared in its scope;
    every moved block's target is declared (with matching count/for_each) and its source is not.
    """
    out: list[str] = []
    dirs = load_tf(root)["dirs"]
    for prefix, tf_dir in dirs.items():
        scope = prefix or root.name
        for call, args in tf_dir.modules.items():
            child_path = module_dir(tf_dir.path, args.get("source"))
            if child_path is None or not any(child_path.glob("*.tf")):
                out.append(f"{scope}: module.{call} source {args.get('source')!r} is not a local module")
                continue
            child = parse_dir(child_path)
            for arg in args.keys() - META_ARGS - child.variables.keys():
                out.append(f"{scope}: module.{call} passes {arg!r}, not a variable of {args['source']}")
            for var, body in child.variables.items():
                if "default" not in body and var not in args:
                    out.append(f"{scope}: module.{call} does not pass required variable {var!r}")
        for where, value in tf_dir.expressions():
            for m in _refs(value):
                problem = _reference_problem(tf_dir, m)
                if problem:
                    out.append(f"{scope} {where}: {problem}")
        out.extend(f"{scope}: {p}" for p in _moved_problems(tf_dir, dirs, prefix))
    return out


def _reference_problem(tf_dir: TfDir, m: re.Match[str]) -> str | None:
    kind, name, call, output, dtype, dname, rtype, rname = m.groups()
    if kind:
        declared = tf_dir.variables if kind == "var" else tf_dir.locals
        return None if name in declared else f"{kind}.{name} is not declared"
    if call:
        return _module_reference_problem(tf_dir, call, output)
    if dtype:
        return None if f"data.{dtype}.{dname}" in tf_dir.data else f"data.{dtype}.{dname} is not declared"
    return None if f"{rtype}.{rname}" in tf_dir.resources else f"{rtype}.{rname} is not declared here"


def _module_reference_problem(tf_dir: TfDir, call: str, output: str | None) -> str | None:
    if call not in tf_dir.modules:
        return f"module.{call} is not declared"
    source = tf_dir.modules[call].get("source")
    child_path = module_dir(tf_dir.path, source)
    if output is None or child_path is None or not child_path.is_dir():
        return None  # a missing module directory is reported once, at the call
    if output not in parse_dir(child_path).outputs:
        return f"module.{call}.{output}: {source} has no output {output!r}"
    return None


def _split_address(address: str) -> tuple[str, str, str | None]:
    """module.a.aws_x.y["k"] -> ("module.a", "aws_x.y", '"k"')."""
    m = re.fullmatch(r"((?:module\.\w+\.)*)(\w+\.\w+)(?:\[(.+)\])?", address)
    if not m:
        raise ValueError(f"not a resource address: {address}")
    return m.group(1).rstrip("."), m.group(2), m.group(3)


def _moved_problems(tf_dir: TfDir, dirs: dict[str, TfDir], prefix: str) -> Iterator[str]:
    for src, dst in tf_dir.moved:
        if src in tf_dir.resources:
            yield f"moved from {src}, which is still declared"
        to_module, to_resource, to_index = _split_address(dst)
        target_dir = dirs.get(f"{prefix}.{to_module}".strip("."))
        body = target_dir.resources.get(to_resource) if target_dir else None
        if body is None:
            yield f"moved to {dst}, which is not declared"
        elif to_index is None and _kind(body) == "single" and _split_address(src)[2] is not None:
            yield f"moved {src} to {dst}: an instance key onto a resource without count/for_each"
        elif to_index is not None and _kind(body) != ("count" if to_index.isdigit() else "for_each"):
            yield f"moved to {dst}: the index does not fit the target's {_kind(body)}"


def declared_addresses(root: Path) -> dict[str, str]:
    """Every resource address of a root and its modules that has instances -> single | count | for_each."""
    return {r.address: _kind(r.body) for r in load_tf(root)["resources"] if not r.none}


def state_address_violations(root: Path, before: dict[str, str], added: Iterable[str] = ()) -> list[str]:
    """Addresses an existing state holds (`before`: address -> kind) that the configuration would
    destroy (neither declared any more nor moved to a declared resource of the same kind), and
    declared resources that are neither in that state nor a moved target (would be created) unless
    listed in `added` (resources created on purpose since; each must be declared and new)."""
    declared = declared_addresses(root)
    added = set(added)
    moved = dict(parse_dir(root).moved)
    out = []
    targets = set()
    for address, kind in before.items():
        if address in declared:
            if declared[address] != kind:
                out.append(f"{address}: {kind} became {declared[address]} (instances re-keyed)")
            continue
        if address not in moved:
            out.append(f"{address}: no longer declared and not moved: would be destroyed")
            continue
        module, resource, index = _split_address(moved[address])
        target = f"{module}.{resource}".lstrip(".")
        targets.add(target)
        target_kind = declared.get(target)
        expected = kind if index is None else ("count" if index.isdigit() else "for_each")
        if target_kind is None:
            out.append(f"{address}: moved to {moved[address]}, which is not declared")
        elif target_kind != expected or (index is not None and kind != "single"):
            out.append(f"{address} ({kind}): moved to {moved[address]} ({target_kind})")
    for address in declared.keys() - before.keys() - targets - added:
        out.append(f"{address}: not in the existing state: would be created")
    for address in sorted(added - (declared.keys() - before.keys() - targets)):
        out.append(f"{address}: listed as added, but not a new declared resource")
    return out


def _qualify(expr: str, scope: str, moved: dict[str, str]) -> str:
    """Resource/data/var/local references of an expression as full addresses, through moved blocks."""

    def full(m: re.Match[str]) -> str:
        ref = f"{scope}.{m.group(0)}".lstrip(".")
        return moved.get(ref, ref)

    return _REF.sub(full, expr)


def trace(root: Path, value: Any, scope: str = "") -> str:
    """An expression of `scope` followed through module outputs (`${module.x.y}`), with its
    references as full addresses: what it means in the state."""
    dirs = load_tf(root)["dirs"]
    while isinstance(value, str) and (m := re.fullmatch(r"\$\{module\.(\w+)\.(\w+)\}", value)):
        scope = f"{scope}.module.{m.group(1)}".lstrip(".")
        value = dirs[scope].outputs[m.group(2)]["value"]
    return _qualify(json.dumps(value), scope, {})


def trace_output(root: Path, name: str) -> str:
    """A root output followed through module outputs (see trace)."""
    return trace(root, load_tf(root)["outputs"][name]["value"])


def output_meaning_violations(root: Path, before: dict[str, str]) -> list[str]:
    """Outputs (name -> pre-module expression) that are gone or now lead somewhere else."""
    moved = dict(parse_dir(root).moved)
    outputs = load_tf(root)["outputs"]
    out = []
    for name, expr in before.items():
        if name not in outputs:
            out.append(f"output {name}: removed")
            continue
        was, now = _qualify(json.dumps(expr), "", moved), trace_output(root, name)
        if was != now:
            out.append(f"output {name}: was {was}, now {now}")
    return out


def _resolve(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str) and (m := re.fullmatch(r"\$\{var\.(\w+)\}", value)):
        return variables.get(m.group(1))
    return value


def _blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


def _alb_security_groups(resources: list[Resource]) -> set[tuple[str, str]]:
    """(module, name) of the security groups an aws_lb uses."""
    refs: set[tuple[str, str]] = set()
    for r in resources:
        if r.rtype == "aws_lb":
            found = re.findall(r"aws_security_group\.(\w+)\.id", json.dumps(r.body.get("security_groups")))
            refs.update((r.module, sg) for sg in found)
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
    """Production invariants of one Terraform root and the modules it calls, as a list of violations."""
    tf = load_tf(root)
    res, var = tf["resources"], tf["variables"]
    out: list[str] = []
    alb_sgs = _alb_security_groups(res)
    encrypted_buckets = {
        (r.module, m.group(1))
        for r in res
        if r.rtype == "aws_s3_bucket_server_side_encryption_configuration" and "aws:kms" in json.dumps(r.body)
        for m in [re.search(r"aws_s3_bucket\.(\w+)\.id", str(r.body.get("bucket")))]
        if m
    }
    for r in res:
        if r.none:
            continue
        rtype, name, body, where = r.rtype, r.name, r.body, r.address
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
        elif rtype == "aws_db_subnet_group" and re.search(
            r"aws_subnet\.public|public_subnet", json.dumps(body)
        ):
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
        elif rtype == "aws_s3_bucket" and (r.module, name) not in encrypted_buckets:
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
        out.extend(_ingress_violations(r, alb_sgs))
    return out


def _ingress_violations(r: Resource, alb_sgs: set[tuple[str, str]]) -> list[str]:
    """0.0.0.0/0 (or ::/0) ingress is allowed only on 443/tcp of a security group an aws_lb uses."""
    rtype, name, body = r.rtype, r.name, r.body
    rules: list[tuple[str, dict[str, Any], Any]] = []
    if rtype == "aws_security_group":
        rules = [
            (name, rule, [*rule.get("cidr_blocks", []), *rule.get("ipv6_cidr_blocks", [])])
            for rule in _blocks(body, "ingress")
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
        if not (https_only and (r.module, sg_name) in alb_sgs):
            out.append(f"{r.address}: 0.0.0.0/0 ingress other than 443/tcp on the ALB")
    return out


def _ignored(body: dict[str, Any]) -> set[str]:
    """Attributes a resource's lifecycle ignore_changes lists."""
    names: set[str] = set()
    for lifecycle in _blocks(body, "lifecycle"):
        ignore = lifecycle.get("ignore_changes", [])
        names.update(_strip_interp(n) for n in (ignore if isinstance(ignore, list) else [ignore]))
    return names


def preview_listener_violations(root: Path) -> list[str]:
    """Blue-green's preview route on the ALB (activities/router/alb.py, aws.preview_listener_arn): a
    listener on its own port of the same load balancer, HTTPS with the users' listener's certificate,
    created forwarding to the green pool and left to the engine (ignore_changes = [default_action]),
    its port open in the ALB's security group but not to the world, and root output
    alb_preview_listener_arn is that listener's ARN."""
    res = [r for r in load_tf(root)["resources"] if not r.none]
    listeners = [r for r in res if r.rtype == "aws_lb_listener"]
    main = [r for r in listeners if r.body.get("port") == 443]
    preview = [r for r in listeners if r.body.get("port") != 443]
    if len(main) != 1 or len(preview) != 1:
        return [f"one users' listener (443) and one preview listener expected: {len(main)}, {len(preview)}"]
    (users,), (pre,) = main, preview
    b, out = pre.body, []
    port = b.get("port")
    if not isinstance(port, int):
        out.append(f"{pre.address}: port {port!r} is not a static port")
    if b.get("load_balancer_arn") != users.body.get("load_balancer_arn") or pre.module != users.module:
        out.append(f"{pre.address}: not on the users' load balancer")
    if b.get("protocol") != "HTTPS" or b.get("certificate_arn") != users.body.get("certificate_arn"):
        out.append(f"{pre.address}: HTTPS with the users' listener's certificate")
    actions = _blocks(b, "default_action")
    if (
        len(actions) != 1
        or actions[0].get("type") != "forward"
        or 'pool["green"]' not in json.dumps(actions[0]).replace('\\"', '"')
    ):
        out.append(f"{pre.address}: created forwarding to the green pool's target group")
    if "default_action" not in _ignored(b):
        out.append(f"{pre.address}: ignore_changes must list default_action (the engine rewrites it)")
    sgs = {(m, n) for m, n in _alb_security_groups(res) if m == pre.module}
    rules = [
        rule
        for r in res
        if r.rtype == "aws_security_group" and (r.module, r.name) in sgs
        for rule in _blocks(r.body, "ingress")
        if rule.get("from_port") == port and rule.get("to_port") == port
    ]
    if not rules:
        out.append(f"{pre.address}: no ingress on port {port} in the ALB's security group")
    for rule in rules:
        if _open_world(rule.get("cidr_blocks", [])) or _open_world(rule.get("ipv6_cidr_blocks", [])):
            out.append(f"{pre.address}: port {port} open to the world (it serves an unreleased version)")
    outputs = load_tf(root)["outputs"]
    expected = json.dumps(f"${{{pre.address}.arn}}")
    if "alb_preview_listener_arn" not in outputs:
        out.append("output alb_preview_listener_arn: missing (the engine's aws.preview_listener_arn)")
    elif (got := trace_output(root, "alb_preview_listener_arn")) != expected:
        out.append(f"output alb_preview_listener_arn: {got}, not {expected}")
    return out


# What the route53 provider's UPSERT (activities/global_entry/route53.py) changes that Terraform's
# configuration cannot know: the failover type, or the weight (dr.aws.routing: weighted). Its alias
# and health check are the roots' own values (deploy-code.yaml dr.aws is filled from their outputs),
# so those stay Terraform's.
ENGINE_ROUTE53_CHANGES = {"Failover": "failover_routing_policy", "Weight": "weighted_routing_policy"}


def failover_record_violations(root: Path) -> list[str]:
    """Every Route53 failover or weighted record ignores what a DR failover changes on it
    (ENGINE_ROUTE53_CHANGES), so an apply after a failover does not send users back to the failed
    region."""
    out = []
    for r in load_tf(root)["resources"]:
        if r.rtype == "aws_route53_record" and not r.none:
            policies = {p for p in ENGINE_ROUTE53_CHANGES.values() if _blocks(r.body, p)}
            missing = policies - _ignored(r.body)
            if missing:
                out.append(f"{r.address}: lifecycle ignore_changes must list {', '.join(sorted(missing))}")
    return out


def failover_health_check_violations(root: Path, environments: dict[str, Any]) -> list[str]:
    """The engine UPSERTs a failover record with the health_check_id deploy-code.yaml gives its region
    (none: the record loses its health check). A record with a health check in Terraform needs one there."""
    checked = {
        r.body.get("set_identifier")
        for r in load_tf(root)["resources"]
        if r.rtype == "aws_route53_record" and _blocks(r.body, "failover_routing_policy")
        if r.body.get("health_check_id")
    }
    out = []
    for env, conf in environments.items():
        regions = (((conf or {}).get("dr") or {}).get("aws") or {}).get("regions") or {}
        for region, rconf in regions.items():
            if rconf.get("set_identifier") in checked and not rconf.get("health_check_id"):
                out.append(
                    f"environments.{env}.dr.aws.regions.{region}: no health_check_id, but record "
                    f"{rconf['set_identifier']!r} has one (a failover would remove it)"
                )
    return out


def _through_module_outputs(dirs: dict[str, TfDir], scope: str, value: Any) -> tuple[str, Any]:
    """`${module.x.y}` of `scope` followed into module x's output y (repeatedly): (scope, expression)
    where it ends; an undeclared module or output ends the walk where it is."""
    while isinstance(value, str) and (m := re.fullmatch(r"\$\{module\.(\w+)\.(\w+)\}", value)):
        child = dirs.get(f"{scope}.module.{m.group(1)}".lstrip("."))
        if child is None or m.group(2) not in child.outputs:
            break
        scope, value = f"{scope}.module.{m.group(1)}".lstrip("."), child.outputs[m.group(2)].get("value")
    return scope, value


def db_parameter_group_violations(root: Path) -> list[str]:
    """Every RDS instance uses a parameter group of its own, declared next to it or in a module its
    configuration calls (followed through module outputs): not AWS's default (default.*) and not
    shared with another instance. The DR fence sets default_transaction_read_only in the instance's
    own group and refuses default or shared ones (activities/database/rds.py)."""
    tf = load_tf(root)
    res = [r for r in tf["resources"] if not r.none]
    groups = {(r.module, r.name) for r in res if r.rtype == "aws_db_parameter_group"}
    users: dict[tuple[str, str], list[str]] = {}
    out = []
    for r in res:
        if r.rtype != "aws_db_instance":
            continue
        value = r.body.get("parameter_group_name")
        scope, target = _through_module_outputs(tf["dirs"], r.module, value)
        m = re.fullmatch(r"\$\{aws_db_parameter_group\.(\w+)\.name\}", str(target))
        if value is None:
            out.append(f"{r.address}: no parameter_group_name (AWS's default group cannot be fenced)")
        elif m is None or (scope, m.group(1)) not in groups:
            out.append(f"{r.address}: parameter group {value!r} is not an aws_db_parameter_group here")
        else:
            users.setdefault((scope, m.group(1)), []).append(r.address)
    for (module, name), instances in users.items():
        if len(instances) > 1:
            group = f"{module}.aws_db_parameter_group.{name}".lstrip(".")
            out.append(f"{group} is shared by {', '.join(instances)} (a fence would hit both)")
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
