"""`down` (and `up`) on Swarm touch only a stack scaleout created: a stack of the project's name deployed by
someone else (its services lack the io.scaleout.project label) is refused with exit 2 and a message, whatever
a committed .scaleout/target says, and it keeps running. On a real single-node swarm."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.test_swarm import NS, swarm  # noqa: F401 - the fixture turning the engine into a swarm

pytestmark = pytest.mark.e2e

FOREIGN = """services:
  web:
    image: {image}
    command: ["sleep", "3600"]
    deploy:
      labels: {{io.scaleout.project: {other}}}
  worker:
    image: {image}
    command: ["sleep", "3600"]
"""


def test_down_and_up_refuse_a_stack_scaleout_did_not_create(make_project, swarm, tmp_path):  # noqa: F811
    p = make_project(replace={"  replicas: 3\n": "  replicas: 1\n"})
    stack_file = tmp_path / "foreign.yml"
    # one service labelled as another scaleout project's, one without any scaleout label
    stack_file.write_text(FOREIGN.format(image=p.env["SCALEOUT_BASE_IMAGE"], other=f"{p.name}x"))
    r = subprocess.run(["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(stack_file), p.name],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    try:
        (p.path / ".scaleout").mkdir(exist_ok=True)
        (p.path / ".scaleout" / "target").write_text("swarm\n")  # committed by the repository
        for args in (["down"], ["down", "--target", "swarm", "--volumes"], ["up", "--target", "swarm", "--no-build"]):
            r = p.cli(*args, timeout=120)
            assert r.returncode == 2, (args, r.returncode, r.stdout + r.stderr)
            assert "refusing to" in r.stderr and "did not create" in r.stderr, r.stderr
            assert f"{p.name}_web" in r.stderr and f"{p.name}_worker" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr, r.stderr
        services = {s.name for s in swarm.services.list(filters={"label": f"{NS}={p.name}"})}
        assert services == {f"{p.name}_web", f"{p.name}_worker"}  # the other stack is untouched
    finally:
        subprocess.run(["docker", "stack", "rm", p.name], capture_output=True, timeout=60)


def test_down_refuses_networks_configs_secrets_of_another_stack_of_the_name(make_project, swarm):  # noqa: F811
    # a stack of the project's name whose services are gone (or never were): `docker stack rm` would remove
    # its network, config and secret, which scaleout's stack file never declares
    p = make_project(replace={"  replicas: 3\n": "  replicas: 1\n"})
    ns = f"{NS}={p.name}"
    made = [["network", f"{p.name}_frontend"], ["config", f"{p.name}_db_conf"], ["secret", f"{p.name}_db_password"]]
    try:
        r = subprocess.run(["docker", "network", "create", "--driver", "overlay", "--label", ns, made[0][1]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        for kind, name in made[1:]:
            r = subprocess.run(["docker", kind, "create", "--label", ns, name, "-"], input="theirs",
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        for args in (["down", "--target", "swarm"], ["down", "--target", "swarm", "--volumes"]):
            r = p.cli(*args, timeout=120)
            assert r.returncode == 2, (args, r.returncode, r.stdout + r.stderr)
            assert "refusing to remove it" in r.stderr and "does not declare" in r.stderr, r.stderr
            assert all(f"{kind} {name}" in r.stderr for kind, name in made), r.stderr
            assert "Traceback" not in r.stderr, r.stderr
        assert {n.name for n in swarm.networks.list(filters={"label": ns})} == {made[0][1]}  # all still there
        assert {c.name for c in swarm.configs.list(filters={"label": ns})} == {made[1][1]}
        assert {s.name for s in swarm.secrets.list(filters={"label": ns})} == {made[2][1]}
        # `stack rm` never removes volumes and scaleout removes only its own: with those gone, `down --volumes`
        # goes on and keeps the other stack's volume, saying so
        for kind, name in reversed(made):
            subprocess.run(["docker", kind, "rm", name], capture_output=True, timeout=60)
        made.append(["volume", f"{p.name}_theirs"])
        r = subprocess.run(["docker", "volume", "create", "--label", ns, made[-1][1]], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        r = p.cli("down", "--target", "swarm", "--volumes", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"kept volume {p.name}_theirs" in r.stdout + r.stderr, r.stdout + r.stderr
        assert {v.name for v in swarm.volumes.list(filters={"label": ns})} == {made[-1][1]}
    finally:
        for kind, name in reversed(made):
            subprocess.run(["docker", kind, "rm", name], capture_output=True, timeout=60)
