"""Infrastructure provider: the real terraform CLI on one root, state in the state dir.

- ``plan`` runs ``terraform plan -detailed-exitcode -out FILE`` (exit 2 = changes) and
  summarises the saved plan from ``terraform show -json``;
- ``apply`` applies exactly that saved file (never a new plan), after checking its
  sha256, and heartbeats while terraform runs;
- runs on one root are serialised twice: terraform's own state lock
  (``-lock-timeout``) and an exclusive file lock of ours around each command sequence;
- an apply that is retried after a worker crash does not apply twice: a journal entry
  (the plan's checksum and the state serial it was planned on) is written before the
  apply; on retry a state serial past the planned one with a journal entry means the
  first attempt applied it.

The environment points ``TF_CLI_CONFIG_FILE`` at an empty file of ours (the machine's
may name a file that does not exist) and keeps ``TF_DATA_DIR`` in the state dir, so
stacks sharing one root never share a backend.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.contracts.pipeline import TerraformPlan, TerraformSpec
from engine.errors import BadRequest

LOCK_TIMEOUT = "120s"


class TerraformError(RuntimeError):
    """terraform failed (transient or not; the message carries its stderr)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Terraform:
    def __init__(self, spec: TerraformSpec) -> None:
        self.spec = spec
        self.root = Path(spec.root)
        self.dir = Path(spec.state_dir)
        self.state_file = self.dir / "terraform.tfstate"
        self.binary = shutil.which("terraform")
        if self.binary is None:
            msg = "terraform is not on PATH (it ships with these machines; see scripts/dev.sh)"
            raise BadRequest(msg)

    # ---- plumbing ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        rc = self.dir / "terraformrc"
        if not rc.exists():
            rc.write_text("")
        return {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_DATA_DIR": str(self.dir / "data"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }

    def run(
        self, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), f"-chdir={self.root}", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode not in ok:
            msg = f"terraform {args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-3000:]}"
            raise TerraformError(msg)
        return proc

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Our own lock around a command sequence on this root's state."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".pipeline.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def init(self) -> None:
        self.run("init", "-input=false", "-reconfigure", f"-backend-config=path={self.state_file}")

    def serial(self) -> tuple[int | None, str | None]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None, None
        return int(state.get("serial", 0)), state.get("lineage")

    def _var_file(self, directory: Path) -> list[str]:
        if not self.spec.vars:
            return []
        path = directory / "pipeline.auto.tfvars.json"
        path.write_text(json.dumps(self.spec.vars, sort_keys=True))
        return [f"-var-file={path}"]

    def summary(self, plan_file: Path) -> list[str]:
        shown = json.loads(self.run("show", "-json", str(plan_file)).stdout)
        lines = []
        for rc in shown.get("resource_changes", []):
            actions = rc["change"]["actions"]
            if actions in (["no-op"], ["read"]):
                continue
            before, after = rc["change"].get("before") or {}, rc["change"].get("after") or {}
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            detail = _input_diff(before.get("input"), after.get("input")) if "input" in changed else ""
            lines.append(f"{rc['address']}: {'/'.join(actions)}{detail}")
        return lines

    # ---- operations ----------------------------------------------------------------------------
    def plan(self, plan_id: str, *, dry_run: bool = False) -> TerraformPlan:
        with self.exclusive():
            self.init()
            prior, lineage = self.serial()
            if dry_run:
                with tempfile.TemporaryDirectory(prefix="tfplan-") as tmp:
                    plan_file = Path(tmp) / "plan.tfplan"
                    proc = self.run(
                        "plan", "-input=false", "-lock=false", "-detailed-exitcode",
                        f"-out={plan_file}", *self._var_file(Path(tmp)), ok=(0, 2),
                    )  # fmt: skip
                    summary = self.summary(plan_file) if proc.returncode == 2 else []
                return TerraformPlan(changes=proc.returncode == 2, summary=summary, prior_serial=prior)
            plans = self.dir / "plans"
            plans.mkdir(parents=True, exist_ok=True)
            plan_file = plans / f"{plan_id}.tfplan"
            proc = self.run(
                "plan", "-input=false", f"-lock-timeout={LOCK_TIMEOUT}", "-detailed-exitcode",
                f"-out={plan_file}", *self._var_file(plans), ok=(0, 2),
            )  # fmt: skip
            changes = proc.returncode == 2
            return TerraformPlan(
                changes=changes,
                summary=self.summary(plan_file) if changes else [],
                plan_file=str(plan_file),
                plan_sha256=_sha256(plan_file),
                prior_serial=prior,
                lineage=lineage,
            )

    def apply(self, plan: TerraformPlan, progress: Callable[[str], None]) -> tuple[int | None, bool]:
        """Apply the saved plan once; returns ``(state serial, resumed)``."""
        if plan.plan_file is None or plan.plan_sha256 is None:
            msg = "only a saved plan can be applied"
            raise BadRequest(msg)
        plan_file = Path(plan.plan_file)
        journal = self.dir / "applies" / f"{plan.plan_sha256}.json"
        with self.exclusive():
            serial, lineage = self.serial()
            if journal.exists() and serial != plan.prior_serial:
                return serial, True  # an earlier attempt applied this very plan
            if serial != plan.prior_serial or (plan.lineage and lineage != plan.lineage):
                msg = (
                    f"the state changed since the plan (serial {plan.prior_serial} -> {serial}); "
                    "the saved plan is stale: run the release again to plan anew"
                )
                raise BadRequest(msg)
            if not plan_file.exists() or _sha256(plan_file) != plan.plan_sha256:
                msg = f"saved plan {plan_file} is missing or not the plan that was approved"
                raise BadRequest(msg)
            journal.parent.mkdir(parents=True, exist_ok=True)
            journal.write_text(json.dumps({"plan": str(plan_file), "prior_serial": plan.prior_serial}))
            self.init()
            proc = subprocess.Popen(
                [str(self.binary), f"-chdir={self.root}", "apply", "-input=false",
                 f"-lock-timeout={LOCK_TIMEOUT}", "-auto-approve", str(plan_file)],
                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            started = time.monotonic()
            while proc.poll() is None:
                progress(f"terraform apply running for {time.monotonic() - started:.0f}s")
                time.sleep(0.5)
            out, err = proc.communicate()
            if proc.returncode != 0:
                if self.serial()[0] == plan.prior_serial:
                    journal.unlink(missing_ok=True)  # nothing was written: a retry may apply it
                msg = f"terraform apply failed ({proc.returncode}): {(err or out)[-3000:]}"
                raise TerraformError(msg)
            return self.serial()[0], False

    def outputs(self) -> dict[str, Any]:
        with self.exclusive():
            raw = json.loads(self.run("output", "-json").stdout or "{}")
        return {k: v.get("value") for k, v in raw.items()}


def _input_diff(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return " (" + ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys) + ")"
    if before is None and isinstance(after, dict):
        return " (" + ", ".join(f"{k}={v!r}" for k, v in sorted(after.items())) + ")"
    return ""
