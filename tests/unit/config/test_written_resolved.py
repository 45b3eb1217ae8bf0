"""A value from `.env` or the environment never lands resolved in a generated file: the keys scaleout writes
as it resolved them (image references, service volumes, published ports) refuse a `${VAR}` that has a value
there (exit 2, the key, the variable and why; the value itself is never printed), and nothing is written.
A default (`${VAR:-x}` while VAR is unset) is the file's own text and stays allowed."""

from __future__ import annotations

import pytest

from scaleout.scaffold import init_project
from tests.helpers import run_cli

SECRET = "s3cret-value-from-dotenv"
SERVICE = "services:\n  cache:\n    image: {image}\n    volumes: [{volume}]\n    ports: [{port}]\n"
PLAIN = {"image": "redis:7", "volume": '"cache-data:/data"', "port": '"127.0.0.1:6379:6379"'}


@pytest.fixture
def project(tmp_path):
    init_project(tmp_path / "p", "python", name="p")
    return tmp_path / "p"


def _cases():
    yield "images.base", lambda t: t.replace("  base: python:3.12-slim", '  base: "python:${SECRET}"'), {}
    yield "backend.image", lambda t: t.replace("  build: backend\n", '  image: "registry.test/${SECRET}:1"\n'), {}
    for key, value in (("image", '"redis:${SECRET}"'), ("volume", '"${SECRET}:/data"'),
                       ("port", '"127.0.0.1:${SECRET}:6379"')):
        fields = {**PLAIN, key: value}
        yield (f"services.cache.{key}s.0" if key != "image" else "services.cache.image",
               lambda t, f=fields: t + SERVICE.format(**f), {})


@pytest.mark.parametrize("source", ["dotenv", "environment"])
@pytest.mark.parametrize("key, edit, _", list(_cases()), ids=[c[0] for c in _cases()])
def test_a_resolved_value_is_refused_where_it_would_be_written(project, source, key, edit, _):
    cfg = project / "scaleout.yaml"
    cfg.write_text(edit(cfg.read_text()))
    value = "6379" if key.endswith("ports.0") else ("data" if "volumes" in key else SECRET)
    env = {}
    if source == "dotenv":
        (project / ".env").write_text(f"SECRET={value}\n")
    else:
        env = {"SECRET": value}
    r = run_cli(["render"], project, env, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert key in r.stderr and "${SECRET}" in r.stderr and "generated files" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and SECRET not in r.stdout + r.stderr
    assert not (project / ".scaleout").exists()  # nothing written


def test_a_default_while_the_variable_is_unset_is_the_files_own_text(project):
    cfg = project / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  base: python:3.12-slim", '  base: "python:${PY_TAG:-3.12-slim}"'))
    r = run_cli(["render"], project, timeout=30)
    assert r.returncode == 0, r.stderr


def test_an_image_override_variable_may_choose_an_image(tmp_path):
    """The redis scaffold's `image: ${REDIS_IMAGE:-redis:7-alpine}`: a variable named *_IMAGE holds an image
    reference by name, and may set one; any other variable beside it is still refused."""
    from scaleout.config.load import parse_config
    from scaleout.errors import ConfigError

    text = "services:\n  cache:\n    image: ${REDIS_IMAGE:-redis:7-alpine}\n"
    cfg = parse_config(text, tmp_path, env={"REDIS_IMAGE": "scaleout-local/redis:1"}, dotenv={})
    assert cfg.services["cache"].image == "scaleout-local/redis:1"
    with pytest.raises(ConfigError, match=r"takes its value from \$\{TOKEN\}"):
        parse_config("services:\n  cache:\n    image: ${REDIS_IMAGE}:${TOKEN}\n", tmp_path,
                     env={"REDIS_IMAGE": "redis", "TOKEN": "s3cret"}, dotenv={})
