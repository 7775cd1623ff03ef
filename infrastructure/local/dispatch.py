"""Which workers of a region take jobs: the worker component's router.

Workers pull their jobs from the region's database, so nothing sits in front of them to
split traffic. What a release needs from a router is still there: a new version's workers
start taking jobs only when the release says so, a batch of old ones stops taking new jobs
(drains) and finishes the one in hand before it is stopped, and what is in force can be read
back. ``dispatch-worker.json`` in the region's state dir holds it::

    {"members": {"blue": [0, 1], "green": [0]}, "draining": ["worker-blue-1"]}

A worker takes jobs when its slot is a member of its pool and its name is not draining.
Without the file (a platform no release has touched yet) every running worker takes jobs.
Writes are atomic (a temporary file renamed over the old one), so a worker never reads half.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from infrastructure.local.layout import WORKER, Layout, instance_name

FILE = "dispatch-worker.json"


@dataclass
class Dispatch:
    """Pool -> slots that take jobs, and the workers draining (no new job)."""

    members: dict[str, list[int]] = field(default_factory=dict)
    draining: list[str] = field(default_factory=list)

    def takes_jobs(self, pool: str, slot: int) -> bool:
        return slot in self.members.get(pool, []) and instance_name(pool, slot, WORKER) not in self.draining


def path(layout: Layout) -> Path:
    return layout.state_dir / FILE


def parse(text: str) -> Dispatch:
    body = json.loads(text)
    members = {str(p): sorted(int(s) for s in slots) for p, slots in dict(body.get("members", {})).items()}
    return Dispatch(members=members, draining=sorted(str(n) for n in body.get("draining", [])))


def read(layout: Layout) -> Dispatch | None:
    """What is in force; None when no release (or ``up``) has written it yet."""
    try:
        return parse(path(layout).read_text())
    except FileNotFoundError:
        return None


def write(layout: Layout, dispatch: Dispatch) -> None:
    target = path(layout)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    members = {p: sorted(s) for p, s in sorted(dispatch.members.items())}
    body = {"members": members, "draining": dispatch.draining}
    tmp.write_text(json.dumps(body, sort_keys=True))
    tmp.replace(target)


def admit(layout: Layout, pool: str, slots: list[int]) -> None:
    """Let ``slots`` of ``pool`` take jobs too (a failover scaling the workers up); no file: nothing
    to do, every worker takes jobs already."""
    current = read(layout)
    if current is None:
        return
    current.members[pool] = sorted(set(current.members.get(pool, [])) | set(slots))
    names = {instance_name(pool, s, WORKER) for s in slots}
    current.draining = [n for n in current.draining if n not in names]
    write(layout, current)
