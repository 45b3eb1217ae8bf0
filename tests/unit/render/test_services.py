"""`services:` on Swarm without an engine: the stack file `up --target swarm` deploys and `export swarm`
writes, in Compose syntax with references kept, and the notes for what Swarm does differently."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.render.common import health_command_compose
from scaleout.render.envfiles import stack_deploy_env, stack_deploy_notes
from scaleout.render.swarm import render_swarm, render_swarm_files, service_image_vars, swarm_notes
from tests.helpers import run_cli

CONFIG = """
name: shop
backend:
  env:
    REDIS_URL: redis://redis:6379/0
    TOKEN: ${API_TOKEN}
    PRICE: cost $$5 {{.Node.ID}}
  env_file: [common.env]
  health: {command: "test -n \\"${API_TOKEN}\\" && curl -fsS localhost:8000/healthz"}
services:
  redis:
    image: redis:7
    command: ["redis-server", "--requirepass", "${REDIS_PASSWORD}"]
    environment: {PASS: "${REDIS_PASSWORD}", TEMPLATE: "a {{b}}"}
    env_file: redis.env
    volumes: ["redis-data:/data", "./conf:/etc/redis:ro"]
    ports: ["6379:6379"]
    healthcheck:
      test: ["CMD-SHELL", "redis-cli -a \\"$${REDIS_PASSWORD}\\" ping"]
      interval: 2s
      retries: 15
  my-worker:
    build: worker
    command: "python3 -m worker"
"""


@pytest.fixture
def project(tmp_path) -> Path:
    for folder in ("public", "conf", "worker", "backend"):
        (tmp_path / folder).mkdir()
    (tmp_path / "public" / "offline.html").write_text("<html>offline</html>")
    (tmp_path / "worker" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "backend" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "common.env").write_text("SHARED=1\n")
    (tmp_path / "redis.env").write_text("MAXMEM=64mb\n")
    (tmp_path / ".env").write_text("API_TOKEN=token-from-dotenv\nREDIS_PASSWORD=pw-from-dotenv\n")
    (tmp_path / "scaleout.yaml").write_text(CONFIG)
    return tmp_path


def stack(config, **kw) -> dict:
    return yaml.safe_load(render_swarm(config, **kw)["stack.yml"])


def test_each_service_is_in_the_stack_with_references_kept(project):
    config = parse_config(CONFIG, project, env={})
    text = render_swarm(config)["stack.yml"]
    assert "token-from-dotenv" not in text and "pw-from-dotenv" not in text  # .env stays out of the file
    data = yaml.safe_load(text)
    assert sorted(data["services"]) == ["backend", "lb", "my-worker", "redis"]
    redis = data["services"]["redis"]
    assert redis["image"] == "redis:7"
    assert redis["command"] == ["redis-server", "--requirepass", "${REDIS_PASSWORD}"]
    # Compose text as written; a literal {{ escaped for Swarm's templates
    assert redis["environment"] == {"PASS": "${REDIS_PASSWORD}", "TEMPLATE": 'a {{"{{"}}b}}'}
    # relative to the stack file's folder (.scaleout/swarm), where docker stack deploy resolves them
    assert redis["env_file"] == ["../../redis.env"]
    assert redis["volumes"] == ["redis-data:/data",
                                {"type": "bind", "source": "../../conf", "target": "/etc/redis", "read_only": True}]
    assert data["volumes"] == {"redis-data": {}}
    assert redis["healthcheck"] == {"test": ["CMD-SHELL", 'redis-cli -a "$${REDIS_PASSWORD}" ping'],
                                    "interval": "2s", "retries": 15}
    # Swarm has no host IP for a published port: host mode, on every interface of the node
    assert redis["ports"] == [{"target": 6379, "published": 6379, "protocol": "tcp", "mode": "host"}]
    assert redis["deploy"]["replicas"] == 1 and redis["deploy"]["update_config"]["order"] == "stop-first"
    assert redis["deploy"]["endpoint_mode"] == "dnsrr"  # `redis` resolves to the task: no IPVS needed
    assert redis["deploy"]["labels"]["io.scaleout.role"] == "service"
    assert "depends_on" not in data["services"]["backend"]  # Swarm ignores it: `up` waits instead


def test_the_backend_takes_its_environment_and_health_command_in_compose_syntax(project):
    config = parse_config(CONFIG, project, env={})
    backend = stack(config)["services"]["backend"]
    env = backend["environment"]
    assert env["TOKEN"] == "${API_TOKEN}"  # resolved by docker stack deploy, from .env in its environment
    assert env["PRICE"] == 'cost $$5 {{"{{"}}.Node.ID}}'
    assert env["SCALEOUT_REPLICA_NAME"] == "backend-{{.Task.Slot}}"
    assert backend["env_file"] == ["../../common.env"]
    assert backend["healthcheck"]["test"] == ["CMD-SHELL", health_command_compose(config)]
    assert "${API_TOKEN}" in backend["healthcheck"]["test"][1]
    # the file says that `docker stack deploy` needs those variables; a file without references does not
    said = "resolved by `docker stack deploy` from its environment"
    assert said in render_swarm(config)["stack.yml"]
    plain = parse_config("name: shop\nbackend: {env: {A: literal $$1}}\n", project, env={})
    assert said not in render_swarm(plain)["stack.yml"]
    only_backend = parse_config("name: shop\nbackend: {env: {A: '${API_TOKEN}'}}\n", project, env={})
    assert said in render_swarm(only_backend)["stack.yml"]


def test_a_built_service_takes_its_image_from_a_variable_that_up_sets(project):
    config = parse_config(CONFIG, project, env={})
    assert service_image_vars(config) == {"my-worker": "SCALEOUT_SERVICE_IMAGE_MY_WORKER"}
    worker = stack(config)["services"]["my-worker"]
    assert worker["image"].startswith("${SCALEOUT_SERVICE_IMAGE_MY_WORKER:?set SCALEOUT_SERVICE_IMAGE_MY_WORKER")
    assert worker["command"] == "python3 -m worker" and "build" not in worker
    # two names that map to one variable get two
    text = "name: shop\nservices:\n  a-b: {build: worker}\n  a_b: {build: worker}\n"
    assert service_image_vars(parse_config(text, project, env={})) == {
        "a-b": "SCALEOUT_SERVICE_IMAGE_A_B", "a_b": "SCALEOUT_SERVICE_IMAGE_A_B_2"}


def test_paths_follow_the_folder_the_stack_file_goes_to(project):
    config = parse_config(CONFIG, project, env={})
    assert render_swarm_files(config, None)[".scaleout/swarm/stack.yml"] == render_swarm(config)["stack.yml"]
    redis = stack(config, stack_dir=project / "deploy")["services"]["redis"]
    assert redis["env_file"] == ["../redis.env"] and redis["volumes"][1]["source"] == "../conf"
    redis = stack(config, stack_dir=project / "ops" / "swarm" / "prod")["services"]["redis"]
    assert redis["env_file"] == ["../../../redis.env"]


def test_notes_say_what_swarm_does_differently(project):
    config = parse_config(CONFIG, project, env={})
    notes = swarm_notes(config)
    assert any("service redis: Swarm cannot publish port 6379 on 127.0.0.1 only" in n for n in notes), notes
    assert any("bind mount ./conf exists only on the node" in n for n in notes), notes
    assert len(notes) == 2
    header = [line for line in render_swarm(config)["stack.yml"].splitlines() if line.startswith("# note: ")]
    assert [h.removeprefix("# note: ") for h in header] == notes
    # published on every interface on purpose: nothing to say; a template only in a variable's value is
    everywhere = CONFIG.replace('ports: ["6379:6379"]', 'ports: ["0.0.0.0:6379:6379"]').replace(
        ', "./conf:/etc/redis:ro"', "")
    assert swarm_notes(parse_config(everywhere, project, env={})) == []
    notes = swarm_notes(parse_config(everywhere, project, env={"API_TOKEN": "x{{y"}))
    assert notes == ["backend.env.TOKEN: its value (from a variable) contains '{{', which Swarm expands as a template"]


def test_env_files_that_docker_stack_deploy_reads_differently_are_named(project):
    text = 'A=plain\nB="quoted value"\nC=${API_TOKEN}\nD=x # comment\nexport E=1\n  # indented comment\nF=a=b\n'
    assert stack_deploy_env(text) == ({"A": "plain", "B": '"quoted value"', "C": "${API_TOKEN}", "D": "x # comment",
                                       "F": "a=b"}, [(5, "export E")])
    (project / "redis.env").write_text(text)
    config = parse_config(CONFIG, project, env={})
    notes = stack_deploy_notes(config, config.engine_environment({}))
    assert [n.split(": ", 1)[0] for n in notes] == ["env file redis.env:5", "env file redis.env:2",
                                                   "env file redis.env:3", "env file redis.env:4"], notes
    assert "refuses this line" in notes[0] and all("A:" not in n and "F:" not in n for n in notes)
    (project / "redis.env").write_text("A=plain\nF=a=b\n")
    assert stack_deploy_notes(config, {}) == []


def test_export_swarm_prints_the_notes(project):
    r = run_cli(["export", "swarm", "--out", "deploy"], project)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2 and "bind mount ./conf" in notes[1], r.stderr
    data = yaml.safe_load((project / "deploy" / "stack.yml").read_text())
    assert data["services"]["redis"]["env_file"] == ["../redis.env"]  # relative to --out
