"""Names of things on disk and in the engine: the `.scaleout/` paths, container paths, labels and
service names. Plain constants and name rules; imports nothing from scaleout, so every layer may use it."""

from __future__ import annotations

import re

CONFIG_FILE = "scaleout.yaml"

# --- the choices of options and keys: one list each, which the config, the renderers and the CLI share ---
STRATEGIES = ("round_robin", "least_conn", "ip_hash", "hash", "random")
TARGETS = ("compose", "swarm")
EXPORT_KINDS = ("k8s", "swarm")
TRUST_STORES = ("system", "nss")
TEMPLATE_NAMES = ("python", "node", "python-redis", "node-redis")
SHELLS = ("bash", "zsh", "fish")

# --- files scaleout generates, relative to the project folder ---------------------------------------
OUT_DIR = ".scaleout"
COMPOSE_FILE = f"{OUT_DIR}/docker-compose.yml"
NGINX_DIR = f"{OUT_DIR}/nginx"
NGINX_CONF = f"{NGINX_DIR}/nginx.conf"
LB_SCRIPT = f"{NGINX_DIR}/lb.sh"  # the balancer's entrypoint and health watcher
WATCH_ENV = f"{NGINX_DIR}/watch.env"  # the watcher's settings: replicas, port, health path
LB_STAGE_DIR = f"{NGINX_DIR}/next"  # a configuration `scaleout up` asks the running balancer to test
WORKER_DIR = f"{OUT_DIR}/sw"
ASSETS_DIR = f"{OUT_DIR}/assets"
ASSETS_MANIFEST = f"{ASSETS_DIR}/manifest.json"
CHECKSUMS = f"{OUT_DIR}/checksums.json"  # the ledger: every generated file with its checksum
TARGET_FILE = f"{OUT_DIR}/target"  # the target `up` last deployed to: later commands default to it
STRATEGY_FILE = f"{OUT_DIR}/strategy"  # the strategy of the last successful `up`
SWARM_DIR = f"{OUT_DIR}/swarm"
SWARM_IMAGES_FILE = f"{SWARM_DIR}/images.json"
SWARM_STACK_FILE = "stack.yml"  # inside SWARM_DIR, and in `export swarm --out`
SWARM_NGINX = "nginx.conf"
EXPORT_MANIFEST = ".scaleout-export.json"  # the ledger of an `export --out` folder
TLS_DIR = f"{OUT_DIR}/tls"  # balancer.tls: the certificate nginx serves and its key (0600)
TLS_CERT = f"{TLS_DIR}/cert.pem"
TLS_KEY = f"{TLS_DIR}/key.pem"
TLS_CA = f"{TLS_DIR}/ca.pem"  # a copy of the local CA's certificate (public), e.g. for curl --cacert
NGINX_VERSION_FILE = f"{OUT_DIR}/nginx-version.json"  # `nginx -v` of balancer images, by image ID

# --- the balancer container ----------------------------------------------------------------------
LB_SERVICE = "lb"
LB_CONF_MOUNT = "/etc/scaleout/nginx"
LB_SRV = "/srv"
LB_PUBLIC_MOUNT = "/srv/public"
LB_WORKER_MOUNT = "/srv/scaleout-sw"
LB_ASSETS_MOUNT = "/srv/scaleout-assets"
LB_TLS_MOUNT = "/etc/scaleout/tls"
LB_HTTPS_PORT = 443  # the balancer's TLS port inside its container (plain HTTP stays on 80)
ROUTING_FILE = "/tmp/scaleout/routing"  # written by lb.sh: "replica up|down address" per line
WATCH_INTERVAL_S = 1  # seconds between the balancer's health checks of every replica
WATCH_FALL = 2  # failed checks in a row before a replica stops getting traffic

# --- replicas and labels -----------------------------------------------------------------------------
BACKEND_SERVICE = "backend"  # the one replicated service on Swarm and Kubernetes
ENV_ASSETS = "SCALEOUT_ASSETS"
LABEL_PROJECT = "io.scaleout.project"
LABEL_ROLE = "io.scaleout.role"
LABEL_REPLICA = "io.scaleout.replica"
LABEL_COMPOSE_PROJECT = "com.docker.compose.project"
LABEL_COMPOSE_SERVICE = "com.docker.compose.service"
LABEL_STACK_NAMESPACE = "com.docker.stack.namespace"

_REPLICA = re.compile(r"backend-[1-9][0-9]*")


def replica_name(index: int) -> str:
    """Compose service name of replica `index` (1-based): stable, so each replica is addressable."""
    return f"{BACKEND_SERVICE}-{index}"


def is_replica_name(name: str) -> bool:
    return bool(_REPLICA.fullmatch(name))


def replica_index(name: str) -> int:
    """The N of `backend-N`; names that are not replicas sort last."""
    return int(name.rsplit("-", 1)[1]) if is_replica_name(name) else 10**6
