"""`scaleout export k8s` with `services:`: workloads and headless Services validated against the API's
models, env files and values from variables in Secrets (never inline), and a note for what a cluster
cannot carry. No engine needed."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.errors import UsageError
from scaleout.render.envfiles import read_env_files
from scaleout.render.k8s import render_k8s
from scaleout.render.k8s_services import k8s_notes
from tests.helpers import run_cli
from tests.unit.render.test_k8s import by_kind, objects

SECRET = "hunter2-Top$ecret"
CONFIG = """
name: shop
backend:
  port: 9000
  env:
    REDIS_URL: redis://redis:6379/0
    TOKEN: ${API_TOKEN}
    PRICE: cost $$5 $$(HOME)
  env_file: [common.env]
services:
  redis:
    image: redis:7
    command: ["redis-server", "--requirepass", "${REDIS_PASSWORD}", "--appendonly", "yes"]
    environment: {MODE: literal, PASS: "${REDIS_PASSWORD}"}
    env_file: redis.env
    volumes: ["redis-data:/data", "./conf:/etc/redis:ro"]
    ports: ["6379:6379"]
    healthcheck:
      test: ["CMD", "redis-cli", "-a", "${REDIS_PASSWORD}", "ping"]
      interval: 1500ms
      timeout: 3s
      retries: 5
      start_period: 10s
  my_worker:
    build: worker
    command: "python3 -m worker --queue 'jobs one'"
    healthcheck:
      test: "test -f /tmp/alive && echo ${API_TOKEN} >/dev/null"
"""
DOTENV = f"API_TOKEN='{SECRET}'\nREDIS_PASSWORD='pw-{SECRET}'\n"


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "offline.html").write_text("<html>offline</html>")
    (tmp_path / "conf").mkdir()
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "common.env").write_text("SHARED=from common\n")
    (tmp_path / "redis.env").write_text('# redis settings\nexport MAXMEM="64 mb"\nGREETING=hi ${API_TOKEN} # comment\n')
    (tmp_path / ".env").write_text(DOTENV)
    (tmp_path / "scaleout.yaml").write_text(CONFIG)
    return tmp_path


def render(project: Path, text: str = CONFIG) -> dict[str, str]:
    config = parse_config(text, project, env={})
    return render_k8s(config, {}, None, image="registry.example.com/team/shop:1",
                      env_files=read_env_files(config, config.engine_environment({})))


def container_of(doc: dict) -> dict:
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return c


def secret_values(docs, name: str) -> dict[str, str]:
    secret = by_kind(docs, "Secret")[name]
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


def env_entry(container: dict, name: str) -> dict:
    (entry,) = [e for e in container["env"] if e["name"] == name]
    return entry


def test_every_object_validates_and_each_service_is_reached_by_its_own_name(project):
    files = render(project)
    assert sorted(files) == ["backend.yaml", "balancer.yaml", "secrets.yaml", "services.yaml"]
    docs = objects(files)  # each one checked against the kubernetes client's models
    services = by_kind(docs, "Service")
    # headless Services named as in Compose: `redis:6379` resolves to the ready pod, on any port
    assert services["redis"]["spec"]["clusterIP"] == "None"
    assert [p["port"] for p in services["redis"]["spec"]["ports"]] == [6379]
    assert services["my-worker"]["spec"]["clusterIP"] == "None" and "ports" not in services["my-worker"]["spec"]
    # a named volume makes a StatefulSet with a claim per volume; no volume, a Deployment
    (sts,) = by_kind(docs, "StatefulSet").values()
    assert sts["metadata"]["name"] == "redis" and sts["spec"]["serviceName"] == "redis"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "redis-data" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert container_of(sts)["volumeMounts"] == [{"name": "redis-data", "mountPath": "/data"}]
    worker = by_kind(docs, "Deployment")["my-worker"]
    assert worker["spec"]["strategy"] == {"type": "Recreate"} and worker["spec"]["replicas"] == 1
    # every Service selects exactly the pods of its own workload
    workloads = list(by_kind(docs, "StatefulSet").values()) + list(by_kind(docs, "Deployment").values())
    for name, svc in services.items():
        sel = svc["spec"]["selector"].items()
        matching = [w["metadata"]["name"] for w in workloads
                    if sel <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matching) == 1, (name, matching)
        for w in workloads:
            assert w["spec"]["selector"]["matchLabels"].items() <= w["spec"]["template"]["metadata"]["labels"].items()


def test_no_value_from_a_variable_or_env_file_is_written_outside_the_secrets(project):
    files = render(project)
    for name, text in files.items():
        if name != "secrets.yaml":
            assert SECRET not in text, name
            assert "from common" not in text and "64 mb" not in text, name
    docs = objects(files)
    backend = container_of(by_kind(docs, "Deployment")["shop-backend"])
    # a value that came from ${API_TOKEN} is a secretKeyRef; its value is in the backend's Secret
    ref = env_entry(backend, "TOKEN")["valueFrom"]["secretKeyRef"]
    assert secret_values(docs, ref["name"])[ref["key"]] == SECRET
    # literal values stay inline, with $ escaped so Kubernetes does not expand $(HOME)
    assert env_entry(backend, "PRICE") == {"name": "PRICE", "value": "cost $$5 $$(HOME)"}
    assert env_entry(backend, "REDIS_URL")["value"] == "redis://redis:6379/0"
    # env files: one Secret each, read with the .env parser (export, quotes and comments as Compose reads them)
    (common,) = backend["envFrom"]
    assert secret_values(docs, common["secretRef"]["name"]) == {"SHARED": "from common"}
    redis = container_of(by_kind(docs, "StatefulSet")["redis"])
    (redis_file,) = redis["envFrom"]
    assert secret_values(docs, redis_file["secretRef"]["name"]) == {"MAXMEM": "64 mb", "GREETING": f"hi {SECRET}"}
    assert env_entry(redis, "MODE") == {"name": "MODE", "value": "literal"}
    ref = env_entry(redis, "PASS")["valueFrom"]["secretKeyRef"]
    assert secret_values(docs, ref["name"])[ref["key"]] == f"pw-{SECRET}"


def test_commands_and_probes_take_values_from_variables_out_of_the_secret(project):
    docs = objects(render(project))
    redis = container_of(by_kind(docs, "StatefulSet")["redis"])
    env = {e["name"]: e for e in redis["env"]}

    def secret_of(name: str) -> str:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        return secret_values(docs, ref["name"])[ref["key"]]

    # Compose's command is the container's args (the image's entrypoint stays); Kubernetes expands $(VAR)
    args = redis["args"]
    assert args[0] == "redis-server" and args[1] == "--requirepass" and args[3:] == ["--appendonly", "yes"]
    assert args[2].startswith("$(") and secret_of(args[2][2:-1]) == f"pw-{SECRET}"
    # probes are not expanded by Kubernetes: sh reads the value from the container's environment
    ready, live = redis["readinessProbe"], redis["livenessProbe"]
    assert ready["exec"] == live["exec"]
    sh, flag, script = ready["exec"]["command"]
    assert (sh, flag) == ("sh", "-c") and script.startswith("exec redis-cli -a ")
    var = script.split('"$', 1)[1].split('"', 1)[0]
    assert secret_of(var) == f"pw-{SECRET}" and script.endswith(" ping")
    assert (ready["periodSeconds"], ready["timeoutSeconds"], ready["failureThreshold"]) == (2, 3, 5)
    assert live["initialDelaySeconds"] == 10 and "initialDelaySeconds" not in ready

    worker = container_of(by_kind(docs, "Deployment")["my-worker"])
    assert worker["args"] == ["python3", "-m", "worker", "--queue", "jobs one"]  # split like Compose does
    shell = worker["readinessProbe"]["exec"]["command"]
    assert shell[:2] == ["sh", "-c"] and "$SCALEOUT_PROBE" in shell[2]
    ref = env_entry(worker, "SCALEOUT_PROBE")["valueFrom"]["secretKeyRef"]
    assert secret_values(docs, ref["name"])[ref["key"]] == f"test -f /tmp/alive && echo {SECRET} >/dev/null"
    # Docker's defaults where the health check sets no timing
    assert worker["readinessProbe"]["periodSeconds"] == 30 and worker["readinessProbe"]["failureThreshold"] == 3


def test_literal_probes_and_commands_stay_as_written(project):
    text = CONFIG.replace('"${REDIS_PASSWORD}", "--appendonly"', '"p$$w", "--appendonly"').replace(
        '["CMD", "redis-cli", "-a", "${REDIS_PASSWORD}", "ping"]', '["CMD", "redis-cli", "ping"]')
    docs = objects(render(project, text))
    redis = container_of(by_kind(docs, "StatefulSet")["redis"])
    assert redis["args"] == ["redis-server", "--requirepass", "p$$w", "--appendonly", "yes"]
    assert redis["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]
    assert not any(e["name"].startswith(("SCALEOUT_ARG", "SCALEOUT_PROBE")) for e in redis["env"])


def test_what_a_cluster_cannot_carry_is_a_note_and_a_comment(project):
    config = parse_config(CONFIG, project, env={})
    notes = k8s_notes(config)
    text = render(project)["services.yaml"]
    wanted = {
        "bind": "bind mount ./conf:/etc/redis is not carried",
        "port": "published port 6379 is not carried",
        "build": "service my_worker: built from worker/",
        "name": "it is named my-worker; the backend reaches it as my-worker (not my_worker)",
    }
    for what, phrase in wanted.items():
        assert any(phrase in n for n in notes), (what, notes)
        assert any(phrase in line for line in text.splitlines() if line.startswith("# note: ")), what
    # a project without them has nothing to say
    plain = "name: shop\nservices:\n  redis: {image: redis:7, volumes: ['data:/data']}\n"
    assert k8s_notes(parse_config(plain, project, env={})) == []


def test_a_service_whose_kubernetes_name_would_clash_is_refused(project):
    text = "name: shop\nservices:\n  shop-lb: {image: redis:7}\n"
    with pytest.raises(UsageError, match="services.shop-lb"):
        render(project, text)


def test_export_prints_the_notes_and_keeps_secrets_private(project):
    r = run_cli(["export", "k8s", "--out", "deploy", "--image", "registry.example.com/team/shop:1"], project,
                env={"API_TOKEN": "from-the-shell"})
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 4 and any("bind mount ./conf" in n for n in notes), r.stderr
    out = project / "deploy"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.suffix == ".yaml"}
    assert modes["secrets.yaml"] == 0o600 and set(modes.values()) == {0o600}, modes
    secrets = [d for d in yaml.safe_load_all((out / "secrets.yaml").read_text()) if d]
    assert all(d["kind"] == "Secret" for d in secrets)
    # the shell's value wins over .env's, as Compose has it
    token = next(d for d in secrets if d["metadata"]["name"] == "shop-backend-env")["data"]["TOKEN"]
    assert base64.b64decode(token).decode() == "from-the-shell"
    # env files are read as Compose reads them: ${VAR} from the shell, then .env
    redis_file = next(d for d in secrets if d["metadata"]["annotations"]["scaleout.io/source"] == "env-file redis.env")
    assert base64.b64decode(redis_file["data"]["GREETING"]).decode() == "hi from-the-shell"


def test_an_unreadable_env_file_is_one_clear_error(project):
    (project / "redis.env").write_text("NOT A LINE\n")
    r = run_cli(["export", "k8s", "--out", "deploy", "--image", "registry.example.com/team/shop:1"], project)
    assert r.returncode == 2 and "redis.env:1" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (project / "deploy").exists()
