"""Size bounds of every list and map in scaleout.yaml, applied while the YAML is parsed
(scaleout.config.yamlload stops at the first item too many), so before anything else looks at the
values (interpolation, validation, the checks across keys).

Some checks compare every item with every other (repeated `depends_on` names, host ports published twice,
repeated routes): without a bound 90,000 `depends_on` items took minutes. The first collection larger than
its bound ends the load with one `file:line: key: at most N items are allowed` ConfigError. The maxima are
documented in the README (scaleout.yaml); `BOUNDS` is the one place they are set.
"""

from __future__ import annotations

__all__ = ["BOUNDS", "COMPOSE_BOUNDS", "COMPOSE_DEFAULT_MAX_ITEMS", "DEFAULT_MAX_ITEMS", "compose_max_items",
           "max_items"]

MAX_SERVICES = 64
MAX_ENV = 512  # variables in one environment map
MAX_ENV_FILES = 16
MAX_PORTS = 64
MAX_VOLUMES = 64
MAX_ROUTES = 128
MAX_ARGS = 256  # arguments of a command, items of a health check test
MAX_REPLICA_NAMES = 32  # weights, backup: one per replica at most (backend.replicas <= 32)
DEFAULT_MAX_ITEMS = 64  # any other list or map (the top level, a section's keys, ...)

# key path ("*" matches one key) -> the most items its list or map may hold
BOUNDS: dict[tuple[str, ...], int] = {
    ("services",): MAX_SERVICES,
    ("services", "*", "ports"): MAX_PORTS,
    ("services", "*", "volumes"): MAX_VOLUMES,
    ("services", "*", "environment"): MAX_ENV,
    ("services", "*", "env_file"): MAX_ENV_FILES,
    ("services", "*", "command"): MAX_ARGS,
    ("services", "*", "healthcheck", "test"): MAX_ARGS,
    ("backend", "env"): MAX_ENV,
    ("backend", "env_file"): MAX_ENV_FILES,
    ("backend", "depends_on"): MAX_SERVICES,
    ("backend", "weights"): MAX_REPLICA_NAMES,
    ("backend", "backup"): MAX_REPLICA_NAMES,
    ("balancer", "tls_names"): 32,
    ("static", "routes"): MAX_ROUTES,
    ("static", "service_workers"): 16,
}


# A Compose file `init --from` reads (scaleout.adopt): real ones are larger than a scaleout.yaml (an
# environment of a few hundred variables, a few dozen services), so the bounds are wider; they still keep the
# checks across items (repeated ports, depends_on cycles) to a fraction of a second. Beyond them: the file's
# 20,000 values in all (config.yamlload.COMPOSE).
COMPOSE_DEFAULT_MAX_ITEMS = 1024  # any other list or map (labels, x- extensions, ...)
_PER_SERVICE = {"ports": 256, "expose": 256, "volumes": 256, "depends_on": 256, "links": 256, "networks": 256,
                "extra_hosts": 256, "secrets": 256, "configs": 256, "env_file": 64, "profiles": 64,
                "environment": 1024, "command": 1024, "entrypoint": 1024, "labels": 1024}
COMPOSE_BOUNDS: dict[tuple[str, ...], int] = {
    ("services",): 256,
    **{("services", "*", key): limit for key, limit in _PER_SERVICE.items()},
    ("services", "*", "healthcheck", "test"): 1024,
    ("services", "*", "build", "args"): 1024,
    **{(top,): 256 for top in ("volumes", "networks", "secrets", "configs")},
}


def max_items(path: tuple[str, ...], bounds: dict[tuple[str, ...], int] | None = None,
              default: int = DEFAULT_MAX_ITEMS) -> int:
    """The bound of the list or map at `path` in scaleout.yaml (`bounds`: BOUNDS), `default` when no row
    names it."""
    for pattern, limit in (BOUNDS if bounds is None else bounds).items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True)):
            return limit
    return default


def compose_max_items(path: tuple[str, ...]) -> int:
    """The bound of the list or map at `path` in a Compose file."""
    return max_items(path, COMPOSE_BOUNDS, COMPOSE_DEFAULT_MAX_ITEMS)
