"""`scaleout init --from`: a Compose project mapped to scaleout.yaml, with a note for everything that
does not carry over. No engine needed."""

from __future__ import annotations

import hashlib
import os
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from scaleout.adopt import adopt
from scaleout.config.interpolation import MAX_NESTING, InterpolationError, interpolate
from scaleout.config.load import parse_config, read_dotenv
from scaleout.config.model import Config
from scaleout.config.values import duration_seconds
from scaleout.errors import ConfigError, UsageError
from tests.helpers import TESTS, run_cli

FIXTURES = TESTS / "fixtures" / "compose"


def fixture(tmp_path: Path, name: str) -> Path:
    """A copy of a fixture project (the repository's copy is never written)."""
    dst = tmp_path / name
    shutil.copytree(FIXTURES / name, dst)
    return dst


def write_project(tmp_path: Path, compose: str, files: dict[str, str] | None = None,
                  filename: str = "compose.yaml", folder: str = "proj") -> Path:
    root = tmp_path / folder
    root.mkdir(parents=True, exist_ok=True)
    (root / filename).write_text(textwrap.dedent(compose))
    for rel, text in {"app/Dockerfile": "FROM scratch\n", **(files or {})}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / filename


def adopted(tmp_path: Path, compose: str, *, service: str | None = "web", files: dict[str, str] | None = None,
            env: dict[str, str] | None = None, **kw):
    return adopt(write_project(tmp_path, compose, files), service=service, env=env or {}, **kw)


def notes_about(adoption, prefix: str) -> list[str]:
    return [n for n in adoption.notes if n.startswith(prefix)]


def check_notes(adoption, heads: set[str], *, exact: bool = False) -> None:
    """Each head (`service: key value`) begins a note; with `exact`, there is no other note."""
    for head in heads:
        assert any(n.startswith(head + ": ") for n in adoption.notes), (head, adoption.notes)
    if exact:
        assert len(adoption.notes) == len(heads), adoption.notes


def tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


# --- the fixtures ---------------------------------------------------------------------------------------------

def test_flask_redis_fixture(tmp_path):
    root = fixture(tmp_path, "flask-redis")
    a = adopt(root / "docker-compose.yml", env={})
    assert a.service == "web"  # the only service with a build
    assert a.data["name"] == "flask-redis"
    assert a.data["backend"] == {
        "build": "app",
        "port": 5000,
        "replicas": 3,
        "health": {"path": "/health", "interval": 5, "timeout": 3, "retries": 5, "start_period": 5},
        "env": {"REDIS_HOST": "redis", "REDIS_PORT": "${REDIS_PORT:-6379}", "FLASK_DEBUG": "${FLASK_DEBUG:-}"},
        "env_file": ["web.env"],
        "depends_on": ["redis"],
        "limits": {"memory": "256m"},
    }
    assert a.data["services"] == {"redis": {
        "image": "redis:7-alpine",
        "command": ["redis-server", "--appendonly", "yes", "--protected-mode", "no"],
        "volumes": ["redis-data:/data"],
        "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "2s", "timeout": "3s", "retries": 10},
    }}
    assert a.data["images"] == {"base": "python:3.12-slim"}  # the Dockerfile's ARG BASE_IMAGE default
    assert "web: ports 8000:5000: the replicas are not published; the balancer listens on 127.0.0.1:8080 instead" \
        in a.notes
    check_notes(a, {
        "web: ports 8000:5000", "web: environment FLASK_DEBUG", "web: deploy.resources.limits.cpus 0.50",
        "web: container_name flask-web", "web: restart unless-stopped", "redis: container_name flask-redis",
        "redis: restart unless-stopped",
    }, exact=True)


def test_express_postgres_fixture(tmp_path):
    root = fixture(tmp_path, "express-postgres")
    a = adopt(root / "compose.yaml", env={})
    assert a.service == "backend"  # a web service may be called backend: it becomes the replicas
    assert a.data["name"] == "express-pg-demo"  # the top-level name
    b = a.data["backend"]
    assert (b["build"], b["port"], b["replicas"]) == ("backend", 3000, 2)  # deploy.replicas carried over
    assert b["health"]["command"].startswith("node -e \"require('http').get('http://127.0.0.1:3000/healthz'")
    assert "path" not in b["health"]
    # Compose's interpolation is kept as written, numbers become strings
    assert b["env"]["DATABASE_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    assert b["env"]["DATABASE_PORT"] == "5432"
    assert "env_file" not in b  # optional and missing
    db = a.data["services"]["db"]
    assert db["volumes"] == ["db-data:/var/lib/postgresql/data"]  # long syntax -> short
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U postgres -d $${POSTGRES_DB}"]
    assert a.data["images"] == {"base": "node:20-slim"}
    check_notes(a, {
        "backend: build.args NODE_ENV", "backend: ports 127.0.0.1:3000-3001:3000", "backend: deploy.replicas 2",
        "backend: env_file ./backend.env", "backend: deploy.restart_policy.condition on-failure",
        "backend: networks front back", "db: restart always", "db: networks back", "networks: front back",
    }, exact=True)


def test_django_mongo_fixture_needs_a_service_and_notes_every_loss(tmp_path):
    root = fixture(tmp_path, "django-mongo")
    with pytest.raises(UsageError) as err:
        adopt(root / "docker-compose.yml", env={})
    assert "candidates: web (build" in str(err.value) and "worker (build)" in str(err.value)
    a = adopt(root / "docker-compose.yml", service="web", env={})
    b = a.data["backend"]
    assert (b["build"], b["dockerfile"], b["port"]) == (".", "docker/Dockerfile.web", 8000)
    assert b["health"] == {"path": "/healthz/", "interval": 90, "timeout": 10, "retries": 3, "start_period": 40}
    assert b["env"] == {"APP_SETTINGS": "mysite.settings", "MONGO_URL": "mongodb://mongo:27017/app", "DEBUG": "1"}
    assert b["env_file"] == [".env"]
    assert b["depends_on"] == ["mongo", "worker"]
    assert a.data["services"]["worker"]["environment"] == {"APP_SETTINGS": "mysite.settings",
                                                           "MONGO_URL": "mongodb://mongo:27017/app"}
    assert a.data["services"]["worker"]["volumes"] == [".:/code:ro"]
    assert a.data["services"]["mongo"]["volumes"] == ["mongo-data:/data/db",
                                                      "./mongo/init.js:/docker-entrypoint-initdb.d/init.js:ro"]
    assert "debug" not in a.data["services"]
    check_notes(a, {"debug: profiles debug", "web: build.args PIP_INDEX_URL", "web: image example/django-web:dev",
                     "web: ports 127.0.0.1:8000:8000", "web: ports 5678:5678", "web: healthcheck.start_interval 5s",
                     "web: env_file ../secrets.env", "web: command python3 manage.py runserver 0.0.0.0:8000",
                     "web: volumes .:/code", "web: links mongo", "web: privileged true", "web: pid host",
                     "web: devices /dev/fuse", "web: labels com.example.team: web",
                     "worker: volumes /var/run/docker.sock:/var/run/docker.sock", "worker: volumes ../shared:/shared",
                     "worker: volumes /tmp/cache", "worker: depends_on mongo", "mongo: ports 27017:27017",
                     "mongo: container_name django-mongo", "mongo: network_mode host",
                     "volumes.mongo-data: external: true", "networks: default", "secrets: api-key"}, exact=True)


@pytest.mark.parametrize("name", ["flask-redis", "express-postgres", "django-mongo"])
def test_fixture_output_is_valid_yaml_with_the_notes_as_comments(tmp_path, name):
    root = fixture(tmp_path, name)
    compose = next(root.glob("*compose.y*ml"))
    a = adopt(compose, service="web" if name == "django-mongo" else None, env={})
    text = a.text()
    assert yaml.safe_load(text) == a.data
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert comments[0].startswith(f"# scaleout.yaml generated by `scaleout init --from {compose.name} --service")
    for note in a.notes:
        assert f"#   - {note}" in comments
    # whatever this version's Config knows of it validates (services, env_file, depends_on: the services runtime)
    known = {k: v for k, v in yaml.safe_load(text).items() if k in Config.model_fields}
    known["backend"] = {k: v for k, v in known["backend"].items() if k in Config.model_fields["backend"].annotation
                        .model_fields}
    parse_config(yaml.safe_dump(known), root, env={})


# --- the backend ---------------------------------------------------------------------------------------------

WEB = """\
services:
  web:
    build: ./app
{extra}
"""


def web(extra: str) -> str:
    return WEB.format(extra=textwrap.indent(textwrap.dedent(extra).strip("\n"), "    "))


@pytest.mark.parametrize("test, port, expected", [
    ('["CMD", "curl", "-f", "http://localhost:5000/health"]', 5000, {"path": "/health"}),
    ('["CMD-SHELL", "curl -fsS http://127.0.0.1:5000/ || exit 1"]', 5000, {"path": "/"}),
    ('"wget -q --spider http://localhost:5000/ready"', 5000, {"path": "/ready"}),
    ('["CMD", "curl", "-f", "-o", "/dev/null", "http://localhost/up"]', 80, {"path": "/up"}),
    ('["CMD", "curl", "-f", "http://localhost:${APP_PORT:-5000}/health"]', 5000, {"path": "/health"}),
    ('["CMD", "curl", "-f", "http://localhost:9999/health"]', 5000, {"command": "curl -f http://localhost:9999/health"}),
    ('["CMD", "curl", "-f", "https://localhost:5000/health"]', 5000,
     {"command": "curl -f https://localhost:5000/health"}),
    ('["CMD", "curl", "-f", "http://localhost:5000/health?deep=1"]', 5000,
     {"command": "curl -f 'http://localhost:5000/health?deep=1'"}),
    ('"curl -f http://localhost:5000/health && test -f /tmp/ready"', 5000,
     {"command": "curl -f http://localhost:5000/health && test -f /tmp/ready"}),
    ('["CMD", "python3", "-c", "import urllib.request as u; u.urlopen(\'http://localhost:5000/\')"]', 5000,
     {"command": "python3 -c 'import urllib.request as u; u.urlopen('\"'\"'http://localhost:5000/'\"'\"')'"}),
    ('["CMD-SHELL", "pg_isready -U $${POSTGRES_USER}"]', 5000, {"command": "pg_isready -U $${POSTGRES_USER}"}),
])
def test_health_test_becomes_path_or_command(tmp_path, test, port, expected):
    a = adopted(tmp_path, web(f"""
        ports: ["{port}"]
        healthcheck:
          test: {test}
    """))
    assert a.data["backend"]["health"] == expected
    assert not notes_about(a, "web: healthcheck")


def test_health_command_list_is_shell_quoted_and_still_one_word_per_argument(tmp_path):
    a = adopted(tmp_path, web("""
        ports: ["5000"]
        healthcheck:
          test: ["CMD", "/bin/check", "a b", "it's"]
    """))
    import shlex

    assert shlex.split(a.data["backend"]["health"]["command"]) == ["/bin/check", "a b", "it's"]


@pytest.mark.parametrize("healthcheck, note", [
    ("", "web: healthcheck: none given: scaleout probes GET / on port 5000 (safer than /healthz"),
    ("healthcheck:\n  test: [\"NONE\"]", "web: healthcheck disabled: scaleout gates traffic on health"),
    ("healthcheck:\n  disable: true", "web: healthcheck disabled: scaleout gates traffic on health"),
    ("healthcheck:\n  interval: 10s", "web: healthcheck no test: the image's own HEALTHCHECK is not read"),
    ("healthcheck:\n  test: |\n    curl -f http://localhost:5000/a\n    curl -f http://localhost:5000/b",
     "web: healthcheck.test curl -f http://localhost:5000/a?curl"),
])
def test_without_a_usable_healthcheck_health_is_get_slash(tmp_path, healthcheck, note):
    a = adopted(tmp_path, web(f'ports: ["5000"]\n{healthcheck}'))
    assert a.data["backend"]["health"]["path"] == "/"
    assert "command" not in a.data["backend"]["health"]
    assert any(n.startswith(note) for n in a.notes), a.notes


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1.5s", 1.5),
                                           ("2m0s", 120), ("10", None), ("s", None), ("1x", None), ("", None)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


def test_health_timings_are_rounded_up_and_clamped_with_notes(tmp_path):
    a = adopted(tmp_path, web("""
        ports: ["5000"]
        healthcheck:
          test: ["CMD", "curl", "-f", "http://localhost:5000/"]
          interval: 500ms
          timeout: 1.2s
          retries: 0
          start_period: 2h
    """))
    assert a.data["backend"]["health"] == {"path": "/", "interval": 1, "timeout": 2, "retries": 1, "start_period": 3600}
    check_notes(a, {"web: healthcheck.retries 0", "web: healthcheck.start_period 2h"})
    assert not notes_about(a, "web: healthcheck.interval")  # 500ms -> 1 s is in range: no loss worth a note


def test_container_port_from_ports_expose_dockerfile_or_default(tmp_path):
    a = adopted(tmp_path / "a", web('ports: ["127.0.0.1:80:8080", "9229:9229", "53:53/udp"]'))
    assert a.data["backend"]["port"] == 8080
    check_notes(a, {"web: ports 127.0.0.1:80:8080", "web: ports 9229:9229", "web: ports 53:53/udp",
                             "web: healthcheck"}, exact=True)
    assert notes_about(a, "web: ports 9229:9229")[0].endswith("scaleout balances one port (8080) and publishes only "
                                                              "the balancer")
    a = adopted(tmp_path / "b", web('expose: [3000, "4000/tcp"]'))
    assert a.data["backend"]["port"] == 3000
    assert notes_about(a, "web: expose 4000/tcp")
    a = adopted(tmp_path / "c", web(""), files={"app/Dockerfile": "FROM x\nEXPOSE 7000/tcp\n"})
    assert a.data["backend"]["port"] == 7000
    assert notes_about(a, "web: ports: none given: port 7000 from the Dockerfile's EXPOSE")
    a = adopted(tmp_path / "d", web(""))
    assert a.data["backend"]["port"] == 8000
    assert notes_about(a, "web: ports: none given: scaleout assumes the app listens on 8000")


def test_ports_with_a_variable_are_resolved_for_the_port_and_shown_as_written(tmp_path):
    a = adopted(tmp_path, web('ports: ["${WEB_PORT:-8000}:${APP_PORT:-5000}"]'), env={"APP_PORT": "5050"})
    assert a.data["backend"]["port"] == "${APP_PORT:-5000}"  # set in the environment: kept as written
    assert notes_about(a, "backend.port: ${APP_PORT:-5000}: kept as written")
    assert adopted(tmp_path / "d", web('ports: ["${WEB_PORT:-8000}:${APP_PORT:-5000}"]'), env={}).data[
        "backend"]["port"] == 5000  # only the default: the number
    assert notes_about(a, "web: ports ${WEB_PORT:-8000}:${APP_PORT:-5000}: the replicas are not published")


def test_image_instead_of_build(tmp_path):
    a = adopted(tmp_path, """
        services:
          web:
            image: ghcr.io/acme/shop:${TAG:-1.4}
            expose: ["8080"]
    """)
    assert a.data["backend"]["image"] == "ghcr.io/acme/shop:1.4"
    assert "build" not in a.data["backend"] and "images" not in a.data
    assert notes_about(a, "web: image ghcr.io/acme/shop:${TAG:-1.4}: written as ghcr.io/acme/shop:1.4")


def test_build_args_base_image_and_target(tmp_path):
    a = adopted(tmp_path, """
        services:
          web:
            build:
              context: app
              dockerfile: Dockerfile.prod
              target: runtime
              args: [BASE_IMAGE=python:3.11-slim, RELEASE=1]
            ports: ["5000"]
    """, files={"app/Dockerfile.prod": "FROM x\n"})
    b = a.data["backend"]
    assert (b["build"], b["dockerfile"]) == ("app", "Dockerfile.prod")
    assert a.data["images"] == {"base": "python:3.11-slim"}
    assert notes_about(a, "web: build.target runtime: scaleout builds the Dockerfile's last stage")
    assert notes_about(a, "web: build.args RELEASE: scaleout passes only BASE_IMAGE")


def test_environment_odd_names_and_values(tmp_path):
    a = adopted(tmp_path, web("""
        ports: ["5000"]
        environment:
          spring.datasource.url: jdbc:x
          WORKERS: 4
          DEBUG: false
          EMPTY: ""
          PASSTHROUGH:
          MULTI: "a\\nb"
          URL: http://x/?a=1&b=$${LITERAL}
    """))
    assert a.data["backend"]["env"] == {"WORKERS": "4", "DEBUG": "false", "EMPTY": "",
                                        "PASSTHROUGH": "${PASSTHROUGH:-}", "URL": "http://x/?a=1&b=$${LITERAL}"}
    check_notes(a, {"web: environment spring.datasource.url", "web: environment PASSTHROUGH",
                             "web: environment MULTI"})


def test_deploy_replicas_and_limits(tmp_path):
    a = adopted(tmp_path, web("""
        ports: ["5000"]
        deploy:
          mode: replicated
          replicas: 50
          resources:
            limits: {memory: 1.5G, pids: 200}
            reservations: {memory: 128M}
          placement: {constraints: [node.role == manager]}
    """))
    b = a.data["backend"]
    assert b["replicas"] == 32 and b["limits"] == {"memory": "1536m", "pids": 200}
    assert notes_about(a, "web: deploy.replicas 50: carried over as backend.replicas: 32 (1-32)")
    check_notes(a, {"web: deploy.mode replicated", "web: deploy.resources.reservations.memory 128M",
                             "web: deploy.placement.constraints node.role == manager"})


@pytest.mark.parametrize("written, expected", [("512M", "512m"), ("1g", "1g"), ("2048mb", "2g"), ("1073741824", "1g"),
                                               ("100000k", "98m")])
def test_memory_limits(tmp_path, written, expected):
    a = adopted(tmp_path, web(f'ports: ["5000"]\nmem_limit: {written}'))
    assert a.data["backend"]["limits"] == {"memory": expected}


def test_depends_on_conditions_and_dropped_services(tmp_path):
    a = adopted(tmp_path, """
        services:
          web:
            build: ./app
            ports: ["5000"]
            depends_on:
              db: {condition: service_healthy}
              migrate: {condition: service_completed_successfully}
              tools: {condition: service_started}
          db: {image: "postgres:16"}
          migrate: {image: "app:migrate"}
          tools: {image: busybox, profiles: [tools]}
    """)
    assert a.data["backend"]["depends_on"] == ["db", "migrate"]
    assert notes_about(a, "web: depends_on migrate (service_completed_successfully): scaleout waits for it to start")
    assert notes_about(a, "web: depends_on tools: not a service scaleout starts")
    assert notes_about(a, "tools: profiles tools: Compose starts it only on request")


def test_dir_above_the_compose_folder_rewrites_paths_and_mentions_the_env_file(tmp_path):
    compose = write_project(tmp_path, web('env_file: [web.env]\nports: ["5000"]'), files={"web.env": "A=1\n",
                                                                                           ".env": "X=1\n"},
                            folder="repo/deploy")
    a = adopt(compose, project_dir=tmp_path / "repo", env={})
    assert a.project_dir == (tmp_path / "repo").resolve()
    assert (a.data["backend"]["build"], a.data["backend"]["env_file"]) == ("deploy/app", ["deploy/web.env"])
    assert a.data["name"] == "deploy"  # the Compose file's folder names the project
    assert [n for n in a.notes if n.startswith(".env: Compose read")]


def test_dir_beside_the_project_cannot_reach_the_build_folder(tmp_path):
    compose = write_project(tmp_path, web('ports: ["5000"]'))
    with pytest.raises(ConfigError) as err:
        adopt(compose, project_dir=tmp_path / "elsewhere", env={})
    assert "compose.yaml:3: services.web.build.context: ./app is outside the project folder" in str(err.value)


# --- the other services ------------------------------------------------------------------------------------

def test_service_volumes(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "proj"
    root.mkdir()
    os.symlink(outside, root / "escape")
    a = adopted(tmp_path, """
        services:
          web: {build: ./app, ports: ["5000"]}
          store:
            image: minio/minio
            volumes:
              - data:/data
              - ./conf:/etc/conf:ro
              - conf-cache:/cache:nocopy
              - /srv/data:/srv
              - ~/x:/x
              - ../up:/up
              - ./escape:/escape
              - /anonymous
              - ${DATA_DIR:-./data}:/more
              - type: bind
                source: ./certs
                target: /certs
                read_only: true
              - type: volume
                source: logs
                target: /logs
                volume: {nocopy: true}
              - type: tmpfs
                target: /tmp
              - data:relative/path
    """)
    assert a.data["services"]["store"]["volumes"] == [
        "data:/data", "./conf:/etc/conf:ro", "conf-cache:/cache", "./data:/more", "./certs:/certs:ro",
        "logs:/logs"]
    assert notes_about(a, "store: volumes conf-cache:/cache:nocopy: option nocopy is not carried over")
    check_notes(a, {"store: volumes /srv/data:/srv", "store: volumes ~/x:/x", "store: volumes ../up:/up",
                    "store: volumes ./escape:/escape", "store: volumes /anonymous",
                    "store: volumes type: tmpfs, target: /tmp", "store: volumes data:relative/path"})
    assert notes_about(a, "store: volumes ./escape:/escape: outside the project folder")
    assert [n for n in notes_about(a, "store: volumes type: volume, source: logs")
            if n.endswith(": volume: not carried over")]
    assert notes_about(a, "store: volumes ${DATA_DIR:-./data}:/more: written as ./data:/more (scaleout resolves")


def test_service_ports_stay_as_written_with_a_note_on_where_they_are_published(tmp_path):
    a = adopted(tmp_path, """
        services:
          web: {build: ./app, ports: ["5000"]}
          db:
            image: postgres:16
            ports:
              - "${DB_PORT:-5432}:5432"
              - "127.0.0.1:6432:6432"
              - "0.0.0.0:7432:7432"
              - 9000
              - {target: 8000, published: 18000, protocol: udp, mode: host}
    """)
    assert a.data["services"]["db"]["ports"] == ["${DB_PORT:-5432}:5432", "127.0.0.1:6432:6432", "0.0.0.0:7432:7432",
                                                 "18000:8000/udp"]
    check_notes(a, {"db: ports ${DB_PORT:-5432}:5432", "db: ports 0.0.0.0:7432:7432",
                             "db: ports 18000:8000/udp", "db: ports 9000"})
    assert not notes_about(a, "db: ports 127.0.0.1:6432:6432")
    assert notes_about(a, "db: ports 9000: Compose publishes it on a random host port")


@pytest.mark.parametrize("first, second", [
    # environment: list or map
    ("environment: [A=1, B=x y]", "environment: {A: '1', B: x y}"),
    # env_file: string or list
    ("env_file: a.env", "env_file: [a.env]"),
    # build: string or mapping
    ("build: ./db", "build: {context: ./db}"),
    # healthcheck.test: string or CMD-SHELL list
    ("healthcheck: {test: redis-cli ping}", "healthcheck: {test: [CMD-SHELL, redis-cli ping]}"),
    # ports: short or long syntax
    ('ports: ["127.0.0.1:6379:6379"]', "ports: [{target: 6379, published: 6379, host_ip: 127.0.0.1}]"),
])
def test_both_syntaxes_give_the_same_service(tmp_path, first, second):
    def service(tag: str, syntax: str):
        a = adopted(tmp_path / tag, f"""
            services:
              web: {{build: ./app, ports: ["5000"]}}
              db:
                image: redis:7
                {syntax}
        """, files={"a.env": "A=1\n", "db/Dockerfile": "FROM x\n"})
        return a.data["services"]["db"]

    one, two = service("one", first), service("two", second)
    if "healthcheck" in first:  # the string is shell form: carried as Compose wrote it
        assert (one["healthcheck"]["test"], two["healthcheck"]["test"]) == ("redis-cli ping",
                                                                           ["CMD-SHELL", "redis-cli ping"])
    else:
        assert one == two


def test_depends_on_list_or_map_and_command_string_or_list(tmp_path):
    def backend(tag: str, deps: str):
        return adopted(tmp_path / tag, f"""
            services:
              web: {{build: ./app, ports: ["5000"], depends_on: {deps}}}
              db: {{image: "postgres:16", command: postgres -c fsync=off}}
              cache: {{image: "redis:7", command: [redis-server, --save, ""]}}
        """)

    one = backend("list", "[db, cache]")
    two = backend("map", "{db: {condition: service_healthy}, cache: {condition: service_started}}")
    assert one.data["backend"]["depends_on"] == two.data["backend"]["depends_on"] == ["db", "cache"]
    assert one.data["services"]["db"]["command"] == "postgres -c fsync=off"
    assert one.data["services"]["cache"]["command"] == ["redis-server", "--save", ""]


def test_a_service_that_depended_on_the_web_app_is_told_to_use_the_balancer(tmp_path):
    a = adopted(tmp_path, """
        services:
          web: {build: ./app, ports: ["5000"]}
          proxy: {image: "nginx:1.27", depends_on: [web], ports: ["80:80"]}
    """)
    assert notes_about(a, "proxy: depends_on web: services start before the replicas; web is replicated now: reach it "
                          "through the balancer at http://lb:80")


# --- the project ---------------------------------------------------------------------------------------------

def test_name_from_top_level_or_folder_as_a_dns_label(tmp_path):
    a = adopted(tmp_path / "a", 'name: My_Shop\n' + web('ports: ["5000"]'))
    assert a.data["name"] == "my-shop"
    assert notes_about(a, "name: My_Shop: written as my-shop")
    compose = write_project(tmp_path / "b", web('ports: ["5000"]'), folder="Shop_Front")
    assert adopt(compose, env={}).data["name"] == "shop-front"
    assert adopt(compose, env={}, name="given").data["name"] == "given"
    with pytest.raises(UsageError):
        adopt(compose, env={}, name="Not_A_Label")


def test_volumes_get_a_note_when_compose_would_have_named_them_differently(tmp_path):
    compose = write_project(tmp_path, """
        services:
          web: {build: ./app, ports: ["5000"]}
          db: {image: "postgres:16", volumes: ["pgdata:/var/lib/postgresql/data"]}
        volumes:
          pgdata:
    """, folder="shop_front")
    a = adopt(compose, env={})
    assert notes_about(a, "volumes: pgdata: Compose named them shop_front_VOLUME, scaleout's project shop-front_VOLUME")


def test_choosing_the_service(tmp_path):
    one_port = """
        services:
          app: {image: "acme/app:1", ports: ["8000:8000"]}
          db: {image: "postgres:16"}
    """
    assert adopted(tmp_path / "a", one_port, service=None).service == "app"
    with pytest.raises(UsageError) as err:
        adopted(tmp_path / "b", """
            services:
              app: {image: "acme/app:1", ports: ["8000:8000"]}
              admin: {image: "acme/admin:1", ports: ["9000:9000"]}
        """, service=None)
    assert "candidates: app (ports 8000:8000, image acme/app:1); admin (ports 9000:9000, image acme/admin:1)" \
        in str(err.value)
    with pytest.raises(UsageError) as err:
        adopted(tmp_path / "c", one_port, service="nope")
    assert "has no service 'nope' (services: app, db)" in str(err.value)


@pytest.mark.parametrize("text, env, expected", [
    ("plain", {}, "plain"),
    ("$A-${A}-${A:-d}-${A-d}", {"A": "x"}, "x-x-x-x"),
    ("${A:-d}|${A-d}", {"A": ""}, "d|"),
    ("${A:-d}|${A-d}", {}, "d|d"),
    ("${A:+alt}|${A+alt}", {"A": ""}, "|alt"),
    ("${A:-${B:-inner}}", {}, "inner"),
    ("$$A $${A} $", {"A": "x"}, "$A ${A} $"),
    ("${MISSING}", {}, ""),
])
def test_interpolate(text, env, expected):
    """A user's Compose file is read with Compose v2's whole syntax (the extended mode)."""
    assert interpolate(text, env.get, extended=True).value == expected


@pytest.mark.parametrize("text", ["${A:?set A}", "${A?}", "${A", "${1A}", "${A:x}", "${A:-${B}"])
def test_interpolate_errors(text):
    with pytest.raises(InterpolationError):
        interpolate(text, {}.get, extended=True)


def test_nested_defaults_are_bounded_not_a_recursion_error(tmp_path):
    ok = "${A:-" * MAX_NESTING + "x" + "}" * MAX_NESTING
    assert interpolate(ok, {}.get, extended=True).value == "x"
    deep = "${A:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(InterpolationError, match=f"nested deeper than {MAX_NESTING} levels"):
        interpolate(deep, {}.get, extended=True)
    compose = write_project(tmp_path, web(f'ports: ["{deep}"]'))
    r = run_cli(["init", "--from", compose.name], cwd=compose.parent)
    assert r.returncode == 2 and f"nested deeper than {MAX_NESTING} levels" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (compose.parent / "scaleout.yaml").exists()


def test_a_required_variable_in_a_value_scaleout_resolves(tmp_path):
    with pytest.raises(ConfigError) as err:
        adopted(tmp_path / "a", web('ports: ["${PORT:?set PORT in .env}"]'))
    assert "compose.yaml:4: services.web.ports.0: required variable PORT is not set: set PORT in .env" \
        in str(err.value)
    a = adopted(tmp_path / "b", web('ports: ["${PORT:?set PORT in .env}"]'), files={".env": "PORT=7070\n"})
    assert a.data["backend"]["port"] == 7070


def test_the_compose_projects_dotenv_is_read_by_the_one_dotenv_reader(tmp_path):
    """`init --from` and `up` read the same .env the same way: the strict reader, a bad line is an error."""
    p = tmp_path / ".env"
    p.write_text('# c\nA=1\nexport B="two words"\nC=\'$x\'\nD=plain # comment\n E = 5 \nF="a\\nb"\n')
    values, _ = read_dotenv(tmp_path, {}, ".env")
    assert values == {"A": "1", "B": "two words", "C": "$x", "D": "plain", "E": "5", "F": "a\nb"}
    assert read_dotenv(tmp_path / "missing", {}, "x") == ({}, [])
    a = adopted(tmp_path / "ok", web('ports: ["${PORT}"]'), files={".env": "export PORT=7070\n"})
    assert a.data["backend"]["port"] == "${PORT}"  # resolved to 7070 by validation, kept as written
    with pytest.raises(ConfigError, match=r"compose.yaml: .env:2: expected KEY=VALUE"):
        adopted(tmp_path / "bad", web('ports: ["${PORT}"]'), files={".env": "PORT=7070\nbad line\n"})


# --- the command -----------------------------------------------------------------------------------------------

def test_cli_writes_only_scaleout_yaml_and_prints_the_notes(tmp_path):
    root = fixture(tmp_path, "flask-redis")
    before = tree(root)
    r = run_cli(["init", "--from", "flask-redis/docker-compose.yml"], tmp_path)
    assert r.returncode == 0, r.stderr
    after = tree(root)
    assert set(after) - set(before) == {"scaleout.yaml"}
    assert {k: v for k, v in after.items() if k != "scaleout.yaml"} == before  # the user's files untouched
    notes = [line[len("note: "):] for line in r.stderr.splitlines() if line.startswith("note: ")]
    text = (root / "scaleout.yaml").read_text()
    assert notes and all(f"#   - {n}" in text for n in notes)
    assert "web: ports 8000:5000: the replicas are not published; the balancer listens on 127.0.0.1:8080 instead" \
        in notes
    assert "service web is the replicated backend" in r.stderr
    assert yaml.safe_load(text)["backend"]["port"] == 5000


def test_cli_refuses_to_overwrite_without_force(tmp_path):
    root = fixture(tmp_path, "flask-redis")
    (root / "scaleout.yaml").write_text("# mine\n")
    r = run_cli(["init", "--from", "docker-compose.yml"], root)
    assert r.returncode == 6 and "already exists" in r.stderr and "--force" in r.stderr
    assert "Traceback" not in r.stderr
    assert (root / "scaleout.yaml").read_text() == "# mine\n"
    r = run_cli(["init", "--from", "docker-compose.yml", "--force"], root)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((root / "scaleout.yaml").read_text())["name"] == "flask-redis"


def test_cli_dir_argument_and_project_dir_option(tmp_path):
    root = fixture(tmp_path, "express-postgres")
    r = run_cli(["-C", str(root.parent), "init", "out", "--from", "express-postgres/compose.yaml"], tmp_path / "..")
    assert r.returncode == 2, r.stderr  # out/ is not above the build folder
    assert "outside the project folder" in r.stderr and not (root.parent / "out").exists()
    r = run_cli(["-C", str(root.parent), "init", ".", "--from", "express-postgres/compose.yaml", "--service",
                 "backend"], tmp_path / "..")
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load((root.parent / "scaleout.yaml").read_text())
    assert data["backend"]["build"] == "express-postgres/backend"
    assert "note: .env: Compose read" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["init", "--from", "c.yml", "--template", "node"], "--template: not with --from"),
    (["init", "x", "--service", "web"], "--service: only with --from"),
    (["init", "--from", "c.yml", "--service", "nope"], "--service: c.yml has no service 'nope'"),
    (["init", "--from", "missing.yml"], "missing.yml: not found"),
    (["init", "--from", "c.yml", "--name", "Bad_Name"], "--name: must be a DNS label"),
])
def test_cli_usage_errors(tmp_path, args, message):
    (tmp_path / "c.yml").write_text("services:\n  web: {image: 'acme/web:1', ports: ['80']}\n")
    r = run_cli(args, tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yml"]
