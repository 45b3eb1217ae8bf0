"""scaleout.yaml validation: good configs become a Config, bad ones one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.load import load_config, parse_config
from scaleout.config.model import Overrides
from scaleout.config.sections import MAX_REPLICAS
from scaleout.errors import ConfigError, UsageError

P = Path("/tmp/some-project")


def parse(text: str, env: dict | None = None):
    return parse_config(text, P, env=env or {})


def test_defaults_from_an_empty_file():
    c = parse("")
    assert c.name == "some-project"
    assert c.backend.replicas == 3 and c.backend.port == 8000
    assert c.balancer.port == 8080 and c.balancer.bind == "127.0.0.1" and c.balancer.strategy == "round_robin"
    assert c.images.balancer == "nginx:1.27" and c.images.base == "python:3.12-slim"
    assert c.url == "http://127.0.0.1:8080"


def test_environment_overrides_images():
    c = parse("images: {balancer: nginx:1.25}",
              env={"SCALEOUT_LB_IMAGE": "local/lb:1", "SCALEOUT_BASE_IMAGE": "local/base:2"})
    assert c.images.balancer == "local/lb:1" and c.images.base == "local/base:2"


def test_bad_environment_image_is_rejected():
    with pytest.raises(ConfigError, match="images.balancer"):
        parse("", env={"SCALEOUT_LB_IMAGE": "nginx; rm -rf /"})


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("backend: [", "not valid YAML"),
        ("- a\n- b", "must be a mapping"),
        ("just a string", "must be a mapping"),
        ("nmae: x", "nmae: unknown key"),
        ("backend:\n  port: 70000", "scaleout.yaml:2: backend.port"),
        ("backend:\n  port: 0", "backend.port"),
        ("backend:\n  replicas: 0", "backend.replicas"),
        (f"backend:\n  replicas: {MAX_REPLICAS + 1}", "backend.replicas"),
        ("backend:\n  replicas: three", "backend.replicas"),
        ("balancer:\n  port: '8080; include /etc/passwd'", "balancer.port"),
        ("balancer:\n  strategy: fastest", "must be one of round_robin"),
        ("balancer:\n  bind: 'localhost; evil'", "balancer.bind"),
        ("balancer:\n  hash_key: '$cookie_x; include /etc/passwd'", "balancer.hash_key"),
        ("name: My_Project", "name: must be a DNS label"),
        ("name: 'a\nb'", "name"),
        ("name: '{{ evil }}'", "name"),
        ("static:\n  dir: ../..", "static.dir"),
        ("static:\n  dir: /etc", "static.dir"),
        ("backend:\n  build: ../outside", "backend.build"),
        ("backend:\n  health:\n    path: '/x\"; return 200'", "backend.health.path"),
        ("backend:\n  env:\n    'BAD KEY': x", "backend.env"),
        ("backend:\n  env:\n    K: \"a\\nb\"", "backend.env"),
        ("backend:\n  weights: {web-1: 2}", "backend.weights"),
        ("static:\n  routes: ['/ok/', 'no-slash']", "static.routes"),
        ("images:\n  base: 'python:3.12\ninclude'", "images.base"),
        ("balancer:\n  strategy: hash\nbackend:\n  backup: [backend-2]", "backup"),
        ("backend:\n  replicas: 2\n  backup: [backend-1, backend-2]", "nginx needs at least one primary"),
        ("static:\n  routes: ['/../../']", "static.routes"),
        ("static:\n  routes: ['/static/../../']", "static.routes"),
        ("static:\n  service_workers: ['/a//sw.js']", "static.service_workers"),
        ("static:\n  offline_page: /./offline.html", "static.offline_page"),
        ("backend:\n  health:\n    path: /../healthz", "backend.health.path"),
    ],
)
def test_bad_values_name_file_key_and_rule(text, fragment):
    with pytest.raises(ConfigError) as exc:
        parse(text)
    msg = str(exc.value)
    assert fragment in msg
    assert msg.startswith("scaleout.yaml")


def test_every_problem_is_reported_once_per_line():
    with pytest.raises(ConfigError) as exc:
        parse("backend:\n  port: 0\n  replicas: 0\nbalancer:\n  port: -1")
    assert len(exc.value.problems) == 3


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)


def test_unreadable_file(tmp_path):
    (tmp_path / "scaleout.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)


def test_overrides_are_validated_like_the_file():
    c = parse("")
    assert c.with_overrides(Overrides(replicas=5, port=9000, strategy="least_conn")).backend.replicas == 5
    with pytest.raises(UsageError, match="--replicas"):
        c.with_overrides(Overrides(replicas=0))
    with pytest.raises(UsageError, match="--port"):
        c.with_overrides(Overrides(port=70000))
    with pytest.raises(UsageError, match="--strategy"):
        c.with_overrides(Overrides(strategy="nope"))


def test_overrides_work_with_a_prebuilt_image():
    c = parse("backend:\n  image: registry.example.com/team/app:1")
    o = c.with_overrides(Overrides(replicas=2, port=9000, strategy="least_conn"))
    assert o.backend.replicas == 2 and o.backend.image == "registry.example.com/team/app:1" and not o.backend.builds


def test_overrides_keep_every_backup_rule():
    c = parse("backend:\n  replicas: 3\n  backup: [backend-2, backend-3]")
    assert c.with_overrides(Overrides(replicas=1)).backend.replicas == 1
    c = parse("backend:\n  replicas: 3\n  backup: [backend-1]")
    with pytest.raises(UsageError, match="at least one primary"):
        c.with_overrides(Overrides(replicas=1))


def test_config_is_immutable():
    from pydantic import ValidationError

    c = parse("")
    with pytest.raises(ValidationError):
        c.name = "other"  # type: ignore[misc]
