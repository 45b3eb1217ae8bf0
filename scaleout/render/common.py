"""Helpers every renderer shares: the replicas a config asks for, the backend image, the health
command, escaping for engines that interpolate, YAML from data, and the served-by-balancer rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scaleout.config.model import Config
from scaleout.errors import UsageError
from scaleout.layout import replica_name

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
        return h.command.value
    url = f"http://127.0.0.1:{config.backend.port}{h.path}"
    return (
        f"if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null --max-time {h.timeout} {url}; "
        f"elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T {h.timeout} {url}; "
        "elif command -v python3 >/dev/null 2>&1; then "
        f"python3 -c \"import urllib.request as u; u.urlopen('{url}', timeout={h.timeout})\"; "
        "elif command -v node >/dev/null 2>&1; then "
        f"node -e \"require('http').get('{url}', r => process.exit(r.statusCode < 400 ? 0 : 1))"
        ".on('error', () => process.exit(1))\"; "
        "else exit 1; fi"
    )


def health_command_compose(config: Config) -> str:
    """The health command as Compose and `docker stack deploy` read it: the user's in Compose syntax as
    written (references resolved by the engine at run time), or the default probe with `$` escaped."""
    h = config.backend.health
    if h.command:
        return h.command.compose
    return escape_dollar(health_command(config))


def backend_healthcheck(config: Config) -> dict[str, Any]:
    """The replicas' container health check in the Compose file format (Compose and Swarm stack files)."""
    h = config.backend.health
    return {
        "test": ["CMD-SHELL", health_command_compose(config)],
        "interval": f"{h.interval}s",
        "timeout": f"{h.timeout}s",
        "retries": h.retries,
        "start_period": f"{h.start_period}s",
    }


def escape_dollar(value: str) -> str:
    """Compose and `docker stack deploy` interpolate $VAR in values; a literal $ is written $$."""
    return value.replace("$", "$$")


def escape_k8s(value: str) -> str:
    """Kubernetes expands $(VAR) in env values, command and args; `$$` stands for a literal `$`."""
    return value.replace("$", "$$")


def escape_go_template(value: str) -> str:
    """Swarm expands Go templates ({{.Task.Slot}}) in env values, hostnames and labels: a literal `{{`
    is written as the template action that prints it."""
    return value.replace("{{", '{{"{{"}}')


def served_by_balancer(path: str, config: Config) -> bool:
    """Whether nginx serves `path` itself from the static folder (one of static.routes), rather than
    passing it to a replica. The one rule that nginx's locations, the worker and the probe share."""
    return any(path.startswith(r) if r.endswith("/") else path == r for r in config.static.routes)


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
        problems.append(f"backend.weights: on {target} every replica is an identical task of one service; "
                        "weights per replica do not apply")
    if config.backend.backup:
        problems.append(f"backend.backup: on {target} every replica is an identical task of one service; "
                        "backup replicas do not apply")
    if problems:
        raise UsageError("\n".join(problems),
                         hint="use `--strategy round_robin` (or random) and remove weights/backup for this target")



# how long nginx trusts a DNS answer: a new task gets traffic at most this long after it is ready
DNS_VALID_S = 1

def _no_aliases_dumper():
    """A SafeDumper that writes repeated values out again, not as &anchors: the files are read by people."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return NoAliases


def dump_yaml(data: Any, *, documents: bool = False) -> str:
    """YAML from data (never from strings), in the order given, one `---` document per item if asked."""
    opts = dict(Dumper=_no_aliases_dumper(), sort_keys=False, default_flow_style=False, width=1000)
    import yaml

    return yaml.dump_all(data, explicit_start=True, **opts) if documents else yaml.dump(data, **opts)
