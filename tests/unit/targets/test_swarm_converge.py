"""The pure judgement of a Swarm stack's convergence (targets/swarm_converge.py), fed with inspect JSON
recorded from a real single-node swarm (tests/fixtures/inspect/swarm-service-*.json): a service whose one
task runs, and one whose command exits so that Swarm restarts it (four failed tasks, one starting)."""

from __future__ import annotations

import copy
import json

import pytest

from scaleout.targets.swarm_converge import MAX_FAILED_TASKS, ServiceSnapshot, judge
from tests.helpers import TESTS

FIXTURES = TESTS / "fixtures" / "inspect"


def recorded(name: str, **update) -> ServiceSnapshot:
    data = json.loads((FIXTURES / f"swarm-service-{name}.json").read_text())
    attrs = copy.deepcopy(data["service"])
    if update:
        attrs["UpdateStatus"] = update
    return ServiceSnapshot.of(attrs, data["tasks"])


def ids(name: str) -> set[str]:
    return {t["ID"] for t in json.loads((FIXTURES / f"swarm-service-{name}.json").read_text())["tasks"]}


def test_a_service_whose_task_runs_is_ready_and_reported_by_slot():
    v = judge({"backend": 1, "lb": 1}, [], {"backend": recorded("running"), "lb": recorded("running")}, set(), set(),
              "backend")
    assert v.converged and v.pending == [] and v.stop is None
    assert [label for label, _ in v.ready] == ["backend-1", "lb"]


def test_fewer_tasks_running_than_wanted_is_pending_with_the_count():
    v = judge({"backend": 3}, [], {"backend": recorded("running")}, set(), set(), "backend")
    assert not v.converged and v.pending == ["backend (1/3 ready)"]


def test_a_service_not_created_yet_is_pending():
    v = judge({"backend": 1, "lb": 1}, [], {"backend": recorded("running")}, set(), set(), "backend")
    assert v.pending == ["lb (not created)"]


def test_new_tasks_that_keep_failing_stop_the_wait_but_known_ones_do_not():
    crashing = recorded("crashing")
    v = judge({"backend": 1}, [], {"backend": crashing}, set(), set(), "backend")
    assert v.stop is not None and v.stop.kind == "tasks" and v.stop.service == "backend"
    assert len(v.stop.failed) >= MAX_FAILED_TASKS and all(t.state == "failed" for t in v.stop.failed)
    # the same failures from before this deploy: only waiting (the starting task is not running yet)
    v = judge({"backend": 1}, [], {"backend": crashing}, ids("crashing"), set(), "backend")
    assert v.stop is None and v.pending == ["backend (0/1 ready)"]


def test_backend_failures_while_its_dependency_is_not_ready_are_forgiven():
    snaps = {"db": recorded("crashing"), "backend": recorded("crashing")}
    v = judge({"db": 1, "backend": 1}, ["db"], {"db": recorded("running"), "backend": snaps["backend"]}, set(), set(),
              "backend")
    assert v.stop is not None and v.stop.service == "backend"  # db ready: the backend's failures count
    v = judge({"db": 1, "backend": 1}, ["db"], {"db": recorded("running", State="updating"),
                                                 "backend": snaps["backend"]}, set(), set(), "backend")
    assert v.stop is None and "backend (waiting for db)" in v.pending and not v.deps_ready
    assert v.forgiven == ids("crashing") - {t.id for t in snaps["backend"].tasks if t.desired_state == "running"}
    # the next look, db ready: what was forgiven stays forgiven
    v2 = judge({"db": 1, "backend": 1}, ["db"], {"db": recorded("running"), "backend": snaps["backend"]}, set(),
               v.forgiven, "backend")
    assert v2.stop is None and v2.deps_ready and v2.pending == ["backend (0/1 ready)"]


@pytest.mark.parametrize("state", ["rollback_started", "rollback_completed", "rollback_paused", "paused"])
def test_an_update_swarm_stopped_ends_the_wait_unless_it_is_from_an_earlier_deploy(state):
    snap = recorded("running", State=state, StartedAt="2026-12-03T10:00:00Z", Message="update paused due to failure")
    v = judge({"backend": 1}, [], {"backend": snap}, set(), set(), "backend")
    assert v.stop is not None and v.stop.kind == "update" and v.stop.update_state == state
    assert v.stop.update_message == "update paused due to failure"
    v = judge({"backend": 1}, [], {"backend": snap}, {"update:2026-12-03T10:00:00Z"}, set(), "backend")
    assert v.stop is None and v.converged


def test_an_update_in_progress_is_not_converged():
    v = judge({"lb": 1}, [], {"lb": recorded("running", State="updating", StartedAt="t")}, set(), set(), "backend")
    assert v.pending == ["lb (1/1 ready)"] and not v.converged
