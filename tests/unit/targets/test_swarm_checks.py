"""Whose Swarm stack is it: services without this project's io.scaleout.project label make scaleout refuse."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scaleout.errors import ExitCode, UsageError
from scaleout.targets.swarm_checks import check_objects_are_ours, check_stack_is_ours, object_is_ours


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


OWN = [("network", "p_default", {"com.docker.stack.namespace": "p"}),
       ("config", "p_nginx_0123456789ab", {"com.docker.stack.namespace": "p"}),
       ("secret", "p_tls_cert_0123456789ab", None), ("secret", "p_tls_key_ba9876543210", None),
       ("volume", "p_data", None), ("network", "p_other", {"io.scaleout.project": "p"})]


def test_the_objects_scaleouts_stack_file_declares_are_ours():
    check_objects_are_ours(OWN, "p", "remove it", volumes=("data",))
    check_objects_are_ours([], "p", "remove it")


@pytest.mark.parametrize("obj", [
    ("network", "p_frontend", {"com.docker.stack.namespace": "p"}),  # a network scaleout never declares
    ("network", "p_defaultx", None),
    ("config", "p_nginx_conf", None),  # not named by its content
    ("config", "p.nginx_0123456789ab", None),  # the project name is matched literally, not as a pattern
    ("secret", "p_db_password", {"io.scaleout.project": "q"}),
    ("secret", "p_tls_cert_0123456789abc", None),
    ("volume", "p_data", None),  # not a named volume of this project's scaleout.yaml
])
def test_any_other_object_of_the_namespace_makes_it_someone_elses(obj):
    with pytest.raises(UsageError) as err:
        check_objects_are_ours([*OWN[:4], obj], "p", "remove it", volumes=("logs",))
    assert err.value.message == ("refusing to remove it: the Swarm stack 'p' has objects that scaleout's stack file "
                                 f"does not declare: {obj[0]} {obj[1]}")
    assert "docker stack rm p" in err.value.hint
    assert err.value.exit_code == ExitCode.CONFIG


def test_a_project_name_with_regex_characters_is_literal():
    assert object_is_ours("network", "a.b_default", None, "a.b")
    assert not object_is_ours("network", "axb_default", None, "a.b")
