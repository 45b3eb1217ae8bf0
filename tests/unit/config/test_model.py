"""scaleout.yaml validation: good configs become a Config, bad ones one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.interpolated import Interpolated
from scaleout.config.load import load_config, parse_config
from scaleout.config.model import Overrides, default_name
from scaleout.config.sections import MAX_REPLICAS
from scaleout.errors import ConfigError, UsageError
from tests.helpers.config import problem

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


# --- validation messages word for word (each pins a rule whose message or boundary could change unnoticed) ---

CONFIG_PROBLEMS = [
    (
        'backend:\n  health:\n    path: healthz',
        'scaleout.yaml:3: backend.health.path: must be a URL path such as /healthz (letters,'
        " digits, . _ ~ / - only; no '.', '..' or empty segment) (got 'healthz')",
    ),
    (
        'backend:\n  health:\n    path: /a/../b',
        'scaleout.yaml:3: backend.health.path: must be a URL path such as /healthz (letters,'
        " digits, . _ ~ / - only; no '.', '..' or empty segment) (got '/a/../b')",
    ),
    (
        'backend:\n  health:\n    path: /a//b',
        'scaleout.yaml:3: backend.health.path: must be a URL path such as /healthz (letters,'
        " digits, . _ ~ / - only; no '.', '..' or empty segment) (got '/a//b')",
    ),
    (
        'backend:\n  health:\n    path: /a/./b',
        'scaleout.yaml:3: backend.health.path: must be a URL path such as /healthz (letters,'
        " digits, . _ ~ / - only; no '.', '..' or empty segment) (got '/a/./b')",
    ),
    (
        "backend:\n  health:\n    command: '  '",
        'scaleout.yaml:3: backend.health.command: must be a non-empty, single-line shell'
        " command (got '  ')",
    ),
    (
        'backend:\n  health:\n    command: "a\\rb"',
        'scaleout.yaml:3: backend.health.command: must be a non-empty, single-line shell'
        " command (got 'a\\rb')",
    ),
    (
        'backend:\n  limits:\n    memory: 5m',
        "scaleout.yaml:3: backend.limits.memory: must be at least 6m (Docker's minimum) (got"
        " '5m')",
    ),
    (
        'backend:\n  limits:\n    memory: 1k',
        'scaleout.yaml:3: backend.limits.memory: must be a size such as 256m or 1g (at least'
        " 6m) (got '1k')",
    ),
    (
        'backend:\n  limits:\n    pids: 15',
        'scaleout.yaml:3: backend.limits.pids: input should be greater than or equal to 16'
        ' (got 15)',
    ),
    (
        'backend:\n  weights: {backend-1: 0}',
        'scaleout.yaml:2: backend.weights: backend-1: weight must be between 1 and 100 (got'
        ' 0)',
    ),
    (
        'backend:\n  weights: {backend-1: 101}',
        'scaleout.yaml:2: backend.weights: backend-1: weight must be between 1 and 100 (got'
        ' 101)',
    ),
    (
        'backend:\n  weights: {web: 3}',
        "scaleout.yaml:2: backend.weights: 'web' is not a replica name (backend-1, backend-2,"
        ' ...)',
    ),
    (
        'backend:\n  backup: [web]',
        "scaleout.yaml:2: backend.backup: 'web' is not a replica name (backend-1, backend-2,"
        ' ...)',
    ),
    (
        'backend:\n  backup: [backend-1, backend-2, backend-3]',
        'scaleout.yaml:2: backend.backup: with 3 replica(s) every one would be a backup;'
        ' nginx needs at least one primary replica',
    ),
    (
        'backend:\n  backup: [backend-3]\nbalancer:\n  strategy: hash',
        'scaleout.yaml:2: backend.backup: backup replicas cannot be combined with strategy'
        ' hash (nginx forbids it)',
    ),
    (
        'backend:\n  backup: [backend-3]\nbalancer:\n  strategy: ip_hash',
        'scaleout.yaml:2: backend.backup: backup replicas cannot be combined with strategy'
        ' ip_hash (nginx forbids it)',
    ),
    (
        'backend:\n  backup: [backend-3]\nbalancer:\n  strategy: random',
        'scaleout.yaml:2: backend.backup: backup replicas cannot be combined with strategy'
        ' random (nginx forbids it)',
    ),
    (
        'backend:\n  image: x\n  build: y',
        'scaleout.yaml:1: backend: set either build (a folder with a Dockerfile) or image,'
        ' not both',
    ),
    (
        'backend:\n  depends_on: [db, db]',
        'scaleout.yaml:2: backend.depends_on: each service may appear once (repeated: db)',
    ),
    (
        'backend:\n  depends_on: [cache]',
        "scaleout.yaml:2: backend.depends_on.0: 'cache' is not a service under services:"
        ' (none are defined)',
    ),
    (
        'backend:\n  depends_on: [cache]\nservices:\n  db: {image: pg}',
        "scaleout.yaml:2: backend.depends_on.0: 'cache' is not a service under services: (db)",
    ),
    (
        'balancer:\n  tls: maybe',
        "scaleout.yaml:2: balancer.tls: must be `local` (a certificate from scaleout's local"
        ' certificate authority), a mapping {cert: PATH, key: PATH} of your own files, or'
        " false (got 'maybe')",
    ),
    (
        'balancer:\n  tls: {cert: a.pem}',
        'scaleout.yaml:2: balancer.tls: key missing: give both cert and key (paths in the'
        ' project)',
    ),
    (
        'balancer:\n  tls: {key: a.pem}',
        'scaleout.yaml:2: balancer.tls: cert missing: give both cert and key (paths in the'
        ' project)',
    ),
    (
        'balancer:\n  tls: {cert: a.pem, key: b.pem, ca: c}',
        'scaleout.yaml:2: balancer.tls: unknown key(s) ca: a mapping takes cert and key only',
    ),
    (
        'balancer:\n  tls: {cert: 1, key: b.pem}',
        'scaleout.yaml:2: balancer.tls: cert: must be a path in the project, such as'
        ' certs/dev.pem',
    ),
    (
        'balancer:\n  tls: {cert: a.pem, key: ../b.pem}',
        "scaleout.yaml:2: balancer.tls: key: must stay inside the project folder ('..' is not"
        " allowed) (got '../b.pem')",
    ),
    (
        'balancer:\n  tls: {cert: .scaleout/a.pem, key: b.pem}',
        "scaleout.yaml:2: balancer.tls: cert: .scaleout/ holds scaleout's generated files;"
        ' keep your own certificate elsewhere',
    ),
    (
        'balancer:\n  tls: {cert: a.pem, key: a.pem}',
        'scaleout.yaml:2: balancer.tls: cert and key must be two files',
    ),
    (
        'balancer:\n  tls_names: [app.test]',
        'scaleout.yaml:2: balancer.tls_names: only with balancer.tls: local (your own'
        ' certificate names its hosts itself)',
    ),
    (
        'balancer:\n  tls: local\n  tls_names: app.test',
        'scaleout.yaml:3: balancer.tls_names: must be a list of host names or IP addresses,'
        " such as [app.test] (got 'app.test')",
    ),
    (
        'balancer:\n  tls: local\n  tls_names: [0.0.0.0]',
        'scaleout.yaml:3: balancer.tls_names: 0.0.0.0 is not an address a browser connects to',
    ),
    (
        'balancer:\n  tls: local\n  tls_names: [1]',
        'scaleout.yaml:3: balancer.tls_names: 1 is not a host name',
    ),
    (
        'balancer:\n  tls: local\n  tls_names: [App.test]',
        "scaleout.yaml:3: balancer.tls_names: 'App.test' must be a lower-case host name (a-z"
        ' 0-9 - and dots; *.name for a wildcard) or an IP address',
    ),
    (
        'balancer:\n  tls: local\n  tls_names: [1.2.3]',
        "scaleout.yaml:3: balancer.tls_names: '1.2.3' must be a lower-case host name (a-z 0-9"
        ' - and dots; *.name for a wildcard) or an IP address',
    ),
    (
        'balancer:\n  tls: local\n  tls_names: [a.test, a.test, b.test, b.test]',
        'scaleout.yaml:3: balancer.tls_names: each name may appear once (repeated: a.test,'
        ' b.test)',
    ),
    (
        'balancer:\n  http_port: 80',
        'scaleout.yaml:2: balancer.http_port: only with balancer.tls: it is the plain HTTP'
        ' port that redirects to HTTPS (got 80)',
    ),
    (
        'balancer:\n  tls: local\n  http_port: 8080',
        'scaleout.yaml:3: balancer.http_port: must differ from balancer.port (8080) (got'
        ' 8080)',
    ),
    (
        'balancer:\n  bind: localhost',
        'scaleout.yaml:2: balancer.bind: must be an IP address such as 127.0.0.1 (or 0.0.0.0'
        " to expose on all interfaces) (got 'localhost')",
    ),
    (
        'balancer:\n  hash_key: $cookie_',
        'scaleout.yaml:2: balancer.hash_key: must be one nginx variable: $cookie_NAME,'
        ' $arg_NAME, $http_NAME, $remote_addr, $request_uri, $uri, $host, ... (got'
        " '$cookie_')",
    ),
    (
        'balancer:\n  client_max_body_size: 0',
        'scaleout.yaml:2: balancer.client_max_body_size: 0 would turn the limit off; set a'
        ' size such as 100m (at most 999999m) (got 0)',
    ),
    (
        'balancer:\n  client_max_body_size: 0k',
        'scaleout.yaml:2: balancer.client_max_body_size: 0 would turn the limit off; set a'
        " size such as 100m (at most 999999m) (got '0k')",
    ),
    (
        'balancer:\n  client_max_body_size: 10g',
        'scaleout.yaml:2: balancer.client_max_body_size: must be a size such as 512k or 10m'
        " (got '10g')",
    ),
    (
        'balancer:\n  client_max_body_size: true',
        'scaleout.yaml:2: balancer.client_max_body_size: input should be a valid string (got'
        ' True)',
    ),
    (
        'static:\n  routes: [/]',
        "scaleout.yaml:2: static.routes: '/' cannot be a static route: it belongs to the"
        ' replicas',
    ),
    (
        'static:\n  routes: [/_scaleout/x]',
        "scaleout.yaml:2: static.routes: '/_scaleout/x': /_scaleout/ is reserved for"
        " scaleout's own endpoints",
    ),
    (
        'static:\n  routes: [/a, /a, /b, /b]',
        'scaleout.yaml:2: static.routes: each path may appear once (repeated: /a, /b)',
    ),
    (
        'static:\n  routes: [a]',
        "scaleout.yaml:2: static.routes: 'a' must be a URL path (letters, digits, . _ ~ / -"
        " only; no '.', '..' or empty segment)",
    ),
    (
        'static:\n  worker_scope: x',
        'scaleout.yaml:2: static.worker_scope: must be a URL path such as / (letters, digits,'
        " . _ ~ / - only; no '.', '..' or empty segment) (got 'x')",
    ),
    (
        'static:\n  offline_page: /a/../b',
        'scaleout.yaml:2: static.offline_page: must be a URL path such as / (letters, digits,'
        " . _ ~ / - only; no '.', '..' or empty segment) (got '/a/../b')",
    ),
    (
        'name: -x',
        "scaleout.yaml:1: name: must be a DNS label: lower-case letters, digits and '-', at"
        " most 63 characters (got '-x')",
    ),
    (
        "services:\n  db: {image: pg, ports: ['8080:1']}",
        'scaleout.yaml:2: services.db.ports.0: host port 8080/tcp is already published by'
        ' balancer.port',
    ),
    (
        "services:\n  db: {image: pg, ports: ['0.0.0.0:8080:1']}",
        'scaleout.yaml:2: services.db.ports.0: host port 8080/tcp is already published by'
        ' balancer.port',
    ),
    (
        "services:\n  db: {image: pg, ports: ['9000:1', '9000:2']}",
        'scaleout.yaml:2: services.db.ports.1: host port 9000/tcp is already published by'
        ' services.db.ports.0',
    ),
    (
        "balancer:\n  bind: 0.0.0.0\nservices:\n  db: {image: pg, ports: ['127.0.0.2:8080:1']}",
        'scaleout.yaml:4: services.db.ports.0: host port 8080/tcp is already published by'
        ' balancer.port',
    ),
    (
        'balancer:\n  strategy: 3',
        'scaleout.yaml:2: balancer.strategy: must be one of round_robin, least_conn, ip_hash,'
        ' hash, random (got 3)',
    ),
    (
        'backend:\n  port: 1e9999',
        'scaleout.yaml:2: backend.port: input should be a valid integer, unable to parse'
        " string as an integer (got '1e9999')",
    ),
    (
        'backend:\n  port: 100000000000000000',
        'scaleout.yaml:2: backend.port: input should be less than or equal to 65535 (got'
        ' 100000000000000000)',
    ),
    (
        'backend: 3',
        'scaleout.yaml:1: backend: input should be a valid dictionary or instance of'
        ' BackendConfig',
    ),
    (
        'backend:\n  replicas: [1]',
        'scaleout.yaml:2: backend.replicas: input should be a valid integer',
    ),
    (
        'backend:\n  nope: 1',
        'scaleout.yaml:2: backend.nope: unknown key',
    ),
    (
        'backend:\n  port:'
        " '9999999999999999999999999999999999999999999999999999999999999999999999'",
        'scaleout.yaml:2: backend.port: input should be less than or equal to 65535 (got'
        " '99999999999999999999999999999999999999999999999999999999...)",
    ),
]


@pytest.mark.parametrize("text, message", CONFIG_PROBLEMS)
def test_config_problem_messages(proj, text, message):
    assert problem(proj, text) == message


def test_config_values_at_their_limits_are_accepted(proj):
    def cfg(text: str):
        return parse_config(text, proj, env={})

    assert cfg("backend:\n  health:\n    path: /").backend.health.path == "/"
    health = cfg("backend:\n  health:\n    command: 'echo $$X'").backend.health
    assert health.command == Interpolated("echo $X", "echo $$X")
    assert cfg("backend:\n  limits:\n    memory: 6M").backend.limits.memory == "6M"
    assert cfg("backend:\n  limits:\n    memory: 1g").backend.limits.memory == "1g"
    assert cfg("backend:\n  weights: {backend-1: 100, backend-2: 1}").backend.weights == {"backend-1": 100,
                                                                                           "backend-2": 1}
    assert cfg("backend:\n  backup: [backend-3]\nbalancer:\n  strategy: least_conn").backend.backup == ("backend-3",)
    names = [f"n{i}.test" for i in range(32)]
    assert cfg(f"balancer:\n  tls: local\n  tls_names: [{', '.join(names)}]").balancer.tls_names == tuple(names)
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters
    assert cfg(f"balancer:\n  tls: local\n  tls_names: [{longest}]").balancer.tls_names == (longest,)
    assert problem(proj, f"balancer:\n  tls: local\n  tls_names: [{longest}a]").endswith(
        "must be a lower-case host name (a-z 0-9 - and dots; *.name for a wildcard) or an IP address")
    mixed = cfg("balancer:\n  tls: local\n  tls_names: ['::0001', '*.app.test', 10.0.0.1]").balancer.tls_names
    assert mixed == ("::1", "*.app.test", "10.0.0.1")
    assert cfg("balancer:\n  tls: local\n  port: 8443\n  http_port: 8080").balancer.http_port == 8080
    assert cfg("balancer:\n  hash_key: $request_uri").balancer.hash_key == "$request_uri"
    assert cfg("balancer:\n  client_max_body_size: 1024").balancer.client_max_body_size == "1024"
    assert cfg("balancer:\n  tls: false").balancer.tls is None
    # a port published on another address, or over udp, is no clash with the balancer's
    assert cfg("services:\n  db: {image: pg, ports: ['127.0.0.2:8080:1', '8080:2/udp']}").services["db"].ports


@pytest.mark.parametrize(
    "text, url",
    [
        ("", "http://127.0.0.1:8080"),
        ("balancer:\n  bind: '::'", "http://127.0.0.1:8080"),
        ("balancer:\n  bind: 0.0.0.0\n  port: 80", "http://127.0.0.1:80"),
        ("balancer:\n  bind: '::1'", "http://[::1]:8080"),
        ("balancer:\n  bind: 10.1.2.3\n  tls: local\n  port: 443", "https://10.1.2.3:443"),
    ],
)
def test_the_url_a_user_opens(proj, text, url):
    c = parse_config(text, proj, env={})
    assert c.url == url
    assert c.balancer.scheme == url.split(":")[0]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"replicas": 0}, "--replicas: input should be greater than or equal to 1 (got 0)"),
        ({"port": 0}, "--port: input should be greater than or equal to 1 (got 0)"),
        ({"strategy": "x"}, "--strategy: must be one of round_robin, least_conn, ip_hash, hash, random (got 'x')"),
        ({"bind": "nope"},
         "--bind: must be an IP address such as 127.0.0.1 (or 0.0.0.0 to expose on all interfaces) (got 'nope')"),
        ({"name": "Bad"},
         "--project-name: must be a DNS label: lower-case letters, digits and '-', at most 63 characters (got 'Bad')"),
    ],
)
def test_command_line_overrides_name_the_flag(proj, overrides, message):
    c = parse_config("backend:\n  image: x", proj, env={})
    with pytest.raises(UsageError) as err:
        c.with_overrides(Overrides(**overrides))
    assert str(err.value) == message


def test_command_line_overrides_apply_to_what_the_file_set(proj):
    own = parse_config("backend:\n  image: x\nbalancer:\n  tls: {cert: a.pem, key: b.pem}", proj, env={})
    n = own.with_overrides(Overrides(replicas=2, port=9000, strategy="hash", bind="0.0.0.0", name="shop", tls=True))
    assert (n.replicas, n.balancer.port, n.balancer.strategy, n.balancer.bind, n.name) == (2, 9000, "hash", "0.0.0.0",
                                                                                          "shop")
    assert (n.balancer.tls.cert, n.balancer.tls.key) == ("a.pem", "b.pem")  # --tls keeps the file's certificate
    assert (n.backend.image, n.backend.builds) == ("x", False)
    assert own.with_overrides(Overrides(replicas=None)).replicas == 3
    plain = parse_config("backend:\n  backup: [backend-3]", proj, env={})
    assert plain.with_overrides(Overrides(tls=True)).balancer.tls == "local"
    assert plain.with_overrides(Overrides(tls=False)).balancer.tls is None
    # a rule across keys keeps its own key in the message
    with pytest.raises(UsageError) as err:
        plain.with_overrides(Overrides(strategy="hash"))
    assert str(err.value) == "backend.backup: backup replicas cannot be combined with strategy hash (nginx forbids it)"
    with pytest.raises(TypeError, match="colour"):  # no such command-line value
        plain.with_overrides(Overrides(colour="red"))


@pytest.mark.parametrize(
    "folder, name",
    [("My Project!", "my-project"), ("---", "scaleout"), ("a" * 70 + "-b", "a" * 63), ("shop-2", "shop-2")],
)
def test_default_name_is_a_dns_label_made_from_the_folder(tmp_path, folder, name):
    (tmp_path / folder).mkdir()
    assert default_name(tmp_path / folder) == name
    assert parse_config("", tmp_path / folder, env={}).name == name


def test_more_limits_and_optional_values(proj):
    def cfg(text: str):
        return parse_config(text, proj, env={})

    assert cfg("backend:\n  limits:\n    memory: 10m").backend.limits.memory == "10m"  # two digits: not 1m
    assert cfg("backend:\n  limits:\n    memory: 64g").backend.limits.memory == "64g"
    assert cfg("balancer:\n  http_port: null").balancer.http_port is None
    assert cfg("static:\n  worker_scope: null").static.worker_scope is None
    assert cfg("static:\n  worker_scope: /app/").static.worker_scope == "/app/"
    assert problem(proj, "backend:\n  image: 'Bad Image'") == (
        "scaleout.yaml:2: backend.image: must be an image reference such as nginx:1.27 or "
        "registry.example.com/team/app:tag (got 'Bad Image')")
    assert problem(proj, "static:\n  routes: [/a, /a, /c]") == (
        "scaleout.yaml:2: static.routes: each path may appear once (repeated: /a)")
    names = ", ".join(f"n{i}.test" for i in range(33))
    assert problem(proj, f"balancer:\n  tls: local\n  tls_names: [{names}]") == (
        "scaleout.yaml:3: balancer.tls_names: at most 32 items are allowed")  # scaleout/config/bounds.py


@pytest.mark.parametrize(
    "entry, problem_text",
    [
        ("file.txt/x", "file.txt/x: cannot be read: Not a directory"),
        ("outside.env", "outside.env: leads outside the project folder (a link?); env files must be inside it"),
        ("dangling.env", "dangling.env: cannot be read: No such file or directory"),
        ("missing.env", "missing.env: the file does not exist (create it, or remove it from env_file)"),
        (".", ".: is not a regular file"),
    ],
)
def test_env_file_problems_say_what_is_wrong_with_the_file(tmp_path, entry, problem_text):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "o.env").write_text("A=1\n")
    (project / "file.txt").write_text("x\n")
    (project / "outside.env").symlink_to(tmp_path / "o.env")
    (project / "dangling.env").symlink_to(project / "nowhere.env")
    with pytest.raises(ConfigError) as err:
        parse_config(f"backend:\n  env_file: ['{entry}']", project, env={})
    assert str(err.value) == f"scaleout.yaml:2: backend.env_file.0: {problem_text}"


@pytest.mark.parametrize("size", ["10M", "10K", "10m", "512k", "999999m"])
def test_body_sizes_in_either_case_are_accepted(proj, size):
    c = parse_config(f"balancer:\n  client_max_body_size: {size}", proj, env={})
    assert c.balancer.client_max_body_size == size


def test_tls_messages_that_list_names(proj):
    assert problem(proj, "balancer:\n  tls: {}") == (
        "scaleout.yaml:2: balancer.tls: cert and key missing: give both cert and key (paths in the project)")
    assert problem(proj, "balancer:\n  tls: local\n  tls_names: [a.test, a.test, c.test]") == (
        "scaleout.yaml:3: balancer.tls_names: each name may appear once (repeated: a.test)")


def test_folders_that_lead_out_of_the_project_through_links(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "out").mkdir()
    for name in ("backend", "pub", "svc"):
        (project / name).symlink_to(tmp_path / "out")
    text = "backend:\n  build: backend\nstatic:\n  dir: pub\nservices:\n  db:\n    build: svc\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, project, env={})
    assert str(err.value).splitlines() == [
        "scaleout.yaml:2: backend.build: 'backend' points outside the project folder",
        "scaleout.yaml:4: static.dir: 'pub' points outside the project folder",
        "scaleout.yaml:7: services.db.build: 'svc' points outside the project folder",
    ]
    # an image instead of a build: the default build folder is never read, wherever it leads
    c = parse_config("backend:\n  image: app:1\n", project, env={})
    assert c.backend.builds is False and c.backend.build == "backend"
    assert parse_config("", tmp_path / "out", env={}).backend.builds is True


def test_two_port_clashes_are_two_lines(proj):
    with pytest.raises(ConfigError) as err:
        parse_config("services:\n  db: {image: pg, ports: ['8080:1', '8080:2']}", proj, env={})
    assert str(err.value).splitlines() == [
        "scaleout.yaml:2: services.db.ports.0: host port 8080/tcp is already published by balancer.port",
        "scaleout.yaml:2: services.db.ports.1: host port 8080/tcp is already published by balancer.port",
    ]


def test_models_built_in_code_keep_env_and_its_compose_text_together():
    from pydantic import ValidationError

    from scaleout.config.sections import BackendConfig

    assert BackendConfig(env={"A": "x$y"}).env == {"A": Interpolated("x$y", "x$$y")}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BackendConfig(env={"A": "1"}, env_compose={"B": "1"})
    with pytest.raises(ValidationError, match="valid dictionary"):
        BackendConfig(env="A=1")


@pytest.mark.parametrize(
    "text, message",
    [
        ("services:\n  db:\n    image: pg\n    ports: [{host_port: 1, container_port: 2, protocol: sctp}]",
         "scaleout.yaml:4: services.db.ports.0.protocol: input should be 'tcp' or 'udp' (got 'sctp')"),
        ("services:\n  db:\n    image: pg\n    ports: [{host_port: 1}]",
         "scaleout.yaml:4: services.db.ports.0.container_port: is required"),
        ("backend:\n  env: 3", "scaleout.yaml:2: backend.env: input should be a valid dictionary"),
        ("backend:\n  env:\n    true: '${'\n    false: '${'\n    null: '${'",
         "scaleout.yaml:3: backend.env.true: '${': '${' is never closed with '}' (write $$ for a literal $)\n"
         "scaleout.yaml:4: backend.env.false: '${': '${' is never closed with '}' (write $$ for a literal $)\n"
         "scaleout.yaml:5: backend.env.null: '${': '${' is never closed with '}' (write $$ for a literal $)"),
        ("backend:\n  depends_on: [a, a, b, b]",
         "scaleout.yaml:2: backend.depends_on: each service may appear once (repeated: a, b)"),
        ("balancer:\n  tls: {cert: a, key: b, x: 1, y: 2}",
         "scaleout.yaml:2: balancer.tls: unknown key(s) x, y: a mapping takes cert and key only"),
        ("backend:\n  depends_on:\n    - cache",
         "scaleout.yaml:3: backend.depends_on.0: 'cache' is not a service under services: (none are defined)"),
        ("name: " + "A" * 58, "scaleout.yaml:1: name: must be a DNS label: lower-case letters, digits and '-', at "
         "most 63 characters (got '" + "A" * 58 + "')"),
        ("name: " + "A" * 59, "scaleout.yaml:1: name: must be a DNS label: lower-case letters, digits and '-', at "
         "most 63 characters (got '" + "A" * 56 + "...)"),
    ],
)
def test_more_config_problem_messages(proj, text, message):
    assert problem(proj, text) == message


def test_a_health_path_may_end_in_any_letter(proj):
    assert parse_config("backend:\n  health:\n    path: /X", proj, env={}).backend.health.path == "/X"


def test_health_command_compose_text_of_a_model_built_in_code():
    from scaleout.config.sections import HealthConfig

    h = HealthConfig(command="curl -f localhost:$PORT")
    assert h.command == Interpolated("curl -f localhost:$PORT", "curl -f localhost:$$PORT")
    assert HealthConfig(command=Interpolated("a", "b")).command.compose == "b"
    with pytest.raises(ValueError, match="single-line"):
        HealthConfig(command=Interpolated("a", "a\nb"))


def test_overrides_that_break_another_key_or_two_at_once(proj):
    c = parse_config("balancer:\n  tls: local\n  port: 8443\n  http_port: 8080", proj, env={})
    with pytest.raises(UsageError) as err:
        c.with_overrides(Overrides(port=8080))
    assert str(err.value) == "balancer.http_port: must differ from balancer.port (8080) (got 8080)"
    with pytest.raises(UsageError) as err:
        c.with_overrides(Overrides(replicas=0, port=0))
    assert str(err.value).splitlines() == ["--replicas: input should be greater than or equal to 1 (got 0)",
                                           "--port: input should be greater than or equal to 1 (got 0)"]
    assert c.with_overrides(Overrides(replicas=None, port=9000)).balancer.port == 9000
    for huge, shown in [(10**30, "a very large number"), (10**30 - 1, str(10**30 - 1))]:
        with pytest.raises(UsageError) as err:
            c.with_overrides(Overrides(replicas=huge))
        assert str(err.value) == f"--replicas: input should be less than or equal to 32 (got {shown})"


@pytest.mark.parametrize(
    "folder, name",
    [("a" * 62 + "-bc", "a" * 62), ("---" + "a" * 61 + "bc", "a" * 61 + "bc")],
)
def test_default_name_trims_dashes_around_the_63_characters(tmp_path, folder, name):
    (tmp_path / folder).mkdir()
    assert default_name(tmp_path / folder) == name


def test_a_build_folder_that_is_a_link_loop_is_outside(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "loop").symlink_to(project / "loop")
    assert problem(project, "backend:\n  build: loop") == (
        "scaleout.yaml:2: backend.build: 'loop' points outside the project folder")


def test_hidden_routes_and_too_many_tls_names_say_why(proj):
    hidden = "names the hidden file or folder '.git': hidden files (.env, .git/) are never published"
    assert problem(proj, "static:\n  routes: [/static/.git/]") == (
        f"scaleout.yaml:2: static.routes: '/static/.git/' {hidden} (only /.well-known/ is allowed)")
    assert problem(proj, "static:\n  offline_page: /.git/x.html") == (
        f"scaleout.yaml:2: static.offline_page: '/.git/x.html' {hidden} (only /.well-known/ is allowed) "
        "(got '/.git/x.html')")
    from pydantic import ValidationError

    from scaleout.config.sections import BalancerConfig

    # the file's reader bounds the list first (config/bounds.py); a model built in code meets the rule itself
    with pytest.raises(ValidationError, match="at most 32 names"):
        BalancerConfig(tls="local", tls_names=[f"a{i}.test" for i in range(33)])
