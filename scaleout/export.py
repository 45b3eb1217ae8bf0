"""`scaleout export`: deployment files for engines beyond one machine, written into a folder of the
user's choice: the Swarm stack file (the one `up --target swarm` deploys) and Kubernetes manifests.
Rendering lives in scaleout/render/; writing goes through scaleout.files, with the folder's own ledger
(`.scaleout-export.json`), so a file scaleout did not write there is never replaced or removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scaleout.config.model import Config
from scaleout.errors import UsageError
from scaleout.files import Plan, WriteResult, check_no_links, write_plan
from scaleout.layout import EXPORT_KINDS, EXPORT_MANIFEST, OUT_DIR, TLS_CERT, TLS_KEY

_SYSTEM_DIRS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
)


def check_out_dir(out: Path, project_dir: Path) -> Path:
    """The resolved output folder, or a UsageError saying why it is not a sensible place (a symbolic
    link on the way to it included: a cloned repository may hold one leading anywhere)."""
    check_no_links(out.expanduser(), what="--out", trusted=project_dir)
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
            raise UsageError(
                f"--out: {out} is inside the system folder {sys_dir}",
                hint="export into your project, such as deploy/k8s",
            )
    internal = project / OUT_DIR
    if target == internal or internal in target.parents:
        raise UsageError(
            f"--out: {out} is inside {OUT_DIR}/, which scaleout manages itself", hint="use a folder such as deploy/k8s"
        )
    if target == project:
        raise UsageError(
            f"--out: {out} is the project folder itself; exported files would mix with scaleout.yaml",
            hint="use a folder of its own, such as deploy/k8s",
        )
    return target


SECRETS_FILE = "secrets.yaml"
SWARM_TLS_DIR = "tls"  # `export swarm` with balancer.tls: the certificate and its key, beside stack.yml
PRIVATE_FILES = (f"{SWARM_TLS_DIR}/key.pem",)  # 0600 whatever the umask
# every name an export writes: the only names its ledger may ever replace or remove (a committed
# ledger listing .git/HEAD or a source file is ignored there)
EXPORT_NAMES = frozenset({
    "backend.yaml", "services.yaml", "balancer.yaml", "ingress.yaml", SECRETS_FILE,  # k8s
    "stack.yml", "nginx.conf", f"{SWARM_TLS_DIR}/cert.pem", f"{SWARM_TLS_DIR}/key.pem",  # swarm
})


def is_export_name(rel: str) -> bool:
    return rel in EXPORT_NAMES


def write_export(out: Path, files: dict[str, str | bytes], *, kind: str, force: bool = False) -> WriteResult:
    """Write `files` into `out` atomically, with the user's umask. A file that scaleout did not write
    there (or that was edited since) is never replaced without `force`; files of an earlier export that
    this one no longer has are removed only when unchanged. Every file of an export is readable by its
    owner only (0600), whatever the umask: manifests and stack files carry the environment, Secrets and
    private keys."""
    check_no_links(out, what="--out")
    out.mkdir(parents=True, exist_ok=True)
    mode = 0o600
    return write_plan(
        out.resolve(),
        Plan(files, modes={rel: 0o600 for rel in PRIVATE_FILES if rel in files}),
        force=force,
        ledger_rel=EXPORT_MANIFEST,
        mode=mode,
        ledger_extra={"generator": "scaleout", "kind": kind},
        conflict_hint="choose another --out folder, or pass --force to overwrite them",
        owned=is_export_name,
    )




def _ignore(_: str) -> None:
    pass


def export_files(
    kind: str,
    config: Config,
    *,
    balancer: str | None = None,
    namespace: str | None = None,
    image: str | None = None,
    ingress_class: str | None = None,
    out: Path | None = None,
    note: Callable[[str], None] = _ignore,
    nginx_version: tuple[int, int, int] | None = None,
) -> dict[str, str | bytes]:
    """The files of `scaleout export KIND` (reads the static files and the env files, renders the
    worker for k8s). `out` is the folder they go to (the stack file's relative paths start there);
    `note` receives each thing the files cannot carry, one line without "note:". With balancer.tls the
    certificate and its key are exported too (made or checked by scaleout/tls/certs.py, never the authority's
    key), and `nginx_version` (the balancer image's) picks the HTTP/2 syntax."""
    if kind not in EXPORT_KINDS:
        raise UsageError(f"export: KIND must be one of {', '.join(EXPORT_KINDS)} (got {kind!r})")
    if kind == "swarm":
        given = [
            flag
            for flag, v in (
                ("--balancer", balancer),
                ("--namespace", namespace),
                ("--image", image),
                ("--ingress-class", ingress_class),
            )
            if v is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)}: only for `scaleout export k8s`")
        from scaleout.render.assets import plan_assets
        from scaleout.render.common import check_dynamic_balancing
        from scaleout.render.envfiles import stack_deploy_notes
        from scaleout.render.swarm import SwarmTls, render_swarm, swarm_notes

        check_dynamic_balancing(config, "Docker Swarm")  # refused before a certificate is made
        tls = _tls_pair(config)
        swarm_tls = SwarmTls(tls[0], tls[1], f"./{SWARM_TLS_DIR}") if tls else None
        files: dict[str, str | bytes] = dict(render_swarm(
            config, plan_assets(config).env_value(), stack_dir=out, nginx_version=nginx_version, tls=swarm_tls
        ))
        if tls:
            files.update({f"{SWARM_TLS_DIR}/cert.pem": tls[0], f"{SWARM_TLS_DIR}/key.pem": tls[1]})
            note(f"{SWARM_TLS_DIR}/key.pem is the balancer's private key (mode 0600): keep it out of version "
                 "control" + _local_ca_caveat(config))
        for line in swarm_notes(config) + stack_deploy_notes(config, config.engine_environment()):
            note(line)
        return files
    from scaleout.render.envfiles import read_env_files
    from scaleout.render.k8s import read_static_files, render_k8s
    from scaleout.render.k8s_services import k8s_notes
    from scaleout.render.worker import render_worker

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
    # env files are read as Compose reads them: ${VAR} from the shell, then the project's .env
    env_files = read_env_files(config, config.engine_environment())
    if (balancer or "nginx") == "nginx":
        from scaleout.render.common import check_dynamic_balancing

        check_dynamic_balancing(config, "Kubernetes with the nginx balancer")  # before a certificate is made
    tls = _tls_pair(config)
    files: dict[str, str | bytes] = dict(render_k8s(
        config,
        read_static_files(config),
        worker,
        balancer=balancer or "nginx",
        namespace=namespace or "default",
        image=image,
        ingress_class=ingress_class,
        env_files=env_files,
        nginx_version=nginx_version,
        tls=tls,
    ))
    if tls:
        from scaleout.render.k8s import tls_note

        note(f"secrets.yaml holds {tls_note(config)}")
    for line in k8s_notes(config):
        note(line)
    return files


def _tls_pair(config: Config) -> tuple[bytes, bytes] | None:
    """(certificate, key) for balancer.tls, or None: the project's certificate from the local authority
    (the one in .scaleout/tls/ while it fits, else a new one) or the user's own files, checked."""
    if config.balancer.tls is None:
        return None
    from scaleout.tls.certs import tls_files

    plan = tls_files(config)
    return plan.files[TLS_CERT], plan.files[TLS_KEY]


def _local_ca_caveat(config: Config) -> str:
    if config.balancer.tls != "local":
        return ""
    return ("; the certificate is from scaleout's local authority, for development only (trusted only where "
            "`scaleout trust` installed it)")
