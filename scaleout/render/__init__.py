"""Config -> generated files. Pure functions (`Config -> {path: text}`), one module per kind:
common helpers, nginx, compose, swarm, k8s, the service worker, fingerprinted assets.

`plan_for` gathers every file a target needs into one `scaleout.files.Plan`, computed completely
before anything is written (the static files are read here; nothing is written here).
"""

from __future__ import annotations

from scaleout.config.model import Config
from scaleout.errors import ConfigError
from scaleout.files import Plan, inside
from scaleout.layout import (
    COMPOSE_FILE,
    CONFIG_FILE,
    NGINX_CONF,
    SWARM_DIR,
    SWARM_NGINX,
    SWARM_STACK_FILE,
    TLS_CERT,
    TLS_KEY,
)


def check_project_files(config: Config) -> None:
    """The folders scaleout.yaml names exist, inside the project (before anything is written or built)."""
    problems = []
    root = config.project_dir.resolve()
    static = root / config.static.dir
    if not config.static.routes and not config.static.service_workers:
        pass  # the balancer serves nothing itself: no folder needed (an adopted app owns every path)
    elif not static.is_dir():
        problems.append(f"{CONFIG_FILE}: static.dir: folder {config.static.dir}/ does not exist in the project")
    elif not inside(root, static):
        problems.append(f"{CONFIG_FILE}: static.dir: folder {config.static.dir}/ leads outside the project (a link?)")
    if config.backend.builds:
        context = root / config.backend.build
        if not context.is_dir():
            problems.append(
                f"{CONFIG_FILE}: backend.build: folder {config.backend.build}/ does not exist in the project"
            )
        elif not inside(root, context):
            problems.append(f"{CONFIG_FILE}: backend.build: folder {config.backend.build}/ leads outside the project")
        elif not (context / config.backend.dockerfile).is_file():
            problems.append(
                f"{CONFIG_FILE}: backend.dockerfile: {config.backend.build}/{config.backend.dockerfile} does not exist"
            )
    if problems:
        raise ConfigError(problems, hint="create it, or point the key at an existing folder (or set backend.image)")


def plan_for(target: str, config: Config, nginx_version: tuple[int, int, int] | None = None,
             pin: str | None = None) -> Plan:
    """Every generated file `up` (or `render`) writes for `target`: the engine's files, the balancer's,
    the service worker and the fingerprinted asset copies, keyed by path relative to the project.
    With balancer.tls also the certificate and its key (see scaleout/tls/certs.py; on Swarm they become secrets
    too), and `nginx_version`, the balancer image's (scaleout/targets/nginx_version.py), is required: the
    HTTP/2 syntax depends on it. `pin` (scaleout/replay/secret.py) adds the replay pin route."""
    from scaleout.render.assets import asset_files, plan_assets
    from scaleout.render.worker import render_worker

    check_project_files(config)
    worker = render_worker(config)
    assets = plan_assets(config)
    copies, keep = asset_files(config, assets)
    if target == "swarm":
        from scaleout.render.common import check_dynamic_balancing

        check_dynamic_balancing(config, "Docker Swarm")  # refused before a certificate is made
    modes: dict[str, int] = {}
    tls_pair = None
    tls_plan: dict[str, bytes] = {}
    if config.balancer.tls is not None:
        from scaleout.tls.certs import tls_files

        tls = tls_files(config)
        tls_plan, tls_pair = tls.files, (tls.files[TLS_CERT], tls.files[TLS_KEY])
        modes.update(tls.modes)
    if target == "swarm":
        from scaleout.render.swarm import render_swarm_files

        files: dict[str, str | bytes] = dict(
            render_swarm_files(config, worker, assets.env_value(), nginx_version=nginx_version, tls=tls_pair, pin=pin)
        )
        if pin is not None:  # the stack file names the nginx.conf Swarm config; this copy holds the pin secret
            modes[f"{SWARM_DIR}/{SWARM_NGINX}"] = 0o600
    else:
        from scaleout.render.compose import render

        files = dict(render(config, worker=worker, assets=assets.env_value(), nginx_version=nginx_version, pin=pin))
        if pin is not None:  # the pin secret is in it: its owner's only (the balancer's nginx reads it as root)
            modes[NGINX_CONF] = 0o600
    files.update(copies)
    files.update(tls_plan)
    # the engine's file carries the environment (references as written, values of the env files): its owner's only
    modes[f"{SWARM_DIR}/{SWARM_STACK_FILE}" if target == "swarm" else COMPOSE_FILE] = 0o600
    return Plan(files, keep, modes)
