"""Whose Swarm stack is it: services without this project's io.scaleout.project label make scaleout refuse."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scaleout.errors import ExitCode, UsageError
from scaleout.targets.swarm_checks import check_stack_is_ours


def svc(name: str, labels: dict | None) -> SimpleNamespace:
    return SimpleNamespace(name=name, attrs={"Spec": {"Labels": labels} if labels is not None else {}})


def test_a_stack_of_scaleout_services_of_this_project_is_ours():
    check_stack_is_ours({"backend": svc("p_backend", {"io.scaleout.project": "p"}),
                         "lb": svc("p_lb", {"io.scaleout.project": "p", "io.scaleout.role": "balancer"})}, "p", "x")
    check_stack_is_ours({}, "p", "x")


@pytest.mark.parametrize("labels", [None, {}, {"io.scaleout.project": "q"}, {"io.scaleout.project": "p "},
                                    {"com.docker.stack.namespace": "p"}])
def test_one_foreign_service_makes_it_someone_elses(labels):
    services = {"backend": svc("p_backend", {"io.scaleout.project": "p"}), "web": svc("p_web", labels)}
    with pytest.raises(UsageError, match=r"refusing to remove it: .* did not create .*label\): p_web\n") as err:
        check_stack_is_ours(services, "p", "remove it")
    assert err.value.exit_code == ExitCode.CONFIG
