"""`services:` (a database or cache beside the replicas), `backend.depends_on` and env files: parsed into
small frozen objects, every problem one `file:line: key: message`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleout.config.interpolated import Interpolated, values
from scaleout.config.load import parse_config
from scaleout.config.model import Config, Overrides
from scaleout.config.services import PortMapping, VolumeMount
from scaleout.config.values import duration_seconds as parse_duration
from scaleout.errors import ConfigError
from tests.helpers.config import problem


def args(test):
    """The values of a command or health test (each argument is value + Compose text)."""
    return None if test is None else tuple(a.value for a in test)


def parse(proj: Path, text: str, env: dict | None = None) -> Config:
    return parse_config(text, proj, env=env or {}, dotenv={})


def problems(proj: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(proj, text)
    return exc.value.problems


def svc(body: str, name: str = "db") -> str:
    """A services: block with one service whose keys are `body` (indented by the caller's newlines)."""
    return f"services:\n  {name}:\n" + "".join(f"    {line}\n" for line in body.splitlines())


# --- a whole service ---------------------------------------------------------------------------------------

def test_a_full_service(proj):
    c = parse(proj, svc(
        "build: db\n"
        "dockerfile: Dockerfile\n"
        "command: postgres -c max_connections=50\n"
        "environment:\n  POSTGRES_DB: app\n  PORT: 5432\n  DEBUG: true\n"
        "env_file: db.env\n"
        "volumes: ['pgdata:/var/lib/postgresql/data', './db:/docker-entrypoint-initdb.d:ro']\n"
        "ports: ['5432:5432']\n"
        "healthcheck:\n  test: [CMD, pg_isready, -U, app]\n  interval: 1m30s\n  timeout: 500ms\n"
        "  start_period: 10\n  retries: 5\n"
    ) + "  cache:\n    image: redis:7\n    command: [redis-server, --port, 6380]\n")
    db = c.services["db"]
    assert db.build == "db" and db.image is None and db.builds
    assert db.command == Interpolated.literal("postgres -c max_connections=50")
    assert values(db.environment) == {"POSTGRES_DB": "app", "PORT": "5432", "DEBUG": "true"}
    assert db.env_file == ("db.env",)
    assert db.volumes == (VolumeMount(kind="named", source="pgdata", target="/var/lib/postgresql/data"),
                          VolumeMount(kind="bind", source="db", target="/docker-entrypoint-initdb.d", read_only=True))
    assert db.ports == (PortMapping(host_ip=None, host_port=5432, container_port=5432, protocol="tcp"),)
    hc = db.healthcheck
    assert args(hc.test) == ("CMD", "pg_isready", "-U", "app")
    assert (hc.interval, hc.timeout, hc.start_period, hc.retries, hc.disabled) == (90.0, 0.5, 10.0, 5, False)
    assert args(c.services["cache"].command) == ("redis-server", "--port", "6380")
    assert list(c.services) == ["db", "cache"]
    assert c.backend.depends_on == ("db", "cache")  # default: every service, in file order
    assert c.named_volumes == ("pgdata",)


def test_services_are_frozen(proj):
    from pydantic import ValidationError

    c = parse(proj, svc("image: redis:7"))
    with pytest.raises(ValidationError):
        c.services["db"].image = "other"  # type: ignore[misc]


def test_image_or_build_exactly_one(proj):
    assert "set image (such as postgres:16) or build" in problems(proj, svc("command: x"))[0]
    assert "set image" in problems(proj, svc("image: redis:7\nbuild: db"))[0]
    assert "dockerfile: only with build" in problems(proj, svc("image: redis:7\ndockerfile: Other"))[0]


@pytest.mark.parametrize("body, fragment", [
    ("build: ../outside", "services.db.build: must stay inside the project folder"),
    ("build: /etc", "services.db.build: must be a relative path"),
    ("image: 'Redis:7'", "services.db.image: must be an image reference"),
    ("image: \"redis:7\\n\"", "services.db.image: must be an image reference"),
    ("image: redis:7\ncommand: []", "services.db.command: must be a string or a non-empty list"),
    ("image: redis:7\ncommand: '  '", "services.db.command: must be a non-empty command"),
    ("image: redis:7\nenvironment: [A=1, A=2]", "services.db.environment: A: set twice"),
    ("image: redis:7\nenvironment: {A: [1]}", "services.db.environment: A: value must be a string"),
    ("image: redis:7\nrestart: always", "services.db.restart: unknown key"),
    ("image: redis:7\nbuild_args: {}", "services.db.build_args: unknown key"),
])
def test_service_value_problems(proj, body, fragment):
    found = problems(proj, svc(body))
    assert any(fragment in p for p in found), found
    assert all(p.startswith("scaleout.yaml:") for p in found)


def test_build_through_a_link_out_of_the_project_is_refused(proj, tmp_path):
    (proj / "linked").symlink_to(tmp_path)
    assert "services.db.build: 'linked' points outside the project folder" in problems(proj, svc("build: linked"))[0]


# --- names ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fragment", [
    ("lb", "this name is taken: scaleout names its own services lb (the balancer) and backend (got 'lb')"),
    ("backend", "this name is taken: scaleout names its own services lb"),
    ("backend-1", "this name is taken: backend-1, backend-2, ... are the replicas (got 'backend-1')"),
    ("backend-40", "this name is taken: backend-1"),
    ("Db", "a service name is lower-case"),
    ("-db", "a service name is lower-case"),
    ("db.x", "a service name is lower-case"),
    ("d" * 64, "at most 63"),
    ("'db\\n'", "a service name is lower-case"),
])
def test_bad_service_names(proj, name, fragment):
    [msg] = problems(proj, f"services:\n  {name}:\n    image: redis:7\n")
    assert msg.startswith("scaleout.yaml:2: services.") and fragment in msg, msg


def test_each_bad_name_has_its_own_line(proj):
    found = problems(proj, "services:\n  lb:\n    image: a\n  ok:\n    image: b\n  backend-2:\n    image: c\n")
    assert [p.split(":")[1] for p in found] == ["2", "6"]
    assert "services.lb:" in found[0] and "services.backend-2:" in found[1]


def test_a_service_named_like_an_internal_field_is_shown_by_its_name(proj):
    [msg] = problems(proj, "services:\n  env_compose:\n    image: BAD\n")
    assert msg.startswith("scaleout.yaml:3: services.env_compose.image: must be an image reference")


def test_names_that_are_fine(proj):
    c = parse(proj, "services:\n  db:\n    image: a\n  redis_cache-2:\n    image: b\n  backend2:\n    image: c\n"
                    "  backends:\n    image: d\n  0cache:\n    image: e\n")
    assert list(c.services) == ["db", "redis_cache-2", "backend2", "backends", "0cache"]


# --- volumes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, mount", [
    ("data:/var/lib/data", VolumeMount(kind="named", source="data", target="/var/lib/data")),
    ("data:/var/lib/data:ro", VolumeMount(kind="named", source="data", target="/var/lib/data", read_only=True)),
    ("data:/var/lib/data:rw", VolumeMount(kind="named", source="data", target="/var/lib/data")),
    ("./db:/seed:ro", VolumeMount(kind="bind", source="db", target="/seed", read_only=True)),
    ("./db/:/seed", VolumeMount(kind="bind", source="db", target="/seed")),
    ("./:/project", VolumeMount(kind="bind", source=".", target="/project")),
    (".:/project", VolumeMount(kind="bind", source=".", target="/project")),
    ("./not/there/yet:/x", VolumeMount(kind="bind", source="not/there/yet", target="/x")),
    ("./a/./b/../c:/x", VolumeMount(kind="bind", source="a/c", target="/x")),
])
def test_volume_short_syntax(proj, entry, mount):
    c = parse(proj, svc(f"image: redis:7\nvolumes: ['{entry}']"))
    assert c.services["db"].volumes == (mount,)


@pytest.mark.parametrize("entry, fragment", [
    ("/etc:/x", "host paths outside the project are not mounted"),
    ("/var/run/docker.sock:/var/run/docker.sock", "host paths outside the project are not mounted"),
    ("~/secrets:/x", "host paths outside the project are not mounted"),
    ("../up:/x", "'..' is not allowed"),
    ("./a/../../up:/x", "'..' is not allowed"),
    ("/just/a/path", "write NAME:/path (a named volume) or ./folder:/path"),
    ("data:relative/path", "the container path must be absolute"),
    ("data:/x/../etc", "the container path must be absolute"),
    ("data:/x:ro:z", "too many ':'"),
    ("data:/x:z", "the mode must be ro or rw, not 'z' (got 'data:/x:z')"),
    ("bad name!:/x", "a volume name is letters, digits"),
    ("data:/x\\n", "the container path must be absolute"),
])
def test_bad_volumes(proj, entry, fragment):
    found = problems(proj, svc(f'image: redis:7\nvolumes: ["{entry}"]'))
    assert any(fragment in p and "services.db.volumes.0" in p for p in found), found


def test_two_volumes_at_one_target(proj):
    found = problems(proj, svc("image: redis:7\nvolumes: ['a:/data', './db:/data/']"))
    assert "two volumes are mounted at /data" in found[0]


def test_a_bind_source_linking_out_of_the_project_is_refused(proj, tmp_path):
    (proj / "out").symlink_to(tmp_path)
    found = problems(proj, svc("image: redis:7\nvolumes: ['./db:/ok', './out:/x']"))
    assert found == ["scaleout.yaml:4: services.db.volumes.1: ./out points outside the project folder"]


def test_volume_short_syntax_round_trip():
    assert VolumeMount.model_validate("./db:/seed:ro").short_syntax() == "./db:/seed:ro"
    assert VolumeMount.model_validate("data:/x").short_syntax() == "data:/x"
    assert VolumeMount.model_validate(".:/x").short_syntax() == ".:/x"


# --- ports -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, port", [
    ("5432:5432", PortMapping(host_port=5432, container_port=5432)),
    ("15432:5432/tcp", PortMapping(host_port=15432, container_port=5432)),
    ("127.0.0.1:5432:5432", PortMapping(host_ip="127.0.0.1", host_port=5432, container_port=5432)),
    ("0.0.0.0:5432:5432", PortMapping(host_ip="0.0.0.0", host_port=5432, container_port=5432)),
    ("[::1]:53:53/udp", PortMapping(host_ip="::1", host_port=53, container_port=53, protocol="udp")),
    ("::1:53:53", PortMapping(host_ip="::1", host_port=53, container_port=53)),
])
def test_port_short_syntax(proj, entry, port):
    assert parse(proj, svc(f"image: redis:7\nports: ['{entry}']")).services["db"].ports == (port,)


def test_an_unquoted_port_pair_is_not_base_60(proj):
    # YAML 1.1 reads 22:22 as 1342; the loader keeps it a string
    assert parse(proj, svc("image: redis:7\nports: [22:22]")).services["db"].ports[0].host_port == 22


@pytest.mark.parametrize("entry, fragment", [
    ("5432", "write HOST:CONTAINER or IP:HOST:CONTAINER"),
    ("70000:1", "less than or equal to 65535"),
    ("0:1", "greater than or equal to 1"),
    ("a:b", "the host port must be a number"),
    ("8000-8010:8000-8010", "ranges are not supported"),
    ("5432:5432/sctp", "the protocol must be tcp or udp"),
    ("localhost:5432:5432", "'localhost' is not an IP address"),
    ("5432:5432\\n", "the container port must be a number"),
])
def test_bad_ports(proj, entry, fragment):
    found = problems(proj, svc(f'image: redis:7\nports: ["{entry}"]'))
    assert any(fragment in p and "services.db.ports.0" in p for p in found), found


def test_an_integer_port_is_refused_with_the_form_to_write(proj):
    found = problems(proj, svc("image: redis:7\nports: [5432]"))
    assert 'write "HOST:CONTAINER" (e.g. "5432:5432"), quoted' in found[0]


def test_ports_without_an_address_follow_balancer_bind():
    p = PortMapping.model_validate("5432:5432")
    assert p.host_ip is None
    assert p.short_syntax("127.0.0.1") == "127.0.0.1:5432:5432/tcp"
    assert p.short_syntax("::1") == "[::1]:5432:5432/tcp"
    assert PortMapping.model_validate("0.0.0.0:1:2/udp").short_syntax("127.0.0.1") == "0.0.0.0:1:2/udp"


@pytest.mark.parametrize("text, fragment", [
    (svc("image: a\nports: ['8080:80']"), "host port 8080/tcp is already published by balancer.port"),
    (svc("image: a\nports: ['5432:5432', '127.0.0.1:5432:1']"), "already published by services.db.ports.0"),
    (svc("image: a\nports: ['5432:5432']") + "  other:\n    image: b\n    ports: ['0.0.0.0:5432:5432']\n",
     "services.other.ports.0: host port 5432/tcp is already published by services.db.ports.0"),
])
def test_host_port_collisions(proj, text, fragment):
    assert any(fragment in p for p in problems(proj, text))


def test_ports_that_do_not_collide(proj):
    c = parse(proj, svc("image: a\nports: ['5432:5432', '5432:5432/udp', '127.0.0.2:5432:5432', '8081:80']"))
    assert len(c.services["db"].ports) == 4


# --- health checks -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, test, disabled", [
    ("test: pg_isready", ("CMD-SHELL", "pg_isready"), False),
    ("test: [CMD, redis-cli, ping]", ("CMD", "redis-cli", "ping"), False),
    ("test: [CMD-SHELL, 'redis-cli ping || exit 1']", ("CMD-SHELL", "redis-cli ping || exit 1"), False),
    ("test: [NONE]", ("NONE",), True),
    ("disable: true", None, True),
])
def test_healthcheck_forms(proj, body, test, disabled):
    hc = parse(proj, svc("image: a\nhealthcheck:\n" + "".join(f"  {x}\n" for x in body.splitlines()))).services["db"]
    assert args(hc.healthcheck.test) == test and hc.healthcheck.disabled is disabled


@pytest.mark.parametrize("body, fragment", [
    ("test: [CMD]", 'must start with "CMD"'),
    ("test: [CMD-SHELL, a, b]", 'must start with "CMD"'),
    ("test: [RUN, x]", 'must start with "CMD"'),
    ("test: []", "must be a string, or a list"),
    ("test: [CMD, 1]", "must be a string, or a list"),
    ("test: x\ndisable: true", "disable: true and a test cannot both be set"),
    ("interval: 5", None),
    ("interval: '5'", "must be a duration such as 5s"),
    ("interval: 1d", "must be a duration such as 5s"),
    ("interval: 0s", "must be between 0.001s and 24h"),
    ("timeout: 25h", "must be between 0.001s and 24h"),
    ("retries: -1", "healthcheck.retries"),
    ("start_interval: 1s", "healthcheck.start_interval: unknown key"),
])
def test_healthcheck_problems(proj, body, fragment):
    text = svc("image: a\nhealthcheck:\n" + "".join(f"  {x}\n" for x in body.splitlines()))
    if fragment is None:
        assert parse(proj, text).services["db"].healthcheck.interval == 5.0
        return
    found = problems(proj, text)
    assert any(fragment in p and "services.db.healthcheck" in p for p in found), found


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1.5s", 1.5),
                                           ("2m0s", 120), ("100us", 0.0001)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


# --- depends_on ---------------------------------------------------------------------------------------------------

def test_depends_on(proj):
    two = "services:\n  db:\n    image: a\n  cache:\n    image: b\n"
    assert parse(proj, two).backend.depends_on == ("db", "cache")
    assert parse(proj, "backend:\n  depends_on: [cache]\n" + two).backend.depends_on == ("cache",)
    assert parse(proj, "backend:\n  depends_on: []\n" + two).backend.depends_on == ()
    assert parse(proj, "").backend.depends_on == ()
    found = problems(proj, "backend:\n  depends_on: [db, nope]\n" + two)
    assert found == ["scaleout.yaml:2: backend.depends_on.1: 'nope' is not a service under services: (db, cache)"]
    assert "repeated: db" in problems(proj, "backend:\n  depends_on: [db, db]\n" + two)[0]
    assert "none are defined" in problems(proj, "backend:\n  depends_on: [db]\n")[0]


# --- env files ---------------------------------------------------------------------------------------------------

def test_env_files(proj):
    c = parse(proj, "backend:\n  env_file: app.env\n" + svc("image: a\nenv_file: [db.env, app.env]"))
    assert c.backend.env_file == ("app.env",) and c.services["db"].env_file == ("db.env", "app.env")


@pytest.mark.parametrize("value, fragment", [
    ("missing.env", "backend.env_file.0: missing.env: the file does not exist"),
    ("/etc/passwd", "backend.env_file: '/etc/passwd': must be a relative path"),
    ("../x.env", "backend.env_file: '../x.env': must stay inside the project"),
    ("db", "backend.env_file.0: db: is not a regular file"),
    ("[app.env, app.env]", "backend.env_file: each file may appear once"),
])
def test_bad_env_files(proj, value, fragment):
    found = problems(proj, f"backend:\n  env_file: {value}\n")
    assert any(fragment in p for p in found), found
    assert all(p.startswith("scaleout.yaml:2:") for p in found), found


def test_env_file_links_and_fifos(proj, tmp_path):
    (tmp_path / "outside.env").write_text("A=1\n")
    (proj / "out.env").symlink_to(tmp_path / "outside.env")
    (proj / "in.env").symlink_to("app.env")
    os.mkfifo(proj / "pipe.env")
    assert parse(proj, "backend:\n  env_file: in.env\n").backend.env_file == ("in.env",)
    assert "leads outside the project folder" in problems(proj, "backend:\n  env_file: out.env\n")[0]
    assert "is not a regular file" in problems(proj, "backend:\n  env_file: pipe.env\n")[0]
    found = problems(proj, svc("image: a\nenv_file: [db.env, nope.env]"))
    assert found == ["scaleout.yaml:4: services.db.env_file.1: nope.env: the file does not exist "
                     "(create it, or remove it from env_file)"]


# --- round trips and random input ------------------------------------------------------------------------------------

def test_overrides_keep_services(proj):
    c = parse(proj, svc("build: db\nvolumes: ['d:/x', './db:/y:ro']\nports: ['5432:5432']\n"
                        "healthcheck: {test: x, interval: 2s}\ncommand: [a, b]\nenvironment: [A=1]"))
    o = c.with_overrides(Overrides(replicas=4, strategy="least_conn"))
    assert o.services == c.services and o.backend.depends_on == ("db",) and o.backend.replicas == 4


scalar = st.one_of(st.sampled_from(["redis:7", "./db:/x", "d:/x", "5432:5432", "db", "", "$", "${X}", "lb",
                                    "CMD", "5s", "/etc:/x", "a=b", "0.0.0.0:1:2"]),
                   st.integers(-2, 70000), st.booleans(), st.none(), st.text(max_size=8))
service = st.fixed_dictionaries({}, optional={
    "image": scalar, "build": scalar, "dockerfile": scalar, "command": st.one_of(scalar, st.lists(scalar, max_size=3)),
    "environment": st.one_of(scalar, st.lists(scalar, max_size=3),
                             st.dictionaries(st.sampled_from(["A", "B c", "_X"]), scalar, max_size=2)),
    "env_file": st.one_of(scalar, st.lists(scalar, max_size=2)),
    "volumes": st.one_of(scalar, st.lists(scalar, max_size=3)),
    "ports": st.one_of(scalar, st.lists(scalar, max_size=3)),
    "healthcheck": st.one_of(scalar, st.fixed_dictionaries({}, optional={
        "test": st.one_of(scalar, st.lists(scalar, max_size=3)), "interval": scalar, "retries": scalar,
        "disable": scalar})),
})
services = st.dictionaries(st.one_of(st.sampled_from(["db", "lb", "backend-1", "cache", "Bad"]), st.text(max_size=5)),
                           st.one_of(service, scalar), max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(services, st.one_of(st.none(), st.lists(st.sampled_from(["db", "cache", "x"]), max_size=3)))
def test_random_services_give_a_config_or_a_config_error(proj, data, depends_on):
    doc: dict = {"services": data}
    if depends_on is not None:
        doc["backend"] = {"depends_on": depends_on}
    try:
        c = parse(proj, yaml.safe_dump(doc))
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("scaleout.yaml") for p in exc.problems), exc.problems
    else:
        assert set(c.backend.depends_on) <= set(c.services)
        assert c.with_overrides(Overrides(replicas=2)).services == c.services


# --- validation messages word for word (each pins a rule whose message or boundary could change unnoticed) ---

SERVICE_PROBLEMS = [
    (
        "image: pg\nvolumes: ['data']",
        'scaleout.yaml:4: services.db.volumes.0: write NAME:/path (a named volume) or'
        " ./folder:/path (a project folder) (got 'data')",
    ),
    (
        "image: pg\nvolumes: ['a:/b:ro:x']",
        "scaleout.yaml:4: services.db.volumes.0: too many ':' (the form is SOURCE:/path[:ro])"
        " (got 'a:/b:ro:x')",
    ),
    (
        "image: pg\nvolumes: ['a:/b:rx']",
        "scaleout.yaml:4: services.db.volumes.0: the mode must be ro or rw, not 'rx' (got"
        " 'a:/b:rx')",
    ),
    (
        "image: pg\nvolumes: ['/etc:/b']",
        'scaleout.yaml:4: services.db.volumes.0: host paths outside the project are not'
        ' mounted; use a project folder (./folder:/path) or a named volume (name:/path) (got'
        " '/etc:/b')",
    ),
    (
        "image: pg\nvolumes: ['~/x:/b']",
        'scaleout.yaml:4: services.db.volumes.0: host paths outside the project are not'
        ' mounted; use a project folder (./folder:/path) or a named volume (name:/path) (got'
        " '~/x:/b')",
    ),
    (
        "image: pg\nvolumes: ['bad name:/b']",
        "scaleout.yaml:4: services.db.volumes.0: a volume name is letters, digits, '_', '.'"
        " and '-' (a project folder starts with ./) (got 'bad name:/b')",
    ),
    (
        'image: pg\nvolumes:'
        " ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:/b']",
        "scaleout.yaml:4: services.db.volumes.0: a volume name is letters, digits, '_', '.'"
        " and '-' (a project folder starts with ./) (got"
        " 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...)",
    ),
    (
        "image: pg\nvolumes: ['data:rel/path']",
        'scaleout.yaml:4: services.db.volumes.0: the container path must be absolute, such as'
        " /var/lib/data (letters, digits, . _ - / only) (got 'data:rel/path')",
    ),
    (
        "image: pg\nvolumes: ['data:/a/../b']",
        'scaleout.yaml:4: services.db.volumes.0: the container path must be absolute, such as'
        " /var/lib/data (letters, digits, . _ - / only) (got 'data:/a/../b')",
    ),
    (
        "image: pg\nvolumes: ['data:/x/', 'other:/x']",
        'scaleout.yaml:4: services.db.volumes: two volumes are mounted at /x',
    ),
    (
        "image: pg\nvolumes: ['data:/', 'other:/']",
        'scaleout.yaml:4: services.db.volumes: two volumes are mounted at /',
    ),
    (
        'image: pg\nports: [5432]',
        'scaleout.yaml:4: services.db.ports.0: write "HOST:CONTAINER" (e.g. "5432:5432"),'
        ' quoted (got 5432)',
    ),
    (
        "image: pg\nports: ['5432:5432/sctp']",
        'scaleout.yaml:4: services.db.ports.0: the protocol must be tcp or udp (got'
        " '5432:5432/sctp')",
    ),
    (
        "image: pg\nports: ['5432']",
        'scaleout.yaml:4: services.db.ports.0: write HOST:CONTAINER or IP:HOST:CONTAINER,'
        ' e.g. "5432:5432" (got \'5432\')',
    ),
    (
        "image: pg\nports: ['1.2.3:5432:5432']",
        "scaleout.yaml:4: services.db.ports.0: '1.2.3' is not an IP address (got"
        " '1.2.3:5432:5432')",
    ),
    (
        "image: pg\nports: ['x:5432']",
        'scaleout.yaml:4: services.db.ports.0: the host port must be a number (ranges are not'
        " supported) (got 'x:5432')",
    ),
    (
        "image: pg\nports: ['5432:y']",
        'scaleout.yaml:4: services.db.ports.0: the container port must be a number (ranges'
        " are not supported) (got '5432:y')",
    ),
    (
        "image: pg\nports: ['123456:1']",
        'scaleout.yaml:4: services.db.ports.0: the host port must be a number (ranges are not'
        " supported) (got '123456:1')",
    ),
    (
        "image: pg\nports: ['５:1']",
        'scaleout.yaml:4: services.db.ports.0: the host port must be a number (ranges are not'
        " supported) (got '５:1')",
    ),
    (
        'image: pg\nports: [{host_ip: nope, host_port: 1, container_port: 2}]',
        "scaleout.yaml:4: services.db.ports.0.host_ip: must be an IP address (got 'nope')",
    ),
    (
        "image: pg\nhealthcheck: {test: ''}",
        "scaleout.yaml:4: services.db.healthcheck.test: must be a non-empty command (got '')",
    ),
    (
        'image: pg\nhealthcheck: {test: []}',
        'scaleout.yaml:4: services.db.healthcheck.test: must be a string, or a list such as'
        ' ["CMD", "pg_isready"] or ["CMD-SHELL", "..."]',
    ),
    (
        'image: pg\nhealthcheck: {test: [CMD]}',
        'scaleout.yaml:4: services.db.healthcheck.test: must start with "CMD" (then the'
        ' program and its arguments), "CMD-SHELL" (then one shell command) or be ["NONE"]',
    ),
    (
        'image: pg\nhealthcheck: {test: [CMD-SHELL, a, b]}',
        'scaleout.yaml:4: services.db.healthcheck.test: must start with "CMD" (then the'
        ' program and its arguments), "CMD-SHELL" (then one shell command) or be ["NONE"]',
    ),
    (
        'image: pg\nhealthcheck: {test: [NONE, x]}',
        'scaleout.yaml:4: services.db.healthcheck.test: must start with "CMD" (then the'
        ' program and its arguments), "CMD-SHELL" (then one shell command) or be ["NONE"]',
    ),
    (
        'image: pg\nhealthcheck: {test: [1]}',
        'scaleout.yaml:4: services.db.healthcheck.test: must be a string, or a list such as'
        ' ["CMD", "pg_isready"] or ["CMD-SHELL", "..."]',
    ),
    (
        'image: pg\nhealthcheck: {test: [CMD, x], disable: true}',
        'scaleout.yaml:4: services.db.healthcheck: disable: true and a test cannot both be'
        ' set (remove one)',
    ),
    (
        'image: pg\nhealthcheck: {interval: 0s}',
        'scaleout.yaml:4: services.db.healthcheck.interval: must be between 0.001s and 24h'
        " (got '0s')",
    ),
    (
        'image: pg\nhealthcheck: {interval: 0.0005}',
        'scaleout.yaml:4: services.db.healthcheck.interval: must be between 0.001s and 24h'
        ' (got 0.0005)',
    ),
    (
        'image: pg\nhealthcheck: {start_period: -1}',
        'scaleout.yaml:4: services.db.healthcheck.start_period: must be between 0s and 24h'
        ' (got -1)',
    ),
    (
        'image: pg\nhealthcheck: {timeout: 25h}',
        'scaleout.yaml:4: services.db.healthcheck.timeout: must be between 0.001s and 24h'
        " (got '25h')",
    ),
    (
        'image: pg\nhealthcheck: {timeout: 5 seconds}',
        'scaleout.yaml:4: services.db.healthcheck.timeout: must be a duration such as 5s,'
        " 1m30s or 500ms (units: ns us ms s m h), or seconds (got '5 seconds')",
    ),
    (
        'image: pg\nhealthcheck: {timeout: true}',
        'scaleout.yaml:4: services.db.healthcheck.timeout: must be a duration such as 5s,'
        ' 1m30s or 500ms (units: ns us ms s m h), or seconds (got True)',
    ),
    (
        'image: pg\nhealthcheck: {retries: 1001}',
        'scaleout.yaml:4: services.db.healthcheck.retries: input should be less than or equal'
        ' to 1000 (got 1001)',
    ),
    (
        "image: pg\ncommand: ''",
        "scaleout.yaml:4: services.db.command: must be a non-empty command (got '')",
    ),
    (
        'image: pg\ncommand: []',
        'scaleout.yaml:4: services.db.command: must be a string or a non-empty list of'
        ' strings',
    ),
    (
        'image: pg\ncommand: [run, true]',
        'scaleout.yaml:4: services.db.command: item 1: must be a string',
    ),
    (
        'image: pg\ncommand: {a: b}',
        'scaleout.yaml:4: services.db.command: must be a string or a non-empty list of'
        ' strings',
    ),
    (
        'image: pg\nenvironment: [A]',
        'scaleout.yaml:4: services.db.environment: item 0: must be "KEY=VALUE" (to pass a'
        ' variable from the shell, write KEY=${KEY})',
    ),
    (
        'image: pg\nenvironment: [A=1, A=2]',
        'scaleout.yaml:4: services.db.environment: A: set twice',
    ),
    (
        'image: pg\nenvironment: {1A: x}',
        "scaleout.yaml:4: services.db.environment: variable name '1A' must match"
        ' [A-Za-z_][A-Za-z0-9_]*',
    ),
    (
        'image: pg\nenvironment: {A: [x]}',
        'scaleout.yaml:4: services.db.environment: A: value must be a string, number or'
        ' boolean (to pass a variable from the shell, write ${A})',
    ),
    (
        'image: pg\nenvironment: {A: "a\\nb"}',
        'scaleout.yaml:4: services.db.environment: A: value must not contain newlines or'
        ' control characters',
    ),
    (
        'image: pg\nenv_file: [1]',
        'scaleout.yaml:4: services.db.env_file: item 0: must be a path',
    ),
    (
        "image: pg\nenv_file: ['../x']",
        "scaleout.yaml:4: services.db.env_file: '../x': must stay inside the project folder"
        " ('..' is not allowed)",
    ),
    (
        "image: pg\nenv_file: ['ok.env', 'ok.env']",
        'scaleout.yaml:4: services.db.env_file: each file may appear once',
    ),
    (
        'image: pg\nenv_file: {a: b}',
        'scaleout.yaml:4: services.db.env_file: input should be a valid tuple',
    ),
    (
        "image: 'Bad Image'",
        'scaleout.yaml:3: services.db.image: must be an image reference such as nginx:1.27 or'
        " registry.example.com/team/app:tag (got 'Bad Image')",
    ),
    (
        'build: ../x',
        "scaleout.yaml:3: services.db.build: must stay inside the project folder ('..' is not"
        " allowed) (got '../x')",
    ),
    (
        'build: a/../../x',
        "scaleout.yaml:3: services.db.build: must stay inside the project folder ('..' is not"
        " allowed) (got 'a/../../x')",
    ),
    (
        'image: pg\nbuild: x',
        'scaleout.yaml:2: services.db: set image (such as postgres:16) or build (a folder'
        ' with a Dockerfile), one of them',
    ),
    (
        'dockerfile: D',
        'scaleout.yaml:2: services.db: set image (such as postgres:16) or build (a folder'
        ' with a Dockerfile), one of them',
    ),
    (
        'image: pg\ndockerfile: D',
        'scaleout.yaml:2: services.db: dockerfile: only with build',
    ),
]


@pytest.mark.parametrize("body, message", SERVICE_PROBLEMS)
def test_service_problem_messages(proj, body, message):
    assert problem(proj, svc(body)) == message


def test_service_values_at_their_limits_are_accepted(proj):
    def service(body: str):
        return parse_config(svc(body), proj, env={}).services["db"]

    name64 = "a" * 64
    (mount,) = service(f"image: pg\nvolumes: ['{name64}:/b:ro']").volumes
    assert (mount.kind, mount.source, mount.target, mount.read_only) == ("named", name64, "/b", True)
    here = service("image: pg\nvolumes: ['./:/x', '.:/y:rw']").volumes
    assert [(m.kind, m.source, m.read_only) for m in here] == [("bind", ".", False), ("bind", ".", False)]
    assert [m.short_syntax() for m in here] == [".:/x", ".:/y"]
    (port,) = service("image: pg\nports: ['[::1]:5432:5433/udp']").ports
    assert (port.host_ip, port.host_port, port.container_port, port.protocol) == ("::1", 5432, 5433, "udp")
    (port,) = service("image: pg\nports: [{host_ip: '::0001', host_port: 1, container_port: 2}]").ports
    assert port.host_ip == "::1" and port.short_syntax("127.0.0.1") == "[::1]:1:2/tcp"
    (port,) = service("image: pg\nports: ['7:8']").ports
    assert port.host_ip is None and port.short_syntax("::1") == "[::1]:7:8/tcp"
    check = service("image: pg\nhealthcheck: {test: [NONE], disable: true}").healthcheck
    assert check.disabled and args(check.test) == ("NONE",)
    check = service("image: pg\nhealthcheck: {interval: 1ms, start_period: 0, timeout: 24h}").healthcheck
    assert (check.interval, check.start_period, check.timeout) == (0.001, 0.0, 86400.0)
    assert not check.disabled
    assert args(service("image: pg\ncommand: [run, 1, 2.5]").command) == ("run", "1", "2.5")
    env = service("image: pg\nenvironment: {A: true, B: false, C: 1.5, D: 2, E: \"a\\tb\"}").environment
    assert values(env) == {"A": "true", "B": "false", "C": "1.5", "D": "2", "E": "a\tb"}
    assert service("image: pg\nenv_file: ok.env").env_file == ("ok.env",)


def test_an_environment_list_splits_at_the_first_equals_sign(proj):
    c = parse_config(svc("image: pg\nenvironment: ['A=b=c', 'B=']"), proj, env={})
    assert c.services["db"].environment == {"A": Interpolated("b=c", "b=c"), "B": Interpolated("", "")}
    c = parse_config(svc("image: pg\nenvironment: ['A=${X}=$$c']"), proj, env={"X": "x"})
    assert c.services["db"].environment == {"A": Interpolated("x=$c", "${X}=$$c")}
    with pytest.raises(ConfigError, match=r"item 0: the variable name must be written as itself"):
        parse_config(svc("image: pg\nenvironment: ['${X}A=b']"), proj, env={"X": "x"})


def test_a_value_from_the_shell_may_hold_a_newline_but_not_the_compose_text(proj):
    c = parse_config(svc("image: pg\nenvironment: {A: '${X}'}") + "backend:\n  env: {B: '${X}'}\n", proj,
                     env={"X": "line 1\nline 2"})
    assert c.services["db"].environment == {"A": Interpolated("line 1\nline 2", "${X}")}
    assert c.backend.env == {"B": Interpolated("line 1\nline 2", "${X}")}


@pytest.mark.parametrize(
    "body, message",
    [
        ('image: pg\nports: ["1:2/x/tcp"]', "services.db.ports.0: the container port must be a number (ranges are "
         "not supported) (got '1:2/x/tcp')"),
        ('image: pg\nports: ["[::1:5432:5432"]', "services.db.ports.0: '[::1' is not an IP address (got "
         "'[::1:5432:5432')"),
        ('image: pg\nvolumes: ["..:/x"]', "services.db.volumes.0: must stay inside the project folder ('..' is not "
         "allowed) (got '..:/x')"),
        ('image: pg\nvolumes: ["a:/x", "b:/x", "c:/y", "d:/y/"]', "services.db.volumes: two volumes are mounted at "
         "/x, /y"),
        ('image: pg\ncommand: "a\\0b"', "services.db.command: must be a non-empty command (got 'a\\x00b')"),
        ('image: pg\ncommand: ["a\\0b"]', "services.db.command: item 0: must be a string"),
        ('image: pg\nhealthcheck: {test: "a\\0b"}', "services.db.healthcheck.test: must be a non-empty command (got "
         "'a\\x00b')"),
        ('image: pg\nhealthcheck: {test: [CMD, "a\\0b"]}', "services.db.healthcheck.test: must not contain a NUL "
         "character"),
        ('image: pg\nenvironment: {A: "a\\0b"}', "services.db.environment: A: value must not contain a NUL character"),
    ],
)
def test_more_service_problem_messages(proj, body, message):
    assert problem(proj, svc(body)).splitlines()[0] == f"scaleout.yaml:4: {message}"


@pytest.mark.parametrize(
    "name, message",
    [
        ("lb", "this name is taken: scaleout names its own services lb (the balancer) and backend (got 'lb')"),
        ("backend",
         "this name is taken: scaleout names its own services lb (the balancer) and backend (got 'backend')"),
        ("backend-3", "this name is taken: backend-1, backend-2, ... are the replicas (got 'backend-3')"),
        ("Bad", "a service name is lower-case letters, digits, '_' and '-', starting with a letter or digit, at most "
         "63 characters (got 'Bad')"),
        ("a" * 64, "a service name is lower-case letters, digits, '_' and '-', starting with a letter or digit, at "
         "most 63 characters (got 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...)"),
    ],
)
def test_service_name_messages(proj, name, message):
    assert problem(proj, f"services:\n  {name}:\n    image: pg\n") == f"scaleout.yaml:2: services.{name}: {message}"


def test_service_values_that_look_close_to_a_rule_are_accepted(proj):
    name = "a" * 63
    c = parse_config(f"services:\n  {name}:\n    image: pg\n    volumes: ['a:/dataX', 'b:/data']\n"
                     "    environment: {A: 'a b'}\n", proj, env={})
    s = c.services[name]
    assert [m.target for m in s.volumes] == ["/dataX", "/data"]
    assert s.environment == {"A": Interpolated("a b", "a b")}


def test_service_models_built_in_code():
    from pydantic import ValidationError

    from scaleout.config.services import Healthcheck, ServiceConfig

    check = Healthcheck(test="pg_isready -h $HOST")
    assert check.test == (Interpolated("CMD-SHELL", "CMD-SHELL"),
                          Interpolated("pg_isready -h $HOST", "pg_isready -h $$HOST"))
    assert Healthcheck(test=None).test is None
    assert ServiceConfig(image="pg", command="run $X").command == Interpolated("run $X", "run $$X")
    kept = ServiceConfig(image="pg", command=[Interpolated("a", "${A}"), 1])
    assert kept.command == (Interpolated("a", "${A}"), Interpolated("1", "1"))
    for field in ("environment_compose", "command_compose"):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            ServiceConfig(image="pg", **{field: {"A": "1"}})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Healthcheck(test_compose=["CMD", "x"])
    with pytest.raises(ValidationError, match="A: value must not contain a NUL character"):
        ServiceConfig(image="pg", environment={"A": "a\0b"})


def test_service_compose_text_of_a_model_built_in_code():
    from pydantic import ValidationError

    from scaleout.config.services import ServiceConfig

    s = ServiceConfig(image="pg", environment={"A": "x$y", "B": 2}, command=["run", "$X", 3])
    assert s.environment == {"A": Interpolated("x$y", "x$$y"), "B": Interpolated("2", "2")}
    assert s.command == (Interpolated("run", "run"), Interpolated("$X", "$$X"), Interpolated("3", "3"))
    s = ServiceConfig(image="pg", environment=["A=$1"], command=None)
    assert s.environment == {"A": Interpolated("$1", "$$1")} and s.command is None
    kept = ServiceConfig(image="pg", environment={"A": Interpolated("$x", "${X}")})
    assert kept.environment == {"A": Interpolated("$x", "${X}")}
    # a dump keeps the Compose text (Config.with_overrides re-validates one)
    assert ServiceConfig.model_validate(kept.model_dump(exclude_unset=True)).environment == kept.environment
    with pytest.raises(ValidationError, match="valid dictionary"):
        ServiceConfig(image="pg", environment="A=1")
    with pytest.raises(ValidationError, match="valid dictionary or instance of ServiceConfig"):
        ServiceConfig.model_validate("pg")


def test_interpolation_problems_name_the_list_item_and_every_internal_key(proj):
    assert problem(proj, svc('image: pg\ncommand: [run, "${"]')) == (
        "scaleout.yaml:4: services.db.command.1: '${': '${' is never closed with '}' (write $$ for a literal $)")
    assert problem(proj, "backend:\n  env_compose: {}\n  health:\n    command_compose: x") == (
        "scaleout.yaml:4: backend.health.command_compose: unknown key\n"
        "scaleout.yaml:2: backend.env_compose: unknown key")
