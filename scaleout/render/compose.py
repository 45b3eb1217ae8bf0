"""Config -> the Compose project's files. Pure: same input, byte-identical output.

`render` returns every file `up` writes for the Compose target, keyed by path relative to the
project folder; scaleout.files writes them (atomically, under the ledger).
"""

from __future__ import annotations

from typing import Any

from scaleout.config.interpolated import compose_texts
from scaleout.config.model import Config
from scaleout.config.sections import LimitsConfig
from scaleout.layout import (
    COMPOSE_FILE,
    ENV_ASSETS,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_ROLE,
    LB_ASSETS_MOUNT,
    LB_CONF_MOUNT,
    LB_HTTPS_PORT,
    LB_PUBLIC_MOUNT,
    LB_SCRIPT,
    LB_SERVICE,
    LB_TLS_MOUNT,
    LB_WORKER_MOUNT,
    NGINX_CONF,
    WATCH_ENV,
    WORKER_DIR,
)
from scaleout.render.common import backend_healthcheck, backend_image, dump_yaml, escape_dollar, replicas_of
from scaleout.render.nginx import render_lb_script, render_nginx, render_watch_env
from scaleout.render.services import from_out, services_data

LB_CAPABILITIES = ("CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL")
LB_TMPFS = ("/tmp", "/run", "/var/cache/nginx", "/var/lib/nginx", "/var/log/nginx")


def limits(cfg: LimitsConfig) -> dict[str, Any]:
    """Compose keys for a container's resource limits (only those that are set)."""
    out: dict[str, Any] = {}
    if cfg.memory:
        out["mem_limit"] = cfg.memory
    if cfg.pids:
        out["pids_limit"] = cfg.pids
    return out


def _rel_from_out(config: Config, rel: str) -> str:
    """A project-relative path as seen from .scaleout/, where the compose file lives."""
    return "../" + rel.rstrip("/") if rel not in (".", "./") else ".."


def compose_data(config: Config, assets: str | None = None) -> dict[str, Any]:
    """The Compose file as data (dumped with yaml.safe_dump, never built from strings).
    `assets` is the SCALEOUT_ASSETS manifest (JSON, see `scaleout.render.assets`), if any."""
    b = config.backend
    image = backend_image(config)
    common_labels = {LABEL_PROJECT: config.name}
    services: dict[str, Any] = {}
    for r in replicas_of(config):
        svc: dict[str, Any] = {"image": image}
        if b.builds:
            svc["build"] = {
                "context": _rel_from_out(config, b.build),
                "dockerfile": b.dockerfile,
                "args": {"BASE_IMAGE": config.images.base},
            }
        env = {"PORT": str(b.port), "SCALEOUT_REPLICA": r.name.rsplit("-", 1)[-1], "SCALEOUT_REPLICA_NAME": r.name}
        if assets is not None:
            env[ENV_ASSETS] = escape_dollar(assets)
        # as written in scaleout.yaml, in Compose's syntax: ${VAR} is resolved by the engine at run time, so
        # a value from the shell, .env or an env file never lands in this file
        env.update(compose_texts(b.env))
        svc.update({
            "hostname": r.name,
            "environment": env,
            **({"env_file": [from_out(f) for f in b.env_file]} if b.env_file else {}),
            "expose": [str(b.port)],
            "healthcheck": backend_healthcheck(config),
            "restart": "unless-stopped",
            "stop_grace_period": "10s",
            "security_opt": ["no-new-privileges:true"],
            **limits(b.limits),
            "labels": {**common_labels, LABEL_ROLE: "backend", LABEL_REPLICA: r.name},
        })
        services[r.name] = svc
    bind = config.balancer.bind
    host = f"[{bind}]" if ":" in bind else bind
    lb_volumes = [{"type": "bind", "source": "./nginx", "target": LB_CONF_MOUNT, "read_only": True}]
    if config.static.routes or config.static.service_workers:
        lb_volumes.append({"type": "bind", "source": _rel_from_out(config, config.static.dir),
                           "target": LB_PUBLIC_MOUNT, "read_only": True})
    if config.static.generate_worker and config.static.service_workers:
        lb_volumes.append({"type": "bind", "source": "./sw", "target": LB_WORKER_MOUNT, "read_only": True})
    if any(r.endswith("/") and r not in config.static.service_workers for r in config.static.routes):
        lb_volumes.append({"type": "bind", "source": "./assets", "target": LB_ASSETS_MOUNT, "read_only": True})
    ports = [f"{host}:{config.balancer.port}:80"]
    if config.balancer.tls is not None:
        # the certificate and its key (.scaleout/tls/), read by nginx at start and on every reload
        lb_volumes.append({"type": "bind", "source": "./tls", "target": LB_TLS_MOUNT, "read_only": True})
        ports = [f"{host}:{config.balancer.port}:{LB_HTTPS_PORT}"]
        if config.balancer.http_port is not None:
            ports.append(f"{host}:{config.balancer.http_port}:80")
    # No depends_on: `scaleout up` starts the replicas, waits until they are healthy, then the balancer,
    # so that rescaling never changes (and never recreates) the balancer's service definition.
    services[LB_SERVICE] = {
        "image": config.images.balancer,
        # lb.sh runs nginx on a copy of nginx.conf with the replicas' current addresses and health
        "command": ["sh", f"{LB_CONF_MOUNT}/lb.sh"],
        "stop_signal": "SIGQUIT",  # graceful: finish in-flight requests
        "ports": ports,
        "volumes": lb_volumes,
        "restart": "unless-stopped",
        "security_opt": ["no-new-privileges:true"],
        # nginx needs only these: bind port 80, switch its workers to an unprivileged user, own its
        # temp folders, signal its workers; its root filesystem is read-only, scratch space in tmpfs
        "cap_drop": ["ALL"],
        "cap_add": list(LB_CAPABILITIES),
        "read_only": True,
        "tmpfs": list(LB_TMPFS),
        **limits(config.balancer.limits),
        "labels": {**common_labels, LABEL_ROLE: "balancer"},
    }
    extra, volumes = services_data(config)
    services.update(extra)
    data: dict[str, Any] = {"services": services}
    if volumes:
        data["volumes"] = volumes
    return data


def render_compose(config: Config, assets: str | None = None) -> str:
    header = (
        f"# Generated by scaleout from scaleout.yaml for project \"{config.name}\".\n"
        "# Do not edit: `scaleout render` refuses to overwrite a hand-edited copy without --force.\n"
        f"# Run by scaleout as: docker compose -p {config.name} -f .scaleout/docker-compose.yml ...\n"
    )
    return header + dump_yaml(compose_data(config, assets))


def render(config: Config, worker: str | None = None, assets: str | None = None,
           nginx_version: tuple[int, int, int] | None = None, pin: str | None = None) -> dict[str, str]:
    """Every generated file for `config`, keyed by path relative to the project folder.

    `worker` is the generated service worker's text (see `scaleout.render.worker`), rendered by the caller
    because it depends on the bytes of the static files; `assets` likewise is the fingerprinted
    assets' manifest as JSON (see `scaleout.render.assets`), passed to the replicas as SCALEOUT_ASSETS.
    `nginx_version` (the balancer image's, needed with balancer.tls) picks the HTTP/2 syntax.
    """
    files = {
        COMPOSE_FILE: render_compose(config, assets),
        NGINX_CONF: render_nginx(config, nginx_version=nginx_version, pin=pin),
        WATCH_ENV: render_watch_env(config),
        LB_SCRIPT: render_lb_script(),
    }
    if worker is not None and config.static.generate_worker and config.static.service_workers:
        files[f"{WORKER_DIR}/{config.static.service_workers[0].lstrip('/')}"] = worker
    return files
