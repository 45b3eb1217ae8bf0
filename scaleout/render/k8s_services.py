"""The `services:` of scaleout.yaml, and every value that must not be written inline, as Kubernetes
objects. Pure: the env files' variables come in as data (scaleout.render.envfiles reads them).

- A service is a Deployment (strategy Recreate: one pod, as Compose runs one container), or a
  StatefulSet when it mounts a named volume (each volume a volumeClaimTemplate, so the data outlives
  the pod). Its headless Service has the service's own name, so `redis:6379` resolves in the namespace
  as it does on Compose, on whatever port the container listens, and only once the pod is ready.
- An env_file becomes a Secret (its values read with the parser of `.env`), referenced with envFrom.
- A value that came from `${VAR}` interpolation (the shell, `.env`) goes to the workload's Secret and
  is referenced with secretKeyRef; only literal values stay inline, with `$` escaped for `$(VAR)`.
- What a cluster cannot carry (a bind mount, a published port, `build:` without an image) is a note:
  `export` prints each on stderr, and services.yaml says it in a comment.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import shlex
from collections.abc import Mapping
from typing import Any

from scaleout.config.interpolated import Interpolated
from scaleout.config.model import Config
from scaleout.config.services import Healthcheck, ServiceConfig
from scaleout.errors import UsageError
from scaleout.render.common import escape_k8s

CLAIM_SIZE = "1Gi"  # a starting point for each named volume's claim: tune it to the data
# Docker's defaults for a health check that does not set them
DOCKER_INTERVAL_S, DOCKER_TIMEOUT_S, DOCKER_RETRIES = 30.0, 30.0, 3
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
STATEFULSET_NAME_MAX = 52  # the controller-revision-hash label is NAME-<10 chars>, at most 63


def k8s_names(config: Config) -> dict[str, str]:
    """The Kubernetes name of each service: a DNS-1035 label (Services need one), unique, short enough
    for a StatefulSet. The same as in Compose whenever the name allows."""
    out: dict[str, str] = {}
    for name in sorted(config.services):
        base = _NOT_LABEL.sub("-", name).strip("-")
        if not base[:1].isalpha():
            base = f"s-{base}"
        base = base[:STATEFULSET_NAME_MAX].rstrip("-")
        k8s, n = base, 1
        while k8s in out.values():
            n += 1
            k8s = f"{base[:STATEFULSET_NAME_MAX - 3]}-{n}"
        out[name] = k8s
    taken = {f"{config.name}-backend", f"{config.name}-lb"}
    clash = [n for n, k in out.items() if k in taken]
    if clash:
        raise UsageError(f"services.{clash[0]}: on Kubernetes its Service would be named {out[clash[0]]}, which "
                         "scaleout's own objects use", hint="rename the service")
    return out


def env_file_secret_name(config: Config, rel: str) -> str:
    slug = _NOT_LABEL.sub("-", rel.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(rel.encode()).hexdigest()[:8]
    return f"{config.name}-envfile-{slug}-{digest}" if slug else f"{config.name}-envfile-{digest}"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


class Secrets:
    """The Secrets of one export: one per env file, one per workload for values from interpolation."""

    def __init__(self, config: Config, namespace: str, env_files: Mapping[str, Mapping[str, str]],
                 meta: Any) -> None:
        self.config, self.namespace, self.env_files, self.meta = config, namespace, env_files, meta
        self.objects: dict[str, dict[str, Any]] = {}

    def env_from(self, rels: tuple[str, ...]) -> list[dict[str, Any]]:
        """envFrom entries for a workload's env files, in order (a later one wins, as in Compose)."""
        out = []
        for rel in rels:
            name = env_file_secret_name(self.config, rel)
            if name not in self.objects:
                secret = self._secret(name, f"env-file {rel}")
                data = dict(sorted(self.env_files[rel].items()))
                if data:
                    secret["data"] = {k: _b64(v) for k, v in data.items()}
            out.append({"secretRef": {"name": name}})
        return out

    def _secret(self, name: str, what: str) -> dict[str, Any]:
        meta = self.meta(self.config, name, self.namespace, "secrets")
        meta["annotations"] = {"scaleout.io/source": what}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
        self.objects[name] = secret
        return secret

    def workload(self, workload: str) -> WorkloadEnv:
        return WorkloadEnv(self, f"{self.config.name}-{workload}-env", workload)

    def put(self, name: str, workload: str, key: str, value: str) -> None:
        secret = self.objects.get(name) or self._secret(name, f"values from variables ({workload})")
        secret.setdefault("data", {})[key] = _b64(value)


class WorkloadEnv:
    """A container's `env` list: literal values inline (escaped for $(VAR)), values from variables as
    secretKeyRef into the workload's Secret."""

    def __init__(self, secrets: Secrets, secret_name: str, workload: str) -> None:
        self.secrets, self.secret_name, self.workload = secrets, secret_name, workload
        self.env: list[dict[str, Any]] = []

    def add(self, key: str, value: Interpolated) -> None:
        if not value.has_references:
            self.env.append({"name": key, "value": escape_k8s(value.value)})
        else:
            self.hidden(key, value.value)

    def hidden(self, key: str, value: str) -> None:
        """`key` in the container's environment, its value only in the Secret."""
        self.secrets.put(self.secret_name, self.workload, key, value)
        if all(e["name"] != key for e in self.env):
            self.env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": self.secret_name, "key": key}}})

    def args(self, words: list[Interpolated], *, hide_all: bool = False) -> list[str]:
        """Container args: literal ones escaped for $(VAR), those from variables as $(SCALEOUT_ARG_i)
        (Kubernetes expands it from the container's environment, which takes it from the Secret)."""
        out = []
        for i, word in enumerate(words):
            if not hide_all and not word.has_references:
                out.append(escape_k8s(word.value))
            else:
                key = f"SCALEOUT_ARG_{i}"
                self.hidden(key, word.value)
                out.append(f"$({key})")
        return out

    def exec_command(self, test: tuple[Interpolated, ...]) -> list[str]:
        """An exec probe from a Docker health test. Probes are not expanded by Kubernetes: a value from
        a variable is read by `sh` from the container's environment instead."""
        if test[0].value == "CMD-SHELL":
            if not test[1].has_references:
                return ["sh", "-c", test[1].value]
            self.hidden("SCALEOUT_PROBE", test[1].value)
            return ["sh", "-c", 'eval "$SCALEOUT_PROBE"']
        args = test[1:]
        if not any(a.has_references for a in args):
            return [a.value for a in args]
        words = []
        for i, a in enumerate(args):
            if not a.has_references:
                words.append(shlex.quote(a.value))
            else:
                self.hidden(f"SCALEOUT_PROBE_{i}", a.value)
                words.append(f'"$SCALEOUT_PROBE_{i}"')
        return ["sh", "-c", "exec " + " ".join(words)]


def _command_args(name: str, svc: ServiceConfig, env: WorkloadEnv) -> list[str] | None:
    """Compose's `command` replaces the image's CMD: Kubernetes' `args` (the ENTRYPOINT stays)."""
    if svc.command is None:
        return None
    if isinstance(svc.command, Interpolated):
        try:
            # the compose text with every literal `$` as written, so the two split alike
            values, texts = shlex.split(svc.command.value), shlex.split(svc.command.compose)
        except ValueError as exc:
            raise UsageError(f"services.{name}.command: cannot be split into arguments ({exc})") from None
        if len(values) != len(texts):  # a variable's value split into several words: each is from a variable
            return env.args([Interpolated.literal(v) for v in values], hide_all=True)
        return env.args([Interpolated(v, t) for v, t in zip(values, texts, strict=True)])
    return env.args(list(svc.command))


def _seconds(value: float | None, default: float) -> int:
    return max(1, math.ceil(default if value is None else value))


def service_probes(hc: Healthcheck | None, env: WorkloadEnv) -> dict[str, Any]:
    """readinessProbe and livenessProbe from a Compose health check (none when it has no test)."""
    if hc is None or hc.disabled or hc.test is None:
        return {}
    command = env.exec_command(hc.test)
    probe = {"exec": {"command": command}, "periodSeconds": _seconds(hc.interval, DOCKER_INTERVAL_S),
             "timeoutSeconds": _seconds(hc.timeout, DOCKER_TIMEOUT_S),
             "failureThreshold": max(1, DOCKER_RETRIES if hc.retries is None else hc.retries)}
    live = dict(probe)
    if hc.start_period:
        live = {"exec": probe["exec"], "initialDelaySeconds": math.ceil(hc.start_period),
                **{k: v for k, v in probe.items() if k != "exec"}}
    return {"readinessProbe": probe, "livenessProbe": live}


def service_image(config: Config, name: str) -> str:
    svc = config.services[name]
    return svc.image or f"scaleout/{config.name}-{name}:latest"


def _claim_names(svc: ServiceConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in svc.volumes:
        if v.kind == "named" and v.source not in out:
            base = _NOT_LABEL.sub("-", v.source.lower()).strip("-")[:60] or "data"
            claim, n = base, 1
            while claim in out.values():
                n += 1
                claim = f"{base[:57]}-{n}"
            out[v.source] = claim
    return out


def service_objects(config: Config, namespace: str, secrets: Secrets, meta: Any, labels: Any) -> list[dict[str, Any]]:
    """A workload and a headless Service per service, in name order."""
    docs: list[dict[str, Any]] = []
    names = k8s_names(config)
    for name, svc in sorted(config.services.items()):
        k8s = names[name]
        pod_labels = {**labels(config, "service"), "scaleout.io/service": k8s}
        selector = {k: pod_labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/component",
                                               "scaleout.io/service")}
        env = secrets.workload(k8s)
        for key, value in sorted(svc.environment.items()):
            env.add(key, value)
        container: dict[str, Any] = {"name": k8s, "image": service_image(config, name)}
        args = _command_args(name, svc, env)
        if args is not None:
            container["args"] = args
        ports = list(dict.fromkeys((p.container_port, p.protocol) for p in svc.ports))
        if ports:
            container["ports"] = [{"name": f"{proto}-{port}", "containerPort": port, "protocol": proto.upper()}
                                  for port, proto in ports]
        env_from = secrets.env_from(svc.env_file)
        if env_from:
            container["envFrom"] = env_from
        container.update(service_probes(svc.healthcheck, env))
        if env.env:
            container["env"] = env.env
        claims = _claim_names(svc)
        mounts = [{"name": claims[v.source], "mountPath": v.target, **({"readOnly": True} if v.read_only else {})}
                  for v in svc.volumes if v.kind == "named"]
        if mounts:
            container["volumeMounts"] = mounts
        container["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"}}
        container["securityContext"] = {"allowPrivilegeEscalation": False}
        template = {"metadata": {"labels": pod_labels}, "spec": {"containers": [container]}}
        spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": selector}}
        if claims:
            spec.update({
                "serviceName": k8s,
                "template": template,
                "volumeClaimTemplates": [
                    {"metadata": {"name": claim},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": CLAIM_SIZE}}}}
                    for claim in claims.values()
                ],
            })
            kind = "StatefulSet"
        else:
            # one pod at a time, as Compose recreates its one container
            spec.update({"strategy": {"type": "Recreate"}, "template": template})
            kind = "Deployment"
        docs.append({"apiVersion": "apps/v1", "kind": kind,
                     "metadata": {**meta(config, k8s, namespace, "service"), "labels": pod_labels}, "spec": spec})
        service_spec: dict[str, Any] = {"clusterIP": "None", "selector": selector}
        if ports:
            service_spec["ports"] = [{"name": f"{proto}-{port}", "port": port, "targetPort": f"{proto}-{port}",
                                      "protocol": proto.upper()} for port, proto in ports]
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {**meta(config, k8s, namespace, "service"), "labels": pod_labels},
                     "spec": service_spec})
    return docs


def k8s_notes(config: Config) -> list[str]:
    """What the manifests cannot carry from scaleout.yaml, one line each (without "note:")."""
    notes = []
    names = k8s_names(config) if config.services else {}
    users: dict[str, list[str]] = {}
    for name, svc in sorted(config.services.items()):
        k8s = names[name]
        if k8s != name:
            notes.append(f"service {name}: a Kubernetes Service name is a DNS label, so it is named {k8s}; "
                         f"the backend reaches it as {k8s} (not {name}) in the cluster")
        if svc.image is None:
            notes.append(f"service {name}: built from {svc.build}/ here, but a cluster pulls images from a "
                         f"registry; push it there and set its image in services.yaml "
                         f"(written: {service_image(config, name)})")
        for p in svc.ports:
            notes.append(f"service {name}: published port {p.host_port} is not carried (nothing is published from "
                         f"the cluster); reach it with "
                         f"`kubectl port-forward svc/{k8s} {p.host_port}:{p.container_port}`")
        for v in svc.volumes:
            if v.kind == "bind":
                notes.append(f"service {name}: the bind mount ./{v.source.removeprefix('./')}:{v.target} is not "
                             "carried (a cluster has no project folder); put the files in a ConfigMap or the image")
            else:
                users.setdefault(v.source, []).append(name)
    for volume, who in sorted(users.items()):
        if len(set(who)) > 1:
            notes.append(f"volume {volume} is mounted by {', '.join(sorted(set(who)))}: on Kubernetes each "
                         "StatefulSet gets its own claim, so they do not share its data")
    return notes
