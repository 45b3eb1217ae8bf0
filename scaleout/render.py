"""Config -> {relative path: text}. Pure: same input, byte-identical output.

`write_files` is the one function that touches disk: atomically, only inside `.scaleout/`, and it
refuses to replace a generated file that was edited by hand (unless forced).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scaleout.config import Config, replica_name
from scaleout.errors import RenderConflictError, ScaleoutError
from scaleout.templates import template_env

OUT_DIR = ".scaleout"
COMPOSE_FILE = f"{OUT_DIR}/docker-compose.yml"
NGINX_DIR = f"{OUT_DIR}/nginx"
NGINX_CONF = f"{NGINX_DIR}/nginx.conf"
LB_SCRIPT = f"{NGINX_DIR}/lb.sh"  # the balancer's entrypoint and health watcher
WATCH_ENV = f"{NGINX_DIR}/watch.env"  # the watcher's settings: replicas, port, health path
LB_STAGE_DIR = f"{NGINX_DIR}/next"  # a configuration `scaleout up` asks the running balancer to test
WATCH_INTERVAL_S = 1  # seconds between the balancer's health checks of every replica
WATCH_FALL = 2  # failed checks in a row before a replica stops getting traffic
WORKER_DIR = f"{OUT_DIR}/sw"
CHECKSUMS = f"{OUT_DIR}/checksums.json"

LB_SERVICE = "lb"
LB_CONF_MOUNT = "/etc/scaleout/nginx"
LB_PUBLIC_MOUNT = "/srv/public"
LB_WORKER_MOUNT = "/srv/scaleout-sw"
LB_SRV = "/srv"
LB_ASSETS_MOUNT = "/srv/scaleout-assets"
ASSETS_DIR = f"{OUT_DIR}/assets"
ENV_ASSETS = "SCALEOUT_ASSETS"
LABEL_PROJECT = "io.scaleout.project"
LABEL_ROLE = "io.scaleout.role"
LABEL_REPLICA = "io.scaleout.replica"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# a content hash in the file name: name.<8+ hex>.ext
FINGERPRINT_RE = r"\.[0-9a-f]{8,}\.[A-Za-z0-9]+$"

_STRATEGY = {
    "round_robin": None,
    "least_conn": "least_conn",
    "ip_hash": "ip_hash",
    "random": "random two least_conn",
}


@dataclass(frozen=True)
class Replica:
    name: str
    weight: int
    backup: bool


def replicas_of(config: Config) -> list[Replica]:
    """The replicas that config asks for, with weights and backup flags applied."""
    return [
        Replica(
            name=replica_name(i),
            weight=config.backend.weights.get(replica_name(i), 1),
            backup=replica_name(i) in config.backend.backup,
        )
        for i in range(1, config.backend.replicas + 1)
    ]


def backend_image(config: Config) -> str:
    """The image every replica runs: the configured one, or the one scaleout builds."""
    return config.backend.image or f"scaleout/{config.name}-backend:latest"


def strategy_directive(config: Config) -> str | None:
    s = config.balancer.strategy
    if s == "hash":
        return f"hash {config.balancer.hash_key} consistent"
    return _STRATEGY[s]


def health_command(config: Config) -> str:
    """Shell command for the container health check: the configured one, or a probe of health.path
    with whichever HTTP client the image has (curl, wget, python3 or node)."""
    h = config.backend.health
    if h.command:
        return h.command
    url = f"http://127.0.0.1:{config.backend.port}{h.path}"
    return (
        f"if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null --max-time {h.timeout} {url}; "
        f"elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T {h.timeout} {url}; "
        f"elif command -v python3 >/dev/null 2>&1; then python3 -c \"import urllib.request as u; u.urlopen('{url}', timeout={h.timeout})\"; "
        f"elif command -v node >/dev/null 2>&1; then node -e \"require('http').get('{url}', r => process.exit(r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1))\"; "
        "else exit 1; fi"
    )


def _escape_compose(value: str) -> str:
    """Compose interpolates $VAR in values; a literal $ is written $$."""
    return value.replace("$", "$$")


def served_by_balancer(path: str, config: Config) -> bool:
    """Whether nginx serves `path` itself from the static folder (one of static.routes), rather than
    passing it to a replica. The one rule that nginx's locations, the worker and the probe share."""
    return any(path.startswith(r) if r.endswith("/") else path == r for r in config.static.routes)


def _static_locations(config: Config) -> list[dict[str, Any]]:
    """The balancer's own locations for static files. Each one repeats every header it needs,
    because a location with any add_header inherits none from the server level."""
    st = config.static
    locations: list[dict[str, Any]] = []
    nosniff = ("X-Content-Type-Options", "nosniff", True)
    for i, path in enumerate(st.service_workers):
        headers = [("Cache-Control", REVALIDATE, True), nosniff]
        if st.worker_scope:
            headers.append(("Service-Worker-Allowed", st.worker_scope, True))
        generated = st.generate_worker and i == 0
        locations.append({
            "comment": "service worker script: never cached, so browsers see a new worker at once"
            + (" (generated by scaleout)" if generated else ""),
            "match": f"= {path}",
            "root": LB_WORKER_MOUNT if generated else None,
            "headers": headers,
        })
    workers = set(st.service_workers)
    for route in st.routes:
        if route in workers:
            continue
        if route.endswith("/"):
            locations.append({
                "comment": f"fingerprinted assets under {route}: the user's own, else scaleout's hashed copies; "
                "cached forever (not on errors: a 404 must not be cached for a year)",
                "match": f'~ "^{re.escape(route)}.+{FINGERPRINT_RE}"',
                "root": LB_SRV,
                # a hashed name never changes content, so caching open files here is always safe
                "open_file_cache": True,
                "try_files": f"{LB_PUBLIC_MOUNT.removeprefix(LB_SRV)}$uri {LB_ASSETS_MOUNT.removeprefix(LB_SRV)}$uri =404",
                "headers": [("Cache-Control", IMMUTABLE, False), nosniff],
            })
            locations.append({
                "comment": f"other static files under {route}: revalidated (ETag / Last-Modified)",
                "match": route,
                "root": None,
                "headers": [("Cache-Control", REVALIDATE, True), nosniff],
            })
        else:
            locations.append({
                "comment": f"static file {route}: revalidated (ETag / Last-Modified)",
                "match": f"= {route}",
                "root": None,
                "headers": [("Cache-Control", REVALIDATE, True), nosniff],
            })
    keys = {"root": None, "try_files": None, "open_file_cache": False}
    return [{**keys, **loc} for loc in locations]


def render_nginx(config: Config, dynamic: dict[str, Any] | None = None) -> str:
    """The balancer's nginx.conf. `dynamic` ({target, host, resolver, valid}) makes it find the
    replicas through DNS per request instead of a fixed upstream block (Swarm and Kubernetes)."""
    env = template_env()
    return env.get_template("nginx/nginx.conf.j2").render(
        dynamic=dynamic,
        name=config.name,
        replicas=replicas_of(config),
        port=config.backend.port,
        balancer=config.balancer,
        strategy_directive=strategy_directive(config),
        static_locations=_static_locations(config),
    )


def render_watch_env(config: Config) -> str:
    """Settings of the balancer's health watcher (templates/nginx/lb.sh), sourced by its shell."""
    h = config.backend.health
    names = " ".join(r.name for r in replicas_of(config))
    return (
        "# Generated by scaleout: read by lb.sh, the balancer's health watcher. Do not edit.\n"
        f'REPLICAS="{names}"\n'
        f"PORT={config.backend.port}\n"
        f"HEALTH_PATH={h.path}\n"
        f"INTERVAL={WATCH_INTERVAL_S}\n"
        f"TIMEOUT={h.timeout}\n"
        f"FALL={WATCH_FALL}\n"
        # with a custom health command (run inside the replica, out of the balancer's reach) the watcher
        # only asks whether the replica answers HTTP at all; Docker's health check runs the command
        f"ANY_STATUS={1 if h.command else 0}\n"
    )


def render_lb_script() -> str:
    """The balancer's entrypoint: a plain shell script, copied as it is (no Jinja: `${x%...}`)."""
    from scaleout.templates import templates_dir

    return (templates_dir() / "nginx" / "lb.sh").read_text(encoding="utf-8")


def _rel_from_out(config: Config, rel: str) -> str:
    """A project-relative path as seen from .scaleout/, where the compose file lives."""
    return "../" + rel.rstrip("/") if rel not in (".", "./") else ".."


def compose_data(config: Config, assets: str | None = None) -> dict[str, Any]:
    """The Compose file as data (dumped with yaml.safe_dump, never built from strings).
    `assets` is the SCALEOUT_ASSETS manifest (JSON, see `scaleout.fingerprint`), if any."""
    b = config.backend
    h = b.health
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
        env = {"PORT": str(b.port), "SCALEOUT_REPLICA": r.name}
        if assets is not None:
            env[ENV_ASSETS] = _escape_compose(assets)
        env.update({k: _escape_compose(v) for k, v in sorted(b.env.items())})
        svc.update({
            "hostname": r.name,
            "environment": env,
            "expose": [str(b.port)],
            "healthcheck": {
                "test": ["CMD-SHELL", _escape_compose(health_command(config))],
                "interval": f"{h.interval}s",
                "timeout": f"{h.timeout}s",
                "retries": h.retries,
                "start_period": f"{h.start_period}s",
            },
            "restart": "unless-stopped",
            "stop_grace_period": "10s",
            "security_opt": ["no-new-privileges:true"],
            "labels": {**common_labels, LABEL_ROLE: "backend", LABEL_REPLICA: r.name},
        })
        services[r.name] = svc
    bind = config.balancer.bind
    host = f"[{bind}]" if ":" in bind else bind
    lb_volumes = [
        {"type": "bind", "source": "./nginx", "target": LB_CONF_MOUNT, "read_only": True},
        {"type": "bind", "source": _rel_from_out(config, config.static.dir), "target": LB_PUBLIC_MOUNT, "read_only": True},
    ]
    if config.static.generate_worker and config.static.service_workers:
        lb_volumes.append({"type": "bind", "source": "./sw", "target": LB_WORKER_MOUNT, "read_only": True})
    if any(r.endswith("/") and r not in config.static.service_workers for r in config.static.routes):
        lb_volumes.append({"type": "bind", "source": "./assets", "target": LB_ASSETS_MOUNT, "read_only": True})
    # No depends_on: `scaleout up` starts the replicas, waits until they are healthy, then the balancer,
    # so that rescaling never changes (and never recreates) the balancer's service definition.
    services[LB_SERVICE] = {
        "image": config.images.balancer,
        # lb.sh runs nginx on a copy of nginx.conf with the replicas' current addresses and health
        "command": ["sh", f"{LB_CONF_MOUNT}/lb.sh"],
        "stop_signal": "SIGQUIT",  # graceful: finish in-flight requests
        "ports": [f"{host}:{config.balancer.port}:80"],
        "volumes": lb_volumes,
        "restart": "unless-stopped",
        "security_opt": ["no-new-privileges:true"],
        "labels": {**common_labels, LABEL_ROLE: "balancer"},
    }
    return {"services": services}


def render_compose(config: Config, assets: str | None = None) -> str:
    header = (
        f"# Generated by scaleout from scaleout.yaml for project \"{config.name}\".\n"
        "# Do not edit: `scaleout render` refuses to overwrite a hand-edited copy without --force.\n"
        f"# Run by scaleout as: docker compose -p {config.name} -f .scaleout/docker-compose.yml ...\n"
    )
    return header + yaml.safe_dump(compose_data(config, assets), sort_keys=False, default_flow_style=False, width=1000)


def render(config: Config, worker: str | None = None, assets: str | None = None) -> dict[str, str]:
    """Every generated file for `config`, keyed by path relative to the project folder.

    `worker` is the generated service worker's text (see `scaleout.worker`), rendered by the caller
    because it depends on the bytes of the static files; `assets` likewise is the fingerprinted
    assets' manifest as JSON (see `scaleout.fingerprint`), passed to the replicas as SCALEOUT_ASSETS.
    """
    files = {
        COMPOSE_FILE: render_compose(config, assets),
        NGINX_CONF: render_nginx(config),
        WATCH_ENV: render_watch_env(config),
        LB_SCRIPT: render_lb_script(),
    }
    if worker is not None and config.static.generate_worker and config.static.service_workers:
        files[f"{WORKER_DIR}/{config.static.service_workers[0].lstrip('/')}"] = worker
    return files


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write text (UTF-8) or bytes to path atomically: a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hand_edited(project_dir: Path, files: dict[str, str]) -> list[str]:
    """Generated files that differ from what scaleout last wrote (edited by hand)."""
    recorded = _read_checksums(project_dir)
    edited = []
    for rel in sorted(set(files) | set(recorded)):
        p = project_dir / rel
        if rel in recorded and p.is_file():
            if _sha256(p.read_text(encoding="utf-8", errors="replace")) != recorded[rel]:
                edited.append(rel)
        elif rel not in recorded and p.exists() and rel in files:
            if p.read_text(encoding="utf-8", errors="replace") != files[rel]:
                edited.append(rel)
    return edited


def ensure_not_hand_edited(project_dir: Path, files: dict[str, str]) -> None:
    """Raise RenderConflictError naming every generated file that was edited since scaleout wrote it."""
    edited = hand_edited(project_dir, files)
    if edited:
        raise RenderConflictError(
            "generated file(s) were edited by hand: " + ", ".join(edited),
            hint="move your changes into scaleout.yaml, or pass --force to overwrite them",
        )


def _read_checksums(project_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((project_dir / CHECKSUMS).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def write_files(project_dir: Path, files: dict[str, str], *, force: bool = False) -> list[str]:
    """Write generated files atomically. Returns the paths whose content changed."""
    root = project_dir.resolve()
    out = (root / OUT_DIR).resolve()
    for rel in files:
        target = (root / rel).resolve()
        if out not in target.parents:
            raise ScaleoutError(f"internal: refusing to write {rel} outside {OUT_DIR}/")
    if not force:
        ensure_not_hand_edited(root, files)
    changed = []
    for rel, text in sorted(files.items()):
        p = root / rel
        try:
            if p.is_file() and p.read_text(encoding="utf-8") == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        atomic_write(p, text)
        changed.append(rel)
    recorded = _read_checksums(root)
    recorded.update({rel: _sha256(text) for rel, text in files.items()})
    for rel in list(recorded):
        if rel not in files and not (root / rel).exists():
            del recorded[rel]
    atomic_write(root / CHECKSUMS, json.dumps({"files": dict(sorted(recorded.items()))}, indent=2) + "\n")
    return changed
