"""Whether a Swarm stack has converged: a pure judgement of one look at its services and their tasks.

`SwarmStack.wait_converged` polls the engine, builds a `ServiceSnapshot` per service from the inspect data
(through the views in targets/views.py) and asks `judge` what the stack is waiting for, which tasks
became ready, and whether to give up. Everything here is data in, data out: the tests feed it recorded
inspect JSON (tests/fixtures/inspect/).

The rules. Swarm starts everything at once, so the backend is judged only after the services it depends
on are ready: backend tasks that failed before then (a replica that could not reach its database yet) are
forgiven. A task this deploy started (not in `known`) that has ended counts as failed; `MAX_FAILED_TASKS`
of them stop the wait. An update that Swarm rolled back or paused (an update that began with this deploy)
stops it too. A service is ready when exactly its wanted number of tasks is meant to run and runs, and
no update is in progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scaleout.targets.views import TaskView

MAX_FAILED_TASKS = 3  # new tasks of one service that ended before becoming ready: the deploy is failing
ENDED = ("failed", "rejected", "complete", "shutdown", "orphaned")
STOPPED_UPDATES = ("rollback_started", "rollback_completed", "rollback_paused", "paused")


@dataclass(frozen=True)
class ServiceSnapshot:
    """One service as one look at the engine saw it."""

    update_state: str | None
    update_started: str | None
    update_message: str
    tasks: tuple[TaskView, ...]

    @classmethod
    def of(cls, attrs: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> ServiceSnapshot:
        """From a service's inspect data and its tasks' (every desired state)."""
        status = attrs.get("UpdateStatus")
        status = status if isinstance(status, dict) else {}
        return cls(status.get("State"), status.get("StartedAt"), str(status.get("Message") or ""),
                   tuple(TaskView(dict(t)) for t in tasks))

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))


@dataclass(frozen=True)
class Stop:
    """Why the wait must end in failure: `kind` "update" (Swarm stopped the update) or "tasks"."""

    service: str
    kind: str
    update_state: str | None = None
    update_message: str = ""
    failed: tuple[TaskView, ...] = ()


@dataclass
class Verdict:
    pending: list[str] = field(default_factory=list)  # what the stack still waits for, for a message
    ready: list[tuple[str, TaskView]] = field(default_factory=list)  # (label, task) of every ready task
    forgiven: set[str] = field(default_factory=set)  # task IDs forgiven so far (carried to the next look)
    deps_ready: bool = False  # the backend's dependencies are ready: the backend is judged now
    stop: Stop | None = None

    @property
    def converged(self) -> bool:
        return self.stop is None and not self.pending


def judge(want: Mapping[str, int], deps: Sequence[str], snapshots: Mapping[str, ServiceSnapshot],
          known: set[str], forgiven: set[str], backend: str) -> Verdict:
    """One look: `want` is service -> task count, in the order to judge them (dependencies first);
    `known` the task IDs and "update:<start time>" entries from before the deploy."""
    verdict = Verdict(forgiven=set(forgiven))
    ready_now: set[str] = set()
    for short, n in want.items():
        waiting_for_deps = short == backend and not all(d in ready_now for d in deps)
        snap = snapshots.get(short)
        if snap is None:
            verdict.pending.append(f"{short} (not created)")
            continue
        new_update = f"update:{snap.update_started}" not in known  # not a rollback of an earlier deploy
        if new_update and snap.update_state in STOPPED_UPDATES and not waiting_for_deps:
            verdict.stop = Stop(short, "update", snap.update_state, snap.update_message)
            return verdict
        failed = [t for t in snap.tasks if t.id not in known and t.desired_state != "running" and t.state in ENDED]
        if waiting_for_deps:
            verdict.forgiven |= {t.id for t in failed}
        failed = [t for t in failed if t.id not in verdict.forgiven]
        if len(failed) >= MAX_FAILED_TASKS:
            verdict.stop = Stop(short, "tasks", failed=tuple(failed))
            return verdict
        live = [t for t in snap.tasks if t.desired_state == "running"]
        ready = [t for t in live if t.state == "running"]
        if waiting_for_deps:
            verdict.pending.append(f"{short} (waiting for {', '.join(d for d in deps if d not in ready_now)})")
            continue
        if short == backend and deps:
            verdict.deps_ready = True
        verdict.ready += [(f"{short}-{t.slot}" if short == backend else short, t) for t in ready]
        if len(ready) != n or len(live) != n or snap.update_state == "updating":
            verdict.pending.append(f"{short} ({len(ready)}/{n} ready)")
        else:
            ready_now.add(short)
    return verdict
