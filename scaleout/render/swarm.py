"""Config -> the Swarm stack file and its nginx.conf: what `up --target swarm` deploys and
`export swarm` writes. Pure. The backend is one service of N tasks (endpoint_mode dnsrr); nginx
resolves `tasks.backend` through Docker's DNS per request. The `services:` of scaleout.yaml are one
task each, reached by their name on the stack's network as on Compose.

Values are written in Compose syntax as the user wrote them (`${VAR}` kept, a literal `$` as `$$`):
`docker stack deploy` runs with the project's .env in its environment and resolves them, so nothing
from .env lands in the stack file. Swarm then expands Go templates (`{{.Task.Slot}}`) in environment
values, so a literal `{{` is escaped too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleout.config.interpolated import Interpolated, command_text, compose_texts
from scaleout.config.model import Config
from scaleout.layout import (
    BACKEND_SERVICE,
    ENV_ASSETS,
    LB_CONF_MOUNT,
    LB_HTTPS_PORT,
    LB_TLS_MOUNT,
    SWARM_DIR,
    SWARM_NGINX,
    SWARM_STACK_FILE,
    TLS_CERT,
    TLS_DIR,
    TLS_KEY,
    WORKER_DIR,
)
from scaleout.render.common import (
    DNS_VALID_S,
    backend_healthcheck,
    check_dynamic_balancing,
    dump_yaml,
    escape_dollar,
    escape_go_template,
)
from scaleout.render.nginx import render_nginx
from scaleout.render.services import SERVICE_ROLE, healthcheck_data

STACK_FILE = SWARM_STACK_FILE
STACK_NGINX = SWARM_NGINX
ENV_BACKEND_IMAGE = "SCALEOUT_BACKEND_IMAGE"
ENV_BALANCER_IMAGE = "SCALEOUT_BALANCER_IMAGE"
SWARM_DNS = "127.0.0.11"  # Docker's embedded DNS server, in every container on a user-defined network
# the backend's tasks by name: Docker's DNS lists each running, healthy task (endpoint_mode dnsrr)
SWARM_BACKEND_HOST = f"tasks.{BACKEND_SERVICE}"
SERVICE_IMAGE_PREFIX = "SCALEOUT_SERVICE_IMAGE_"


def _required(var: str, what: str) -> str:
    """The message of a ${VAR:?message} interpolation. The Docker CLI's parser reads a '-' or '+' in
    it as another operator, so the text avoids them."""
    text = f"set {var} to {what}, as scaleout up with target swarm does"
    assert not any(c in text for c in "-+}$"), text
    return text


def backend_service_name(config: Config) -> str:
    """The backend's service name in the swarm; its tasks' containers are named NAME.SLOT.TASKID."""
    return f"{config.project}_{BACKEND_SERVICE}"


def swarm_nginx(config: Config, nginx_version: tuple[int, int, int] | None = None, pin: str | None = None) -> str:
    """The balancer's nginx.conf on Swarm: every ready task of the backend service, via Docker's DNS.
    With balancer.tls `nginx_version` (the balancer image's) picks the HTTP/2 syntax, as on Compose.
    `pin` (the stack's replay secret) adds the route that sends a request to one task, named by its container."""
    return render_nginx(config, {"target": "Docker Swarm", "host": SWARM_BACKEND_HOST,
                                 "resolver": SWARM_DNS, "valid": DNS_VALID_S,
                                 "pin_tasks": backend_service_name(config)}, nginx_version=nginx_version, pin=pin)


def nginx_config_name(config: Config, nginx_text: str) -> str:
    """Swarm configs are immutable: each version gets its own name, derived from its content."""
    return f"{config.name}_nginx_{hashlib.sha256(nginx_text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class SwarmTls:
    """balancer.tls on Swarm: the certificate and key nginx serves (scaleout/tls/certs.py makes or checks them)
    and the folder that holds them as cert.pem and key.pem, relative to the stack file's folder."""

    cert: bytes
    key: bytes
    folder: str


# (key in the stack file's `secrets:`, file in the TLS folder, mode in the balancer): the key readable by
# root only, which is who nginx's master process reads it as
TLS_SECRETS = (("tls_cert", Path(TLS_CERT).name, 0o444), ("tls_key", Path(TLS_KEY).name, 0o400))


def tls_secret_name(config: Config, key: str, content: bytes) -> str:
    """Swarm secrets are immutable: a new certificate gets new names (derived from the content), so that
    `docker stack deploy` creates them and rolls the balancer over instead of failing on the old ones."""
    return f"{config.name}_{key}_{hashlib.sha256(content).hexdigest()[:12]}"


def _tls_secrets(config: Config, tls: SwarmTls) -> dict[str, Any]:
    content = {"tls_cert": tls.cert, "tls_key": tls.key}
    return {key: {"file": f"{tls.folder}/{file}", "name": tls_secret_name(config, key, content[key])}
            for key, file, _ in TLS_SECRETS}


def _lb_ports(config: Config) -> list[dict[str, Any]]:
    b = config.balancer
    if b.tls is None:
        return [{"target": 80, "published": b.port, "protocol": "tcp", "mode": "host"}]
    ports = [{"target": LB_HTTPS_PORT, "published": b.port, "protocol": "tcp", "mode": "host"}]
    if b.http_port is not None:  # plain HTTP only redirects to HTTPS (see the nginx template)
        ports.append({"target": 80, "published": b.http_port, "protocol": "tcp", "mode": "host"})
    return ports


def service_image_vars(config: Config) -> dict[str, str]:
    """The variable that carries the image `up` builds for each service with `build:` (its tag is known
    only after the build, as the backend's is)."""
    out: dict[str, str] = {}
    taken = {ENV_BACKEND_IMAGE, ENV_BALANCER_IMAGE}
    for name in sorted(config.services):
        if config.services[name].image is not None:
            continue
        base = SERVICE_IMAGE_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        var, n = base, 1
        while var in taken:  # `my-db` and `my_db` are two services
            n += 1
            var = f"{base}_{n}"
        taken.add(var)
        out[name] = var
    return out


def stack_dir_of(config: Config) -> Path:
    """Where `up --target swarm` writes the stack file (relative paths in it start there)."""
    return config.project_dir / SWARM_DIR


def _from_stack(config: Config, stack_dir: Path | None, rel: str) -> str:
    """A project-relative path as seen from the stack file's folder, which is where `docker stack
    deploy` resolves env_file and bind-mount paths."""
    base = stack_dir if stack_dir is not None else stack_dir_of(config)
    path = os.path.relpath(os.path.join(config.project_dir, rel), base)
    path = Path(path).as_posix()
    return path if path == ".." or path.startswith("../") else f"./{path}"


def _published_everywhere(config: Config, host_ip: str | None) -> bool:
    """Whether the user asked for every interface anyway (then Swarm's host-mode port is no surprise)."""
    return ipaddress.ip_address(host_ip or config.balancer.bind).is_unspecified


def _service_data(config: Config, name: str, stack_dir: Path | None, image_var: str | None) -> dict[str, Any]:
    svc = config.services[name]
    image = svc.image or f"${{{image_var}:?{_required(image_var or '', 'the image built for this service')}}}"
    data: dict[str, Any] = {"image": image}
    if svc.command is not None:
        # Swarm expands templates in env, hostname and mounts only: the command is Compose text as is
        data["command"] = command_text(svc.command)
    if svc.environment:
        data["environment"] = {k: escape_go_template(v) for k, v in compose_texts(svc.environment).items()}
    if svc.env_file:
        data["env_file"] = [_from_stack(config, stack_dir, f) for f in svc.env_file]
    if svc.volumes:
        data["volumes"] = [
            f"{v.source}:{v.target}" + (":ro" if v.read_only else "") if v.kind == "named" else
            {"type": "bind", "source": _from_stack(config, stack_dir, v.source), "target": v.target,
             "read_only": bool(v.read_only)}
            for v in svc.volumes
        ]
    health = healthcheck_data(svc.healthcheck)
    if health is not None:
        data["healthcheck"] = health
    if svc.ports:
        # no host IP on Swarm: `mode: host` listens on every interface of the node that runs the task
        data["ports"] = [{"target": p.container_port, "published": p.host_port, "protocol": p.protocol, "mode": "host"}
                         for p in svc.ports]
    data["deploy"] = {
        "replicas": 1,
        # the name resolves to the task itself, as on Compose: a virtual IP needs IPVS in the node's kernel,
        # which not every host has (the name would resolve, and every connection hang)
        "endpoint_mode": "dnsrr",
        # one task at a time: a database must not run twice on one volume during an update
        "update_config": {"parallelism": 1, "order": "stop-first"},
        "restart_policy": {"condition": "any", "delay": "2s"},
        "labels": {"io.scaleout.project": config.name, "io.scaleout.role": SERVICE_ROLE},
    }
    return data


def swarm_notes(config: Config) -> list[str]:
    """What the stack file cannot carry as on Compose, said by `up --target swarm` and `export swarm`
    (each a line without the "note:" prefix; the balancer's own port is said by `up` itself)."""
    notes = []
    for name, svc in sorted(config.services.items()):
        for p in svc.ports:
            if not _published_everywhere(config, p.host_ip):
                ip = p.host_ip or config.balancer.bind
                notes.append(f"service {name}: Swarm cannot publish port {p.host_port} on {ip} only; it listens "
                             f"on every interface of the node that runs {name}")
        for v in svc.volumes:
            if v.kind == "bind":
                notes.append(f"service {name}: the bind mount ./{v.source.removeprefix('./')} exists only on the node "
                             "where the stack is deployed from; on a swarm of several nodes use a named volume or "
                             "copy the files into the image")
        notes += _template_notes(f"services.{name}.environment", svc.environment)
    return notes + _template_notes("backend.env", config.backend.env)


def _template_notes(key: str, env: dict[str, Interpolated]) -> list[str]:
    """A value that holds `{{` only once resolved (from a variable) reaches Swarm unescaped."""
    return [f"{key}.{k}: its value (from a variable) contains '{{{{', which Swarm expands as a template"
            for k, v in env.items() if "{{" in v.value and "{{" not in v.compose]


def _has_references(config: Config) -> bool:
    """Whether the stack file keeps a `${VAR}` for `docker stack deploy` to resolve."""
    texts = [*config.backend.env.values(), *([config.backend.health.command] if config.backend.health.command else [])]
    for svc in config.services.values():
        texts += svc.environment.values()
        if svc.command is not None:
            texts += [svc.command] if isinstance(svc.command, Interpolated) else svc.command
        if svc.healthcheck is not None and svc.healthcheck.test:
            texts += svc.healthcheck.test
    return any(t.has_references for t in texts)


def swarm_stack_data(config: Config, nginx_text: str, assets: str | None = None,
                     stack_dir: Path | None = None, tls: SwarmTls | None = None) -> dict[str, Any]:
    """The stack file as data. Images built by scaleout come from environment variables, because
    their content-addressed tags are only known after the build. `stack_dir` is the folder the stack
    file is written to (default: .scaleout/swarm), for the relative paths of env files and bind mounts.
    `tls` (with balancer.tls) becomes two Swarm secrets mounted where nginx.conf reads them."""
    b, h = config.backend, config.backend.health
    labels = {"io.scaleout.project": config.name}
    slot = f"{BACKEND_SERVICE}-{{{{.Task.Slot}}}}"  # Swarm expands Go templates in hostname and env
    env = {"PORT": str(b.port), "SCALEOUT_REPLICA": "{{.Task.Slot}}", "SCALEOUT_REPLICA_NAME": slot}
    if assets is not None:
        env[ENV_ASSETS] = escape_go_template(escape_dollar(assets))
    # in Compose syntax as written: `docker stack deploy` resolves ${VAR} from the shell and .env
    env.update({k: escape_go_template(v) for k, v in compose_texts(b.env).items()})
    backend_image = b.image or (
        f"${{{ENV_BACKEND_IMAGE}:?{_required(ENV_BACKEND_IMAGE, 'the backend image')}}}")
    monitor = max(5, h.interval * h.retries)
    backend = {
        "image": backend_image,
        "hostname": slot,
        "environment": env,
        **({"env_file": [_from_stack(config, stack_dir, f) for f in b.env_file]} if b.env_file else {}),
        "healthcheck": backend_healthcheck(config),
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
    if config.balancer.tls is not None and tls is None:
        raise ValueError("swarm_stack_data: balancer.tls needs the certificate and its key")
    secrets = [{"source": key, "target": f"{LB_TLS_MOUNT}/{file}", "mode": mode} for key, file, mode in TLS_SECRETS]
    lb = {
        "image": f"${{{ENV_BALANCER_IMAGE}:?"
        f"{_required(ENV_BALANCER_IMAGE, 'the balancer image (nginx with the static files)')}}}",
        "command": ["nginx", "-c", f"{LB_CONF_MOUNT}/nginx.conf", "-g", "daemon off;"],
        "configs": [{"source": "nginx_conf", "target": f"{LB_CONF_MOUNT}/nginx.conf"}],
        **({"secrets": secrets} if config.balancer.tls is not None else {}),
        # Swarm cannot bind a published port to one address: `mode: host` listens on every interface of
        # the node that runs the balancer (the manager), the routing mesh (`ingress`) on every node.
        "ports": _lb_ports(config),
        # plain HTTP on port 80 keeps the ping with balancer.tls too (see the nginx template)
        "healthcheck": {
            "test": ["CMD-SHELL", f"curl -fsS -o /dev/null {ping} || wget -q -O /dev/null {ping}"],
            "interval": "2s",
            "timeout": "2s",
            "retries": 3,
            "start_period": "5s",
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
    services: dict[str, Any] = {BACKEND_SERVICE: backend, "lb": lb}
    image_vars = service_image_vars(config)
    for name in sorted(config.services):
        services[name] = _service_data(config, name, stack_dir, image_vars.get(name))
    data: dict[str, Any] = {
        "version": "3.8",
        "services": services,
        "configs": {"nginx_conf": {"file": f"./{STACK_NGINX}", "name": nginx_config_name(config, nginx_text)}},
    }
    if tls is not None and config.balancer.tls is not None:
        data["secrets"] = _tls_secrets(config, tls)
    if config.named_volumes:
        data["volumes"] = {v: {} for v in config.named_volumes}
    return data


def render_swarm(config: Config, assets: str | None = None, stack_dir: Path | None = None, *,
                 nginx_version: tuple[int, int, int] | None = None, tls: SwarmTls | None = None,
                 pin: str | None = None) -> dict[str, str]:
    """{stack.yml, nginx.conf}: what `scaleout up --target swarm` deploys with `docker stack deploy`.
    With balancer.tls: `nginx_version` (the balancer image's) and `tls`, the certificate and its key.
    `pin`: the replay secret (`up` only; an export carries no pin route)."""
    check_dynamic_balancing(config, "Docker Swarm")
    nginx_text = swarm_nginx(config, nginx_version, pin)
    data = swarm_stack_data(config, nginx_text, assets, stack_dir, tls)
    built = " ".join(f"{var}=..." for var in service_image_vars(config).values())
    header = (
        f'# Generated by scaleout from scaleout.yaml for project "{config.name}" (Docker Swarm).\n'
        "# Deployed by `scaleout up --target swarm`, which builds the images and sets their variables, as:\n"
        f"#   {ENV_BACKEND_IMAGE}=... {ENV_BALANCER_IMAGE}=... {built + ' ' if built else ''}\\\n"
        f"#   docker stack deploy -c {STACK_FILE} --prune --resolve-image never {config.name}\n"
        "# On a swarm of several nodes the images must be in a registry every node can pull from\n"
        "# (`scaleout up --target swarm --registry HOST/PATH` pushes them there).\n"
    )
    if _has_references(config):
        header += (
            "# ${VAR} references are resolved by `docker stack deploy` from its environment: run it with\n"
            "# the variables of the project's .env set (scaleout up does).\n"
        )
    if tls is not None and config.balancer.tls is not None:
        header += (
            f"# HTTPS (balancer.tls): the certificate and its key in {tls.folder}/ go to the balancer as Swarm\n"
            "# secrets, named by a hash of their content: secrets are immutable, so a new certificate is a new\n"
            "# secret, and the deploy rolls the balancer over to it. The key is mounted with mode 0400 (256).\n"
        )
    header += "".join(f"# note: {n}\n" for n in swarm_notes(config))
    return {STACK_FILE: header + dump_yaml(data), STACK_NGINX: nginx_text}


def render_swarm_files(config: Config, worker: str | None, assets: str | None = None, *,
                       nginx_version: tuple[int, int, int] | None = None,
                       tls: tuple[bytes, bytes] | None = None, pin: str | None = None) -> dict[str, str]:
    """The files `up --target swarm` writes under .scaleout/: the stack file, its nginx.conf, the worker.
    `assets` is the SCALEOUT_ASSETS map of the fingerprinted copies (see scaleout.render.assets).
    `tls` is (certificate, key) with balancer.tls: written to .scaleout/tls/ by the caller's Plan."""
    swarm_tls = SwarmTls(tls[0], tls[1], _from_stack(config, None, TLS_DIR)) if tls is not None else None
    rendered = render_swarm(config, assets, nginx_version=nginx_version, tls=swarm_tls, pin=pin)
    files = {f"{SWARM_DIR}/{rel}": text for rel, text in rendered.items()}
    if worker is not None and config.static.generate_worker and config.static.service_workers:
        files[f"{WORKER_DIR}/{config.static.service_workers[0].lstrip('/')}"] = worker
    return files
