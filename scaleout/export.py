"""Deployment files for engines beyond one machine: the Swarm stack file (the one `up --target swarm`
deploys) and Kubernetes manifests (scaleout/k8s.py). Rendering is pure: Config -> {path: text}.
`write_export` is the one function that writes them, atomically, never over a user's file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from scaleout.config import Config
from scaleout.errors import RenderConflictError, UsageError
from scaleout.render import ENV_ASSETS, LB_CONF_MOUNT, OUT_DIR, health_command, render_nginx

STACK_FILE = "stack.yml"
STACK_NGINX = "nginx.conf"
BACKEND_SERVICE = "backend"
ENV_BACKEND_IMAGE = "SCALEOUT_BACKEND_IMAGE"
ENV_BALANCER_IMAGE = "SCALEOUT_BALANCER_IMAGE"
SWARM_DNS = "127.0.0.11"  # Docker's embedded DNS server, in every container on a user-defined network
DNS_VALID_S = 1  # how long nginx trusts an answer: a new task gets traffic at most this long after it is ready
EXPORT_MANIFEST = ".scaleout-export.json"
# strategies an nginx without an upstream block can honour: it picks one resolved address per request
DYNAMIC_STRATEGIES = ("round_robin", "random")


def check_dynamic_balancing(config: Config, target: str) -> None:
    """Refuse settings that only an nginx `upstream` block of named replicas can honour."""
    problems = []
    s = config.balancer.strategy
    if s not in DYNAMIC_STRATEGIES:
        problems.append(
            f"balancer.strategy {s}: on {target} nginx finds the replicas through DNS per request (so that it "
            "follows tasks the orchestrator adds or replaces), and picks one at random; "
            f"{s} needs a fixed upstream block"
        )
    if config.backend.weights:
        problems.append(f"backend.weights: on {target} every replica is an identical task of one service; weights per replica do not apply")
    if config.backend.backup:
        problems.append(f"backend.backup: on {target} every replica is an identical task of one service; backup replicas do not apply")
    if problems:
        raise UsageError("\n".join(problems), hint="use `--strategy round_robin` (or random) and remove weights/backup for this target")


class _NoAliases(yaml.SafeDumper):
    """Repeated values are written out again, not as &anchors: the files are read by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any, *, documents: bool = False) -> str:
    """YAML from data (never from strings), in the order given, one `---` document per item if asked."""
    opts = dict(Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=1000)
    return yaml.dump_all(data, explicit_start=True, **opts) if documents else yaml.dump(data, **opts)


def _dollar(value: str) -> str:
    """docker stack deploy interpolates $VAR in values; a literal $ is written $$."""
    return value.replace("$", "$$")


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
        env[ENV_ASSETS] = _dollar(assets)
    env.update({k: _dollar(v) for k, v in sorted(b.env.items())})
    backend_image = b.image or (
        f"${{{ENV_BACKEND_IMAGE}:?{_required(ENV_BACKEND_IMAGE, 'the backend image')}}}")
    monitor = max(5, h.interval * h.retries)
    backend = {
        "image": backend_image,
        "hostname": slot,
        "environment": env,
        "healthcheck": {
            "test": ["CMD-SHELL", _dollar(health_command(config))],
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


# --- writing an export -----------------------------------------------------------------------------

_SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr", "/var")


def check_out_dir(out: Path, project_dir: Path) -> Path:
    """The resolved output folder, or a UsageError saying why it is not a sensible place."""
    target = out.expanduser().resolve()
    project = project_dir.resolve()
    if target.exists() and not target.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    if target == Path(target.anchor):
        raise UsageError(f"--out: {out} is the filesystem root", hint="name a folder of its own, such as deploy/k8s")
    if target == Path.home().resolve():
        raise UsageError(f"--out: {out} is your home folder", hint="name a folder of its own, such as deploy/k8s")
    for sys_dir in _SYSTEM_DIRS:
        if target == Path(sys_dir) or Path(sys_dir) in target.parents:
            raise UsageError(f"--out: {out} is inside the system folder {sys_dir}", hint="export into your project, such as deploy/k8s")
    internal = project / OUT_DIR
    if target == internal or internal in target.parents:
        raise UsageError(f"--out: {out} is inside {OUT_DIR}/, which scaleout manages itself", hint="use a folder such as deploy/k8s")
    if target == project:
        raise UsageError(f"--out: {out} is the project folder itself; exported files would mix with scaleout.yaml",
                         hint="use a folder of its own, such as deploy/k8s")
    return target


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    try:
        data = json.loads((out / EXPORT_MANIFEST).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def write_export(out: Path, files: dict[str, str], *, kind: str, force: bool = False) -> dict[str, list[str]]:
    """Write `files` into `out` atomically. A file that scaleout did not write there (or that was edited
    since) is never replaced without `force`. Files of an earlier export that this one no longer has
    are removed when unchanged. Returns {"written", "unchanged", "removed", "kept"} lists of names."""
    from scaleout.render import atomic_write

    recorded = _read_manifest(out)
    conflicts = []
    for rel, text in sorted(files.items()):
        p = out / rel
        if p.is_symlink() or (p.exists() and not p.is_file()):
            conflicts.append(f"{p} (not a regular file)")
            continue
        if not p.exists():
            continue
        current = p.read_bytes()
        if current == text.encode("utf-8"):
            continue
        if recorded.get(rel) != hashlib.sha256(current).hexdigest():
            conflicts.append(str(p))
    if conflicts and not force:
        raise RenderConflictError(
            "refusing to overwrite file(s) that scaleout did not write, or that were edited since: " + ", ".join(conflicts),
            hint="choose another --out folder, or pass --force to overwrite them",
        )
    result: dict[str, list[str]] = {"written": [], "unchanged": [], "removed": [], "kept": []}
    for rel, text in sorted(files.items()):
        p = out / rel
        if p.is_file() and not p.is_symlink() and p.read_bytes() == text.encode("utf-8"):
            result["unchanged"].append(rel)
            continue
        if p.is_dir() and not p.is_symlink():
            raise RenderConflictError(f"{p} is a folder; cannot write a file there")
        atomic_write(p, text)
        result["written"].append(rel)
    root = out.resolve()
    for rel, sha in sorted(recorded.items()):
        if rel in files:
            continue
        p = out / rel
        if not isinstance(rel, str) or ".." in Path(rel).parts or Path(rel).is_absolute() or root not in p.resolve().parents:
            continue  # the manifest is a file in the user's folder: never delete outside --out through it
        if p.is_file() and not p.is_symlink() and hashlib.sha256(p.read_bytes()).hexdigest() == sha:
            os.unlink(p)
            result["removed"].append(rel)
        elif p.exists():
            result["kept"].append(rel)
    manifest = {"generator": "scaleout", "kind": kind, "files": {rel: _sha(text) for rel, text in sorted(files.items())}}
    atomic_write(out / EXPORT_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return result


EXPORT_KINDS = ("k8s", "swarm")


def export_files(kind: str, config: Config, *, balancer: str | None = None, namespace: str | None = None,
                 image: str | None = None, ingress_class: str | None = None) -> dict[str, str]:
    """The files of `scaleout export KIND` (reads the static files and renders the worker for k8s)."""
    if kind not in EXPORT_KINDS:
        raise UsageError(f"export: KIND must be one of {', '.join(EXPORT_KINDS)} (got {kind!r})")
    if kind == "swarm":
        given = [flag for flag, v in (("--balancer", balancer), ("--namespace", namespace), ("--image", image),
                                       ("--ingress-class", ingress_class)) if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only for `scaleout export k8s`")
        from scaleout.fingerprint import plan_assets

        return render_swarm(config, plan_assets(config).env_value())
    from scaleout.k8s import read_static_files, render_k8s
    from scaleout.worker import render_worker

    if ingress_class is not None and balancer != "ingress":
        raise UsageError("--ingress-class: only with --balancer ingress")
    if image is None and config.backend.image is None:
        # scaleout's local image name would resolve to a public registry on a cluster: never guess
        raise UsageError(
            "export k8s: the cluster pulls the backend image from a registry; say which one",
            hint="push the image (scaleout builds it locally as scaleout/NAME-backend), then pass "
                 "--image REGISTRY/NAME:TAG, or set backend.image in scaleout.yaml",
        )
    worker = render_worker(config) if config.static.generate_worker and config.static.service_workers else None
    return render_k8s(config, read_static_files(config), worker, balancer=balancer or "nginx",
                      namespace=namespace or "default", image=image, ingress_class=ingress_class)
