"""Config -> Kubernetes manifests. Pure: the static files and the generated worker come in as values.

Two balancers, chosen by `scaleout export k8s --balancer`:
- nginx (default): scaleout's own nginx as a Deployment, its nginx.conf in a ConfigMap, published by a
  LoadBalancer Service. It finds the backend pods through a headless Service and the cluster DNS, so
  every ready pod gets traffic and X-Upstream-Addr names the pod, exactly as on Compose and Swarm.
- ingress: an Ingress routes `/` straight to the backend Service (the cluster's ingress controller
  balances). The static routes still go to scaleout's nginx, so their cache headers are kept.

The `services:` beside the replicas and the Secrets (env files, values from variables) are in
scaleout/render/k8s_services.py.

With balancer.tls the certificate and its key are a `kubernetes.io/tls` Secret (in secrets.yaml). The
nginx balancer mounts it and serves HTTPS with HTTP/2 as on Compose; with the Ingress, the Ingress
terminates TLS with it (`spec.tls`) and scaleout's nginx behind it stays plain HTTP, as the backend does.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from scaleout.config.interpolated import Interpolated
from scaleout.config.model import Config
from scaleout.config.services import check_image
from scaleout.errors import UsageError
from scaleout.files import inside, read_project_file
from scaleout.layout import (
    LB_CONF_MOUNT,
    LB_HTTPS_PORT,
    LB_PUBLIC_MOUNT,
    LB_TLS_MOUNT,
    LB_WORKER_MOUNT,
    TLS_CERT,
    TLS_KEY,
)
from scaleout.render.common import DNS_VALID_S, backend_image, check_dynamic_balancing, dump_yaml
from scaleout.render.k8s_services import CLAIM_SIZE, Secrets, WorkloadEnv, k8s_notes, service_objects
from scaleout.render.nginx import render_nginx

BALANCERS = ("nginx", "ingress")
CLUSTER_DNS = "kube-dns.kube-system.svc.cluster.local"  # CoreDNS keeps this Service name in most clusters
CLUSTER_DOMAIN = "cluster.local"
CONFIGMAP_LIMIT = 1024 * 1024  # a ConfigMap is one etcd object: at most 1 MiB
_KEY_BAD = re.compile(r"[^-._a-zA-Z0-9]")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# ingress-nginx's names for the balancing strategies (other controllers ignore these annotations)
_INGRESS_NGINX = "nginx.ingress.kubernetes.io"


def read_static_files(config: Config) -> dict[str, bytes]:
    """Every regular file under static.dir, by path relative to it (the only disk read of the export).
    Never a hidden file or folder (`.env`, `.git/`) nor an env file the config names: nginx does not serve
    them either. Sizes are checked before reading: the files stop being read once they exceed what a
    ConfigMap holds (the manifest then refuses them, naming the folder)."""
    project_root = config.project_dir.resolve()
    root = project_root / config.static.dir
    if not root.is_dir() or not inside(project_root, root):
        return {}
    named = [*config.backend.env_file, *(rel for svc in config.services.values() for rel in svc.env_file)]
    env_files = {(project_root / rel).resolve() for rel in named}
    out: dict[str, bytes] = {}
    total = 0
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.is_symlink() or not p.is_file():
            continue
        if not inside(project_root, p) or p.resolve() in env_files:
            continue
        data = read_project_file(project_root, p.relative_to(project_root).as_posix(), max_bytes=CONFIGMAP_LIMIT,
                                 what=f"static.dir: {config.static.dir}/ holds")
        out[rel.as_posix()] = data
        total += len(data)
        if total > CONFIGMAP_LIMIT:
            break  # more than a ConfigMap holds: _static_configmap refuses it
    return out


def _labels(config: Config, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": config.name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "scaleout"}


def _meta(config: Config, name: str, namespace: str, component: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": _labels(config, component), **extra}


def _probe(config: Config, env: WorkloadEnv, initial_delay: int = 0) -> dict[str, Any]:
    h = config.backend.health
    probe: dict[str, Any] = (
        {"exec": {"command": env.exec_command((Interpolated.literal("CMD-SHELL"), h.command))}}
        if h.command else {"httpGet": {"path": h.path, "port": "http"}}
    )
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    probe.update({"periodSeconds": h.interval, "timeoutSeconds": h.timeout, "failureThreshold": h.retries})
    return probe


def _backend(config: Config, namespace: str, image: str, headless: bool, secrets: Secrets) -> list[dict[str, Any]]:
    b = config.backend
    name = f"{config.name}-backend"
    labels = _labels(config, "backend")
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/component")}
    env = secrets.workload("backend")
    env.env += [
        {"name": "PORT", "value": str(b.port)},
        {"name": "SCALEOUT_REPLICA", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    # a value from ${VAR} (the shell, .env) goes to a Secret; a literal one stays inline
    for k, v in sorted(b.env.items()):
        env.add(k, v)
    probes = {"readinessProbe": _probe(config, env),
              "livenessProbe": _probe(config, env, initial_delay=config.backend.health.start_period)}
    env_from = secrets.env_from(b.env_file)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(config, name, namespace, "backend"),
        "spec": {
            "replicas": b.replicas,
            "selector": {"matchLabels": selector},
            # the new pod is ready before an old one goes: Swarm's start-first order
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "backend",
                        "image": image,
                        "ports": [{"name": "http", "containerPort": b.port, "protocol": "TCP"}],
                        **({"envFrom": env_from} if env_from else {}),
                        "env": env.env,
                        **probes,
                        # requests are a starting point for the scheduler: tune them to what the app uses
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False},
                    }],
                },
            },
        },
    }
    service_spec: dict[str, Any] = {
        "selector": selector,
        "ports": [{"name": "http", "port": b.port, "targetPort": "http", "protocol": "TCP"}],
    }
    if headless:
        # no virtual IP: DNS answers with every ready pod, so nginx spreads over (and names) the pods
        service_spec = {"clusterIP": "None", **service_spec}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(config, name, namespace, "backend"),
        "spec": service_spec,
    }
    return [deployment, service]


def _static_configmap(
    config: Config, namespace: str, static: dict[str, bytes], worker: str | None
) -> tuple[dict[str, Any], list, list]:
    """One ConfigMap with the static files (text in data, the rest in binaryData), and the volume
    items that put each key back at its path (ConfigMap keys cannot hold '/')."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    public_items, worker_items = [], []
    used: set[str] = set()

    def key_for(rel: str) -> str:
        base = _KEY_BAD.sub("-", rel.replace("/", "__"))[:200] or "file"
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}.{n}"
        used.add(key)
        return key

    def put(key: str, content: bytes) -> None:
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")

    for rel, content in sorted(static.items()):
        key = key_for(rel)
        put(key, content)
        public_items.append({"key": key, "path": rel})
    if worker is not None and config.static.generate_worker and config.static.service_workers:
        rel = config.static.service_workers[0].lstrip("/")
        key = key_for("scaleout-sw__" + rel)
        put(key, worker.encode("utf-8"))
        worker_items.append({"key": key, "path": rel})
    size = sum(len(v) for v in data.values()) + sum(len(v) for v in binary.values())
    if size > CONFIGMAP_LIMIT - 64 * 1024:
        raise UsageError(
            f"the static files in {config.static.dir}/ take {size // 1024} KiB; a ConfigMap holds at most 1 MiB",
            hint="bake them into the balancer image instead (FROM your nginx image, COPY them to /srv/public)",
        )
    cm: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(config, f"{config.name}-static", namespace, "balancer"),
    }
    if data:
        cm["data"] = data
    if binary:
        cm["binaryData"] = binary
    return cm, public_items, worker_items


def tls_secret_name(config: Config) -> str:
    return f"{config.name}-tls"


def _tls_secret(config: Config, namespace: str, tls: tuple[bytes, bytes]) -> dict[str, Any]:
    """The certificate (chain first) and its key as the Secret type Ingress controllers and cert-manager use."""
    cert, key = tls
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(config, tls_secret_name(config), namespace, "balancer"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(cert).decode("ascii"), "tls.key": base64.b64encode(key).decode("ascii")},
    }


def _balancer(
    config: Config,
    namespace: str,
    nginx_text: str,
    static: dict[str, bytes],
    worker: str | None,
    service_type: str,
    tls: tuple[bytes, bytes] | None = None,
) -> list[dict[str, Any]]:
    """The nginx Deployment and its Service; with `tls` (the nginx variant with balancer.tls) nginx mounts
    the TLS Secret and the Service publishes HTTPS on balancer.port (and balancer.http_port's redirect)."""
    name = f"{config.name}-lb"
    labels = _labels(config, "balancer")
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/component")}
    conf = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(config, f"{config.name}-nginx", namespace, "balancer"),
        "data": {"nginx.conf": nginx_text},
    }
    static_cm, public_items, worker_items = _static_configmap(config, namespace, static, worker)
    # nginx reads its certificate at start only: a new one must roll the pods too
    hashed = [conf, static_cm] + ([hashlib.sha256(b"".join(tls)).hexdigest()] if tls else [])
    digest = hashlib.sha256(yaml.safe_dump(hashed, sort_keys=True).encode()).hexdigest()[:16]
    volumes: list[dict[str, Any]] = [
        {"name": "nginx-conf", "configMap": {"name": conf["metadata"]["name"]}},
        {"name": "public", "configMap": {"name": static_cm["metadata"]["name"], "items": public_items}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "nginx-conf", "mountPath": LB_CONF_MOUNT, "readOnly": True},
        {"name": "public", "mountPath": LB_PUBLIC_MOUNT, "readOnly": True},
    ]
    if worker_items:
        volumes.append({"name": "worker", "configMap": {"name": static_cm["metadata"]["name"], "items": worker_items}})
        mounts.append({"name": "worker", "mountPath": LB_WORKER_MOUNT, "readOnly": True})
    ports = [{"name": "http", "containerPort": 80, "protocol": "TCP"}]
    if tls:
        # the file names nginx.conf reads (as on Compose); the key readable by root, nginx's master, only
        items = [{"key": "tls.crt", "path": Path(TLS_CERT).name}, {"key": "tls.key", "path": Path(TLS_KEY).name}]
        volumes.append({"name": "tls", "secret": {"secretName": tls_secret_name(config), "items": items,
                                                  "defaultMode": 0o400}})
        mounts.append({"name": "tls", "mountPath": LB_TLS_MOUNT, "readOnly": True})
        ports.append({"name": "https", "containerPort": LB_HTTPS_PORT, "protocol": "TCP"})
    ping = {
        "httpGet": {"path": "/_scaleout/ping", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(config, name, namespace, "balancer"),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                # a changed nginx.conf or static file changes this hash, so the pods roll to pick it up
                "metadata": {"labels": labels, "annotations": {"scaleout.io/config-sha256": digest}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": config.images.balancer,
                            "command": ["nginx", "-c", f"{LB_CONF_MOUNT}/nginx.conf", "-g", "daemon off;"],
                            "ports": ports,
                            "readinessProbe": ping,
                            "livenessProbe": ping,
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                            "volumeMounts": mounts,
                            "securityContext": {"allowPrivilegeEscalation": False},
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }
    port = config.balancer.port if service_type == "LoadBalancer" else 80
    service_ports = [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]
    if tls:  # plain HTTP (it only redirects) only where balancer.http_port asks for it, as on Compose
        service_ports = [{"name": "https", "port": port, "targetPort": "https", "protocol": "TCP"}]
        if config.balancer.http_port is not None:
            service_ports.append({"name": "http", "port": config.balancer.http_port, "targetPort": "http",
                                  "protocol": "TCP"})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(config, name, namespace, "balancer"),
        "spec": {
            "type": service_type,
            "selector": selector,
            "ports": service_ports,
        },
    }
    return [conf, static_cm, deployment, service]


def _ingress(config: Config, namespace: str, ingress_class: str | None,
             tls_hosts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The Ingress; `tls_hosts` (with balancer.tls: the certificate's DNS names) adds `spec.tls` with the
    TLS Secret, so that the controller terminates HTTPS for those hosts."""
    b = config.balancer
    st = config.static
    lb = {"service": {"name": f"{config.name}-lb", "port": {"name": "http"}}}
    app = {"service": {"name": f"{config.name}-backend", "port": {"name": "http"}}}
    paths = []
    for route in dict.fromkeys((*st.service_workers, *st.routes)):
        paths.append({"path": route, "pathType": "Prefix" if route.endswith("/") else "Exact", "backend": lb})
    paths.append({"path": "/", "pathType": "Prefix", "backend": app})
    annotations = {
        f"{_INGRESS_NGINX}/proxy-body-size": b.client_max_body_size,
        f"{_INGRESS_NGINX}/proxy-connect-timeout": str(math.ceil(b.connect_timeout_ms / 1000)),
        f"{_INGRESS_NGINX}/proxy-read-timeout": str(b.read_timeout),
        f"{_INGRESS_NGINX}/proxy-send-timeout": str(b.read_timeout),
        f"{_INGRESS_NGINX}/proxy-next-upstream": "error timeout http_502 http_503 http_504",
        f"{_INGRESS_NGINX}/proxy-next-upstream-tries": str(b.retries),
    }
    s = b.strategy
    if s in ("hash", "ip_hash"):
        annotations[f"{_INGRESS_NGINX}/upstream-hash-by"] = b.hash_key if s == "hash" else "$remote_addr"
    else:  # ingress-nginx balances round_robin or ewma (least latency); it has no random or least_conn
        annotations[f"{_INGRESS_NGINX}/load-balance"] = "ewma" if s == "least_conn" else "round_robin"
    spec: dict[str, Any] = {"rules": [{"http": {"paths": paths}}]}
    if tls_hosts is not None:
        # no hosts (a certificate for addresses only): the controller uses it for every name
        spec["tls"] = [{**({"hosts": list(tls_hosts)} if tls_hosts else {}), "secretName": tls_secret_name(config)}]
    if ingress_class:
        spec = {"ingressClassName": ingress_class, **spec}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(config, config.name, namespace, "ingress", annotations=annotations),
        "spec": spec,
    }


def _dump_all(docs: list[dict[str, Any]], header: str) -> str:
    return header + dump_yaml(docs, documents=True)


def render_k8s(
    config: Config,
    static: dict[str, bytes],
    worker: str | None,
    *,
    balancer: str = "nginx",
    namespace: str = "default",
    image: str | None = None,
    ingress_class: str | None = None,
    env_files: Mapping[str, Mapping[str, str]] | None = None,
    nginx_version: tuple[int, int, int] | None = None,
    tls: tuple[bytes, bytes] | None = None,
) -> dict[str, str]:
    """{backend.yaml, balancer.yaml[, ingress.yaml][, services.yaml][, secrets.yaml]}: apply with
    `kubectl apply -f DIR`. `env_files` holds the variables of each env file the config names
    (see k8s_services.read_env_files). With balancer.tls: `tls` is (certificate, key) (see scaleout/tls/certs.py),
    and the nginx variant needs `nginx_version` (the balancer image's) for the HTTP/2 syntax."""
    if balancer not in BALANCERS:
        raise UsageError(f"--balancer: must be one of {', '.join(BALANCERS)} (got {balancer!r})")
    if not _NAMESPACE.match(namespace):
        raise UsageError(f"--namespace: {namespace!r} must be a DNS label (lower-case letters, digits, '-')")
    if balancer == "nginx":
        check_dynamic_balancing(config, "Kubernetes with the nginx balancer")
    elif config.backend.weights or config.backend.backup:
        raise UsageError(
            "backend.weights / backend.backup: on Kubernetes every replica is an identical pod of one "
            "Deployment; weights and backup replicas do not apply",
            hint="remove them for this target",
        )
    if image is not None:
        try:
            check_image(image)
        except ValueError as exc:
            raise UsageError(f"--image: {exc}") from None
    image = image or backend_image(config)
    if config.balancer.tls is not None and tls is None:
        raise ValueError("render_k8s: balancer.tls needs the certificate and its key")
    host = f"{config.name}-backend.{namespace}.svc.{CLUSTER_DOMAIN}"
    # behind the Ingress, which terminates TLS, nginx serves the static routes over plain HTTP
    nginx_config = config if balancer == "nginx" else _without_tls(config)
    nginx_text = render_nginx(
        nginx_config, {"target": "Kubernetes", "host": host, "resolver": CLUSTER_DNS, "valid": DNS_VALID_S},
        nginx_version=nginx_version,
    )
    head = f'# Generated by scaleout from scaleout.yaml for project "{config.name}". Apply with: kubectl apply -f DIR\n'
    image_note = (
        f"# The backend image {image} must be in a registry the cluster can pull from: push it, then\n"
        "# export again with --image REGISTRY/NAME:TAG (or set backend.image in scaleout.yaml).\n"
    )
    secrets = Secrets(config, namespace, env_files or {}, _meta)
    backend = _backend(config, namespace, image, balancer == "nginx", secrets)
    files = {"backend.yaml": _dump_all(backend, head + image_note)}
    if config.services:
        notes = "".join(f"# note: {n}\n" for n in k8s_notes(config))
        svc_head = head + (
            "# The services beside the replicas: each a Deployment, or a StatefulSet with a claim per named volume\n"
            f"# (requests {CLAIM_SIZE}: tune it), and a headless Service of its own name: `NAME:PORT` resolves\n"
            "# as on Compose.\n"
            "# Kubernetes has no depends_on: every pod starts at once, the backend may be unready until they are up.\n"
        )
        docs = service_objects(config, namespace, secrets, _meta, _labels)
        files["services.yaml"] = _dump_all(docs, svc_head + notes)
    if balancer == "nginx":
        lb_head = head + "# scaleout's nginx: balances over every ready backend pod and serves the static files.\n"
        files["balancer.yaml"] = _dump_all(
            _balancer(config, namespace, nginx_text, static, worker, "LoadBalancer", tls), lb_head
        )
    else:
        lb_head = (
            head + "# scaleout's nginx behind the Ingress: serves only the static routes, with their cache headers.\n"
        )
        files["balancer.yaml"] = _dump_all(
            _balancer(config, namespace, nginx_text, static, worker, "ClusterIP"), lb_head
        )
        ing_head = head + (
            "# The Ingress controller balances `/` over the backend pods itself. The annotations are ingress-nginx's;\n"
            "# other controllers ignore them. Not carried over: X-Upstream-Addr (the probe cannot attribute\n"
            "# responses), scaleout's retry and timeout settings on other controllers, random and least_conn.\n"
        )
        hosts = _dns_names(tls[0]) if tls else None
        files["ingress.yaml"] = _dump_all([_ingress(config, namespace, ingress_class, hosts)], ing_head)
    secret_docs = list(secrets.objects.values())
    secret_head = head
    if secret_docs:
        secret_head += (
            "# Values from env files and from ${VAR} references (the shell, .env): keep this file out of version\n"
            "# control. The workloads reference them with envFrom and secretKeyRef; nothing is inline.\n"
        )
    if tls:
        secret_docs.append(_tls_secret(config, namespace, tls))
        secret_head += textwrap.fill(f"{tls_secret_name(config)}: {tls_note(config)}.", width=110,
                                     initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False) + "\n"
    if secret_docs:
        files["secrets.yaml"] = _dump_all(secret_docs, secret_head)
    return files


def tls_note(config: Config) -> str:
    """What the export says about the TLS Secret (a comment in secrets.yaml and a note of the command)."""
    text = ("the balancer's certificate and its PRIVATE KEY (kubernetes.io/tls): keep secrets.yaml out of "
            "version control")
    if config.balancer.tls == "local":
        text += ("; the certificate comes from scaleout's local authority, for development only (trusted only "
                 "where `scaleout trust` installed it): in a real cluster use your own (balancer.tls: {cert, key}) "
                 "or one from cert-manager")
    return text


def _without_tls(config: Config) -> Config:
    return config.model_copy(update={"balancer": config.balancer.model_copy(update={"tls": None})})


def _dns_names(cert_pem: bytes) -> tuple[str, ...]:
    """The DNS names of a certificate (its subjectAltName), for the Ingress's `tls.hosts`."""
    from cryptography import x509

    from scaleout.tls.certs import cert_names

    return tuple(sorted(cert_names(x509.load_pem_x509_certificate(cert_pem))[0]))
