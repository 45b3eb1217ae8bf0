"""`replay` on a Swarm stack pins each replica by its task's container name, read from the stack's status;
a running stack without the pin secret (started before it existed) is told to run `up` again (exit 7)."""

from __future__ import annotations

import pytest

import scaleout.replay.runner as runner_module
import scaleout.targets as targets
from scaleout.cli.app import main
from scaleout.errors import NotRunningError
from scaleout.replay.secret import ensure_secret
from scaleout.targets.status import ServiceStatus, StackStatus
from tests.helpers import run_cli

TASKS = {"backend-1": "p_backend.1.aaaaaaaaaaaaaaaaaaaaaaaaa", "backend-2": "p_backend.2.bbbbbbbbbbbbbbbbbbbbbbbbb"}


class FakeSwarm:
    def status(self, routing: bool = True) -> StackStatus:
        services = [ServiceStatus(name, task, "running", "healthy", None, "backend") for name, task in TASKS.items()]
        services.append(ServiceStatus("lb", "p_lb.1.ccccccccccccccccccccccccc", "running", "healthy", None, "balancer"))
        return StackStatus("p", "http://127.0.0.1:8080", services)


@pytest.fixture
def project(tmp_path, monkeypatch):
    assert run_cli(["init", "proj"], tmp_path).returncode == 0
    project = tmp_path / "proj"
    (project / "flow.http").write_text("GET /a\n")
    monkeypatch.setattr(targets, "resolve_target", lambda d, o: "swarm")
    monkeypatch.setattr(targets, "open_target", lambda t, cfg, **kw: FakeSwarm())
    monkeypatch.chdir(project)
    return project


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code


def test_swarm_replicas_are_pinned_by_their_task(project, monkeypatch):
    ensure_secret(project)
    made = {}

    def fake_runner(flow, origin, secret, **kw):
        made.update(kw)
        raise NotRunningError("stopped here by the test")

    monkeypatch.setattr(runner_module, "Runner", fake_runner)
    assert _exit_code(["replay", "flow.http"]) == 7
    assert made["pins"] == TASKS


def test_a_running_stack_without_the_secret_is_told_to_up_again(project, capsys):
    assert _exit_code(["replay", "flow.http"]) == 7
    err = capsys.readouterr().err
    assert "without the pin route" in err and "scaleout up" in err
