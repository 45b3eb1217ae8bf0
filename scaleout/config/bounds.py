"""Size bounds of every list and map in scaleout.yaml, applied while the YAML is parsed
(scaleout.config.yamlload stops at the first item too many), so before anything else looks at the
values (interpolation, validation, the checks across keys).

Some checks compare every item with every other (repeated `depends_on` names, host ports published twice,
repeated routes): without a bound 90,000 `depends_on` items took minutes. The first collection larger than
its bound ends the load with one `file:line: key: at most N items are allowed` ConfigError. The maxima are
documented in the README (scaleout.yaml); `BOUNDS` is the one place they are set.
"""

from __future__ import annotations

__all__ = ["BOUNDS", "DEFAULT_MAX_ITEMS", "max_items"]

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


def max_items(path: tuple[str, ...]) -> int:
    """The bound of the list or map at `path` (DEFAULT_MAX_ITEMS when no row names it)."""
    for pattern, limit in BOUNDS.items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True)):
            return limit
    return DEFAULT_MAX_ITEMS
