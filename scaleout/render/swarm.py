"""Config -> the Swarm stack file and its nginx.conf: what `up --target swarm` deploys and
`export swarm` writes. Pure. The backend is one service of N tasks (endpoint_mode dnsrr); nginx
resolves `tasks.backend` through Docker's DNS per request."""

from __future__ import annotations

import hashlib
from typing import Any

from scaleout.config import Config
from scaleout.layout import (
    BACKEND_SERVICE,
    ENV_ASSETS,
    LB_CONF_MOUNT,
    SWARM_DIR,
    SWARM_NGINX,
    SWARM_STACK_FILE,
    WORKER_DIR,
)
from scaleout.render.common import (
    DNS_VALID_S,
    check_dynamic_balancing,
    dump_yaml,
    escape_dollar,
    escape_go_template,
    health_command_compose,
)
from scaleout.render.nginx import render_nginx

STACK_FILE = SWARM_STACK_FILE
STACK_NGINX = SWARM_NGINX
ENV_BACKEND_IMAGE = "SCALEOUT_BACKEND_IMAGE"
ENV_BALANCER_IMAGE = "SCALEOUT_BALANCER_IMAGE"
SWARM_DNS = "127.0.0.11"  # Docker's embedded DNS server, in every container on a user-defined network


def _required(var: str, what: str) -> str:
    """The message of a ${VAR:?message} interpolation. The Docker CLI's parser reads a '-' or '+' in
    it as another operator, so the text avoids them."""
    text = f"set {var} to {what}, as scaleout up with target swarm does"
    assert not any(c in text for c in "-+}$"), text
    return text


def swarm_nginx(config: Config) -> str:
    """The balancer's nginx.conf on Swarm: every ready task of the backend service, via Docker's DNS."""
    return render_nginx(config, {"target": "Docker Swarm", "host": f"tasks.{BACKEND_SERVICE}",
                                 "resolver": SWARM_DNS, "valid": DNS_VALID_S})


def nginx_config_name(config: Config, nginx_text: str) -> str:
    """Swarm configs are immutable: each version gets its own name, derived from its content."""
    return f"{config.name}_nginx_{hashlib.sha256(nginx_text.encode()).hexdigest()[:12]}"


def swarm_stack_data(config: Config, nginx_text: str, assets: str | None = None) -> dict[str, Any]:
    """The stack file as data. Images built by scaleout come from environment variables, because
    their content-addressed tags are only known after the build."""
    b, h = config.backend, config.backend.health
    labels = {"io.scaleout.project": config.name}
    slot = f"{BACKEND_SERVICE}-{{{{.Task.Slot}}}}"  # Swarm expands Go templates in hostname and env
    env = {"PORT": str(b.port), "SCALEOUT_REPLICA": slot}
    if assets is not None:
        env[ENV_ASSETS] = escape_go_template(escape_dollar(assets))
    env.update({k: escape_go_template(escape_dollar(v)) for k, v in sorted(b.env.items())})
    backend_image = b.image or (
        f"${{{ENV_BACKEND_IMAGE}:?{_required(ENV_BACKEND_IMAGE, 'the backend image')}}}")
    monitor = max(5, h.interval * h.retries)
    backend = {
        "image": backend_image,
        "hostname": slot,
        "environment": env,
        "healthcheck": {
            "test": ["CMD-SHELL", health_command_compose(config)],
            "interval": f"{h.interval}s",
            "timeout": f"{h.timeout}s",
            "retries": h.retries,
            "start_period": f"{h.start_period}s",
        },
        "stop_grace_period": "10s",
        "deploy": {
            "replicas": b.replicas,
            # DNS round robin over the tasks instead of one virtual IP: nginx sees (and names) every task
            "endpoint_mode": "dnsrr",
            "update_config": {"parallelism": 1, "delay": "0s", "order": "start-first",
                              "failure_action": "rollback", "monitor": f"{monitor}s"},
            "rollback_config": {"parallelism": 1, "order": "start-first"},
            "restart_policy": {"condition": "any", "delay": "2s"},
            "labels": {**labels, "io.scaleout.role": "backend"},
        },
    }
    ping = "http://127.0.0.1/_scaleout/ping"
    lb = {
        "image": f"${{{ENV_BALANCER_IMAGE}:?{_required(ENV_BALANCER_IMAGE, 'the balancer image (nginx with the static files)')}}}",
        "command": ["nginx", "-c", f"{LB_CONF_MOUNT}/nginx.conf", "-g", "daemon off;"],
        "configs": [{"source": "nginx_conf", "target": f"{LB_CONF_MOUNT}/nginx.conf"}],
        # Swarm cannot bind a published port to one address: `mode: host` listens on every interface of
        # the node that runs the balancer (the manager), the routing mesh (`ingress`) on every node.
        "ports": [{"target": 80, "published": config.balancer.port, "protocol": "tcp", "mode": "host"}],
        "healthcheck": {
            "test": ["CMD-SHELL", f"curl -fsS -o /dev/null {ping} || wget -q -O /dev/null {ping}"],
            "interval": "2s", "timeout": "2s", "retries": 3, "start_period": "5s",
        },
        "stop_grace_period": "10s",
        "deploy": {
            "replicas": 1,
            "placement": {"constraints": ["node.role == manager"]},
            # a host-mode port can be held by one task at a time, so the old balancer stops first
            "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"},
            "restart_policy": {"condition": "any", "delay": "2s"},
            "labels": {**labels, "io.scaleout.role": "balancer"},
        },
    }
    return {
        "version": "3.8",
        "services": {BACKEND_SERVICE: backend, "lb": lb},
        "configs": {"nginx_conf": {"file": f"./{STACK_NGINX}", "name": nginx_config_name(config, nginx_text)}},
    }


def render_swarm(config: Config, assets: str | None = None) -> dict[str, str]:
    """{stack.yml, nginx.conf}: what `scaleout up --target swarm` deploys with `docker stack deploy`."""
    check_dynamic_balancing(config, "Docker Swarm")
    nginx_text = swarm_nginx(config)
    header = (
        f"# Generated by scaleout from scaleout.yaml for project \"{config.name}\" (Docker Swarm).\n"
        "# Deployed by `scaleout up --target swarm`, which builds the images and sets their variables, as:\n"
        f"#   {ENV_BACKEND_IMAGE}=... {ENV_BALANCER_IMAGE}=... \\\n"
        f"#   docker stack deploy -c {STACK_FILE} --prune --resolve-image never {config.name}\n"
        "# On a swarm of several nodes the images must be in a registry every node can pull from\n"
        "# (`scaleout up --target swarm --registry HOST/PATH` pushes them there).\n"
    )
    return {STACK_FILE: header + dump_yaml(swarm_stack_data(config, nginx_text, assets)), STACK_NGINX: nginx_text}




def render_swarm_files(config: Config, worker: str | None, assets: str | None = None) -> dict[str, str]:
    """The files `up --target swarm` writes under .scaleout/: the stack file, its nginx.conf, the worker.
    `assets` is the SCALEOUT_ASSETS map of the fingerprinted copies (see scaleout.render.assets)."""
    files = {f"{SWARM_DIR}/{rel}": text for rel, text in render_swarm(config, assets).items()}
    if worker is not None and config.static.generate_worker and config.static.service_workers:
        files[f"{WORKER_DIR}/{config.static.service_workers[0].lstrip('/')}"] = worker
    return files
