"""`init --from` never copies a value of `.env` (or the environment) into the scaleout.yaml it writes: every
value that came from a variable keeps its `${VAR}` reference where scaleout.yaml takes it whole (name,
backend.build, port, replicas, health path, limits), with a note saying so; an image reference from a variable
not named *_IMAGE is refused (scaleout writes images resolved into generated files); a BASE_IMAGE build
argument from one is dropped with a note."""

from __future__ import annotations

import pytest

from scaleout.adopt import adopt
from scaleout.config.load import load_config
from scaleout.errors import ConfigError
from tests.helpers import run_cli

SECRETS = {"PROJECT": "shop", "APP_DIR": "./app", "APP_PORT": "5000", "REPLICAS": "4", "HEALTH": "healthz-s3cr3t",
           "MEM": "512m", "TOKEN": "tok-s3cr3t", "BASE": "registry.s3cr3t.example/py:3", "DB_PASSWORD": "pw-s3cr3t"}

COMPOSE = """name: ${PROJECT}
services:
  web:
    build:
      context: ${APP_DIR}
      args:
        BASE_IMAGE: ${BASE}
    ports: ["8080:${APP_PORT}"]
    environment:
      TOKEN: ${TOKEN}
    deploy:
      replicas: ${REPLICAS}
      resources: {limits: {memory: "${MEM}"}}
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:${APP_PORT}/${HEALTH}"]
  db:
    image: ${DB_IMAGE:-postgres:16}
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
"""


def _project(tmp_path, compose=COMPOSE, dotenv=SECRETS):
    (tmp_path / "app").mkdir(parents=True)
    (tmp_path / "app" / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.12-slim\nFROM ${BASE_IMAGE}\n")
    (tmp_path / "compose.yaml").write_text(compose)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    return tmp_path / "compose.yaml"


def test_no_value_of_dotenv_reaches_the_written_scaleout_yaml(tmp_path):
    r = run_cli(["init", "--from", "compose.yaml", "--service", "web"], _project(tmp_path).parent, timeout=60)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "scaleout.yaml").read_text()
    for value in ("s3cr3t", "shop", "512m"):
        assert value not in text, (value, text)
    for ref in ("name: ${PROJECT}", "build: ${APP_DIR}", "port: ${APP_PORT}", "replicas: ${REPLICAS}",
                "path: /${HEALTH}", "memory: ${MEM}", "TOKEN: ${TOKEN}", "POSTGRES_PASSWORD: ${DB_PASSWORD}"):
        assert ref in text, (ref, text)
    assert "base: python:3.12-slim" in text  # BASE_IMAGE from ${BASE}: left out, the Dockerfile's default
    out = r.stdout + r.stderr
    for key in ("name", "backend.build", "backend.port", "backend.replicas", "backend.health.path",
                "backend.limits.memory"):
        assert f"note: {key}: " in out and "kept as written" in out, (key, out)
    assert "build.args.BASE_IMAGE ${BASE}: not carried over: it takes its value from ${BASE} (.env)" in out
    # and scaleout reads it back from the same .env, resolved as Compose did
    cfg = load_config(tmp_path, env={})
    assert (cfg.name, cfg.backend.build, cfg.backend.port, cfg.backend.replicas) == ("shop", "./app", 5000, 4)
    assert cfg.backend.health.path == "/healthz-s3cr3t" and cfg.backend.limits.memory == "512m"
    r = run_cli(["render"], tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr

def test_without_the_variables_set_the_values_are_written_as_numbers(tmp_path):
    a = adopt(_project(tmp_path, COMPOSE.replace("${APP_PORT}", "${APP_PORT:-5000}")
                       .replace("${REPLICAS}", "2"), dotenv={"APP_DIR": "./app", "HEALTH": "h", "MEM": "256m"}),
              service="web", env={})
    assert a.data["backend"]["port"] == 5000 and a.data["backend"]["replicas"] == 2


def test_an_image_from_a_variable_is_refused_unless_named_as_an_image(tmp_path):
    compose = "services:\n  web:\n    image: ${REGISTRY}/web:1\n    ports: ['8000:5000']\n"
    with pytest.raises(ConfigError) as err:
        adopt(_project(tmp_path, compose, {"REGISTRY": "registry.s3cr3t.example"}), service="web", env={})
    assert "services.web.image: takes its value from ${REGISTRY} (.env or the environment)" in err.value.message
    assert "s3cr3t" not in str(err.value)
    a = adopt(_project(tmp_path / "ok", compose.replace("${REGISTRY}/web:1", "${WEB_IMAGE}"),
                       {"WEB_IMAGE": "acme/web:2"}), service="web", env={})
    assert a.data["backend"]["image"] == "${WEB_IMAGE}"
