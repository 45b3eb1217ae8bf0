"""Every list and map of scaleout.yaml has a size bound (scaleout/config/bounds.py), applied while the
YAML is parsed: a crafted file with tens of thousands of items ends in exit 2 naming the key, its line
and the maximum, before any check that compares items with each other runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.bounds import BOUNDS, DEFAULT_MAX_ITEMS, max_items
from scaleout.config.load import parse_config
from scaleout.errors import ConfigError
from tests.helpers import ROOT


def _items(n: int, make) -> str:
    return "".join(make(i) for i in range(n))


# (scaleout.yaml text, the key reported): each far beyond its bound, but inside the 1 MiB file limit
HUGE = {
    "depends_on": ("backend:\n  depends_on: [" + ",".join(["a"] * 90_000) + "]\n", "backend.depends_on"),
    "ports": ("services:\n  db:\n    image: x\n    ports:\n"
              + _items(33_000, lambda i: f'      - "{1 + i % 60000}:{1 + i % 60000}"\n'), "services.db.ports"),
    "services": ("services:\n" + _items(5_000, lambda i: f"  s{i}: {{image: x}}\n"), "services"),
    "routes": ("static:\n  routes: [" + ",".join(f"/r{i}" for i in range(50_000)) + "]\n", "static.routes"),
    "env": ("backend:\n  env:\n" + _items(40_000, lambda i: f"    K{i}: v\n"), "backend.env"),
    "env list": ("backend:\n  env: [" + ",".join(f"K{i}=v" for i in range(40_000)) + "]\n", "backend.env"),
    "volumes": ("services:\n  db:\n    image: x\n    volumes:\n" + _items(20_000, lambda i: f"      - v{i}:/d{i}\n"),
                "services.db.volumes"),
    "environment": ("services:\n  db:\n    image: x\n    environment:\n" + _items(30_000, lambda i: f"      K{i}: v\n"),
                    "services.db.environment"),
    "command": ("services:\n  db:\n    image: x\n    command: [" + ",".join(["x"] * 60_000) + "]\n",
                "services.db.command"),
    "env_file": ("backend:\n  env_file: [" + ",".join(f"f{i}" for i in range(10_000)) + "]\n", "backend.env_file"),
    "weights": ("backend:\n  weights: {" + ",".join(f"backend-{i}: 1" for i in range(1, 20_000)) + "}\n",
                "backend.weights"),
    "backup": ("backend:\n  backup: [" + ",".join(f"backend-{i}" for i in range(1, 20_000)) + "]\n", "backend.backup"),
    "tls_names": ("balancer:\n  tls_names: [" + ",".join(f"h{i}.test" for i in range(20_000)) + "]\n",
                  "balancer.tls_names"),
    "healthcheck test": ("services:\n  db:\n    image: x\n    healthcheck:\n      test: [CMD, "
                         + ",".join(["x"] * 50_000) + "]\n", "services.db.healthcheck.test"),
    "unknown map": ("x:\n" + _items(20_000, lambda i: f"  k{i}: 1\n"), "x"),
    "top level": (_items(20_000, lambda i: f"k{i}: 1\n"), "the file"),
}


@pytest.mark.timeout(60)  # without the bounds some cases run for minutes
@pytest.mark.parametrize("case", sorted(HUGE))
def test_a_huge_collection_is_refused_at_once_with_key_line_and_maximum(case):
    text, key = HUGE[case]
    assert len(text.encode()) <= 1 << 20
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/nonexistent-project"), env={}, dotenv={})
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    path = tuple(key.split(".")) if key != "the file" else ()
    assert f": {key}: at most {max_items(path)} " in message, message
    assert message.startswith("scaleout.yaml:"), message


def test_a_collection_at_its_bound_is_accepted():
    env = "".join(f"    K{i}: v\n" for i in range(max_items(("backend", "env"))))
    config = parse_config("backend:\n  env:\n" + env, Path("/nonexistent-project"), env={}, dotenv={})
    assert len(config.backend.env) == max_items(("backend", "env"))
    with pytest.raises(ConfigError, match="backend.env: at most"):
        parse_config("backend:\n  env:\n" + env + "    ONE_MORE: v\n", Path("/nonexistent-project"), env={}, dotenv={})


def test_every_bound_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for pattern, limit in BOUNDS.items():
        key = ".".join("NAME" if p == "*" else p for p in pattern)
        assert f"| `{key}` | {limit} |" in readme, key
    assert f"Any other list or map: {DEFAULT_MAX_ITEMS} items" in readme
