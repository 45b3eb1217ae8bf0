"""The Swarm target without an engine: the stack file, its nginx.conf, the checks around them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import crossplane
import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.config.model import Overrides
from scaleout.errors import UsageError
from scaleout.layout import TARGET_FILE
from scaleout.render.common import check_dynamic_balancing, health_command
from scaleout.render.nginx import render_nginx
from scaleout.render.swarm import render_swarm, render_swarm_files
from scaleout.targets import open_target, resolve_target
from scaleout.targets.swarm_checks import registry_problem, swarm_problem
from scaleout.targets.swarm_images import balancer_context, check_registry, content_tag, registry_ref

BASE = """
name: shop
backend:
  port: 9000
  replicas: 3
  health: {path: /up, interval: 3, timeout: 2, retries: 4, start_period: 7}
  env: {GREETING: "cost $5"}
balancer: {port: 18080}
"""


def cfg(tmp_path: Path, text: str = BASE, **overrides):
    (tmp_path / "public" / "static").mkdir(parents=True, exist_ok=True)
    (tmp_path / "public" / "offline.html").write_text("<html>offline</html>")
    (tmp_path / "public" / "static" / "app.css").write_text("body{}")
    c = parse_config(text, tmp_path, env={})
    return c.with_overrides(Overrides(**overrides)) if overrides else c


def stack(c) -> dict:
    return yaml.safe_load(render_swarm(c)["stack.yml"])


def test_backend_is_one_dnsrr_service_with_start_first_updates_and_health_check(tmp_path):
    c = cfg(tmp_path)
    backend = stack(c)["services"]["backend"]
    assert backend["deploy"]["replicas"] == 3
    assert backend["deploy"]["endpoint_mode"] == "dnsrr"
    assert backend["deploy"]["update_config"]["order"] == "start-first"
    assert backend["deploy"]["rollback_config"]["order"] == "start-first"
    hc = backend["healthcheck"]
    assert hc["test"] == ["CMD-SHELL", health_command(c).replace("$", "$$")]
    assert (hc["interval"], hc["timeout"], hc["retries"], hc["start_period"]) == ("3s", "2s", 4, "7s")
    assert "build" not in backend  # Swarm ignores build: scaleout builds the image itself
    assert backend["image"].startswith("${SCALEOUT_BACKEND_IMAGE:?")
    assert backend["environment"]["GREETING"] == "cost $$5"  # a literal $ survives stack deploy's interpolation
    assert backend["environment"]["SCALEOUT_REPLICA_NAME"] == "backend-{{.Task.Slot}}"


def test_prebuilt_image_is_used_as_is(tmp_path):
    c = cfg(
        tmp_path,
        BASE.replace("  port: 9000", "  port: 9000\n  build: null\n  image: registry.example.com/team/shop:1.2"),
    )
    assert stack(c)["services"]["backend"]["image"] == "registry.example.com/team/shop:1.2"


def test_balancer_gets_nginx_conf_as_a_content_named_config_and_a_host_port(tmp_path):
    c = cfg(tmp_path)
    files = render_swarm(c)
    data = yaml.safe_load(files["stack.yml"])
    lb = data["services"]["lb"]
    assert lb["configs"] == [{"source": "nginx_conf", "target": "/etc/scaleout/nginx/nginx.conf"}]
    assert lb["ports"] == [{"target": 80, "published": 18080, "protocol": "tcp", "mode": "host"}]
    assert lb["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    name = data["configs"]["nginx_conf"]["name"]
    assert data["configs"]["nginx_conf"]["file"] == "./nginx.conf"
    # a rescale keeps the config (and so the balancer) as it is; a balancer setting makes a new one
    assert yaml.safe_load(render_swarm(cfg(tmp_path, replicas=7))["stack.yml"])["configs"]["nginx_conf"]["name"] == name
    assert render_swarm(cfg(tmp_path, replicas=7))["nginx.conf"] == files["nginx.conf"]
    changed = BASE.replace("balancer: {port: 18080}", "balancer: {port: 18080, read_timeout: 9}")
    other = yaml.safe_load(render_swarm(cfg(tmp_path, changed))["stack.yml"])
    assert other["configs"]["nginx_conf"]["name"] != name
    assert name.startswith("shop_nginx_") and len(name) == len("shop_nginx_") + 12


def test_swarm_nginx_resolves_tasks_per_request_and_keeps_the_static_rules(tmp_path):
    c = cfg(tmp_path)
    conf = render_swarm(c)["nginx.conf"]
    assert "resolver 127.0.0.11 valid=1s ipv6=off;" in conf
    assert "set $scaleout_backend tasks.backend;" in conf
    assert "proxy_pass http://$scaleout_backend:9000;" in conf
    assert "upstream backend" not in conf
    assert "add_header X-Upstream-Addr $upstream_addr always;" in conf
    # every static location and header of the Compose balancer is there, unchanged
    compose_conf = render_nginx(c)
    for line in compose_conf.splitlines():
        if line.strip().startswith(("location", "add_header", "root /srv", "try_files")):
            assert line in conf, line
    parsed = crossplane.parse(str(_write(tmp_path / "nginx.conf", conf)), check_ctx=True, check_args=True, single=True)
    assert parsed["status"] == "ok", parsed["errors"]


def test_compose_nginx_keeps_its_upstream_block(tmp_path):
    conf = render_nginx(cfg(tmp_path))
    assert "upstream backend {" in conf and "server backend-3:9000" in conf and "resolver" not in conf


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "extra, flag",
    [
        ("balancer: {port: 18080, strategy: least_conn}", "balancer.strategy least_conn"),
        ("balancer: {port: 18080, strategy: hash}", "balancer.strategy hash"),
        ("balancer: {port: 18080}\nbackend: {weights: {backend-1: 2}}", "backend.weights"),
    ],
)
def test_settings_an_upstream_block_needs_are_refused_with_the_reason(tmp_path, extra, flag):
    text = "name: shop\n" + extra
    c = cfg(tmp_path, text)
    with pytest.raises(UsageError) as err:
        render_swarm(c)
    assert flag in str(err.value) and "--strategy round_robin" in str(err.value)


def test_random_and_round_robin_are_accepted(tmp_path):
    for s in ("round_robin", "random"):
        check_dynamic_balancing(cfg(tmp_path, strategy=s), "Docker Swarm")


def test_files_written_by_up_are_the_exported_ones_under_dot_scaleout(tmp_path):
    c = cfg(tmp_path)
    files = render_swarm_files(c, "// worker")
    assert files[".scaleout/swarm/stack.yml"] == render_swarm(c)["stack.yml"]
    assert files[".scaleout/swarm/nginx.conf"] == render_swarm(c)["nginx.conf"]
    assert files[".scaleout/sw/service-worker.js"] == "// worker"


def test_image_variables_fail_clearly_when_unset(tmp_path):
    """The Docker CLI reads '-' or '+' inside ${VAR:?message} as another operator."""
    text = render_swarm(cfg(tmp_path))["stack.yml"]
    for line in text.splitlines():
        if "${SCALEOUT_" in line:
            message = line.split(":?", 1)[1].rsplit("}", 1)[0]
            assert "-" not in message and "+" not in message, line


def test_swarm_state_problems_are_explained():
    assert swarm_problem({"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}) is None
    assert "not part of a swarm" in swarm_problem({"Swarm": {"LocalNodeState": "inactive"}})
    assert "worker, not a manager" in swarm_problem({"Swarm": {"LocalNodeState": "active", "ControlAvailable": False}})


def test_multi_node_swarm_needs_a_registry():
    assert registry_problem(1, None) is None
    assert registry_problem(3, "registry.example.com/team") is None
    assert "3 nodes" in registry_problem(3, None)


def test_registry_names():
    assert check_registry("registry.example.com:5000/team/") == "registry.example.com:5000/team"
    assert (
        registry_ref("scaleout/shop-backend:0123456789abcdef", "r.example.com/team")
        == "r.example.com/team/shop-backend:0123456789abcdef"
    )
    assert content_tag("sha256:" + "ab" * 32) == "ab" * 8
    for bad in ("https://r.example.com/team", "r.example.com/Team", "r.example.com/team:tag", ""):
        with pytest.raises(UsageError, match="--registry"):
            check_registry(bad)


def test_balancer_context_is_deterministic_and_holds_the_static_files(tmp_path):
    c = cfg(tmp_path)
    a = balancer_context(c, ("service-worker.js", "// w"))
    assert a == balancer_context(c, ("service-worker.js", "// w"))
    with tarfile.open(fileobj=io.BytesIO(a)) as tar:
        names = set(tar.getnames())
        assert {"Dockerfile", "public/offline.html", "public/static/app.css", "sw/service-worker.js"} <= names
        assert b"COPY public/ /srv/public/" in tar.extractfile("Dockerfile").read()


def test_target_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("SCALEOUT_TARGET", raising=False)
    assert resolve_target(tmp_path, None) == "compose"
    (tmp_path / TARGET_FILE).parent.mkdir(parents=True)
    (tmp_path / TARGET_FILE).write_text("swarm\n")
    assert resolve_target(tmp_path, None) == "swarm"  # the last `up` went to swarm
    assert resolve_target(tmp_path, "compose") == "compose"
    monkeypatch.setenv("SCALEOUT_TARGET", "compose")
    assert resolve_target(tmp_path, None) == "compose"
    with pytest.raises(UsageError, match="--target: must be one of compose, swarm"):
        resolve_target(tmp_path, "k8s")


def test_registry_is_refused_for_compose(tmp_path):
    with pytest.raises(UsageError, match="--registry: only for --target swarm"):
        open_target("compose", cfg(tmp_path), registry="r.example.com/team")


def test_values_a_cluster_would_expand_are_escaped(tmp_path):
    """Swarm expands Go templates in env values, Kubernetes $(VAR): a value must arrive as written."""
    import yaml as _yaml

    from scaleout.config.load import parse_config
    from scaleout.render.k8s import render_k8s

    (tmp_path / "public").mkdir()
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "Dockerfile").write_text("FROM x\n")
    cfg = parse_config(
        "name: esc\nbackend:\n  env:\n    GREETING: 'hi {{.Node.Hostname}} $$(HOME)'\n", tmp_path, env={}
    )
    value = cfg.backend.env["GREETING"].value
    stack = _yaml.safe_load(render_swarm(cfg)["stack.yml"])
    env = stack["services"]["backend"]["environment"]
    assert "{{.Node" not in env["GREETING"].replace('{{"{{"}}', "")
    assert env["SCALEOUT_REPLICA_NAME"] == "backend-{{.Task.Slot}}"  # scaleout's own template stays live
    docs = [d for d in _yaml.safe_load_all(render_k8s(cfg, {}, None, image="r/x:1")["backend.yaml"]) if d]
    [container] = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"]
    [k8s_value] = [e["value"] for e in container["env"] if e["name"] == "GREETING"]
    assert k8s_value == value.replace("$", "$$") and "$(HOME)" not in k8s_value.replace("$$(", "")
