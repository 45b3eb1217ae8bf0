"""`$` never reaches Compose unescaped: what scaleout checked is what Compose reads. A published address with
an IPv6 zone (`::1%${HOME}`) is refused (Compose would interpolate it; Docker cannot publish on a zone
anyway), and in the rendered Compose file every `$` outside the values Compose is meant to interpolate
(environment, commands, health checks: their text as the user wrote it) is escaped as `$$`."""

from __future__ import annotations

import re

import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.render.compose import render_compose
from scaleout.scaffold import init_project
from tests.helpers import run_cli

ZONES = ["::1%${HOME}", "fe80::1%$USER", "fe80::1%eth0", "::1%$$x", "fe80::1%${HOME:-x}", "::1%25"]


@pytest.fixture
def project(tmp_path):
    init_project(tmp_path / "p", "python", name="p")
    return tmp_path / "p"


def _yaml_str(v: str) -> str:
    return '"' + v.replace("$", "$$") + '"'  # as written in scaleout.yaml: $$ is its own literal $


@pytest.mark.parametrize("zone", ZONES)
def test_a_zone_in_balancer_bind_exits_2_and_writes_nothing(project, zone):
    cfg = project / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  bind: 127.0.0.1", f"  bind: {_yaml_str(zone)}"))
    r = run_cli(["render"], project, timeout=30)  # in seconds: the timeout fails it
    assert r.returncode == 2, r.stderr
    assert "balancer.bind" in r.stderr and "zone" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (project / ".scaleout" / "docker-compose.yml").exists()


@pytest.mark.parametrize("zone", ZONES)
def test_a_zone_in_a_service_port_exits_2_and_writes_nothing(project, zone):
    cfg = project / "scaleout.yaml"
    port = _yaml_str(f"[{zone}]:6379:6379")
    cfg.write_text(cfg.read_text() + f"services:\n  cache:\n    image: redis:7\n    ports: [{port}]\n")
    r = run_cli(["render"], project, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "services.cache.ports.0" in r.stderr and "zone" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (project / ".scaleout" / "docker-compose.yml").exists()


def test_a_zone_given_through_dotenv_is_refused_too(project):
    (project / ".env").write_text("BIND='::1%${HOME}'\n")
    cfg = project / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  bind: 127.0.0.1", '  bind: "${BIND}"'))
    r = run_cli(["render"], project, timeout=30)
    assert r.returncode == 2 and "balancer.bind" in r.stderr and "Traceback" not in r.stderr, r.stderr


# the keys Compose interpolates on purpose: their text is the user's, references kept, literal $ as $$
INTERPOLATED = re.compile(r"services\.[^.]+\.(environment\.[^.]+|command(\.\d+)?|healthcheck\.test(\.\d+)?)")


def _strings(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, str(i)))
    elif isinstance(node, str):
        yield ".".join(path), node


def test_every_dollar_outside_the_interpolated_values_is_escaped(project):
    text = (project / "scaleout.yaml").read_text()
    text = text.replace('    CPU_WORK_MS: "0"', '    CPU_WORK_MS: "0"\n    PRICE: "$$5 and $${HOME}"')
    text += ("services:\n  cache:\n    image: redis:7\n    command: [\"sh\", \"-c\", \"echo $$HOME\"]\n"
             "    environment: {A: \"$${X}\"}\n    ports: [\"[::1]:6379:6379\"]\n")
    cfg = parse_config(text, project, env={}, dotenv={})
    data = yaml.safe_load(render_compose(cfg))
    unescaped = re.compile(r"\$(?!\$)")
    for path, value in _strings(data):
        if INTERPOLATED.fullmatch(path):
            continue
        assert not unescaped.search(value.replace("$$", "")), f"{path}: {value!r} reaches Compose unescaped"
    assert data["services"]["cache"]["ports"] == ["[::1]:6379:6379/tcp"]
