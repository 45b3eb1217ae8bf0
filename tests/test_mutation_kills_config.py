"""Validation messages of scaleout.yaml, word for word: each bad value ends in the one line a user reads
(file:line: key: what is wrong, and what was given), each good value in the Config it means. Written
against the mutants scripts/mutation.sh found alive in scaleout/config/model.py and scaleout/config/services.py:
a rule whose message or boundary no test pins down can change unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.model import Overrides, default_name, load_config, parse_config
from scaleout.errors import ConfigError, UsageError


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    (p / "ok.env").write_text("A=1\n")
    return p


def svc(body: str) -> str:
    return "services:\n  db:\n" + "".join(f"    {line}\n" for line in body.split("\n"))


def problem(proj: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(text, proj, env={})
    return str(err.value)


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


@pytest.mark.parametrize("body, message", SERVICE_PROBLEMS)
def test_service_problem_messages(proj, body, message):
    assert problem(proj, svc(body)) == message


@pytest.mark.parametrize("text, message", CONFIG_PROBLEMS)
def test_config_problem_messages(proj, text, message):
    assert problem(proj, text) == message


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
    assert check.disabled and check.test == ("NONE",)
    check = service("image: pg\nhealthcheck: {interval: 1ms, start_period: 0, timeout: 24h}").healthcheck
    assert (check.interval, check.start_period, check.timeout) == (0.001, 0.0, 86400.0)
    assert not check.disabled
    assert service("image: pg\ncommand: [run, 1, 2.5]").command == ("run", "1", "2.5")
    env = service("image: pg\nenvironment: {A: true, B: false, C: 1.5, D: 2, E: \"a\\tb\"}").environment
    assert env == {"A": "true", "B": "false", "C": "1.5", "D": "2", "E": "a\tb"}
    assert service("image: pg\nenv_file: ok.env").env_file == ("ok.env",)


def test_config_values_at_their_limits_are_accepted(proj):
    def cfg(text: str):
        return parse_config(text, proj, env={})

    assert cfg("backend:\n  health:\n    path: /").backend.health.path == "/"
    health = cfg("backend:\n  health:\n    command: 'echo $$X'").backend.health
    assert (health.command, health.command_compose) == ("echo $X", "echo $$X")
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


def test_a_missing_scaleout_yaml_says_how_to_start(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    assert err.value.message == f"{tmp_path.resolve() / 'scaleout.yaml'}: not found"
    assert err.value.hint == "run `scaleout init` to create a project, or cd into one"


def test_an_environment_list_splits_at_the_first_equals_sign(proj):
    c = parse_config(svc("image: pg\nenvironment: ['A=b=c', 'B=']"), proj, env={})
    assert c.services["db"].environment == {"A": "b=c", "B": ""}
    assert c.services["db"].environment_compose == {"A": "b=c", "B": ""}


def test_a_value_from_the_shell_may_hold_a_newline_but_not_the_compose_text(proj):
    c = parse_config(svc("image: pg\nenvironment: {A: '${X}'}") + "backend:\n  env: {B: '${X}'}\n", proj,
                     env={"X": "line 1\nline 2"})
    assert c.services["db"].environment == {"A": "line 1\nline 2"}
    assert c.services["db"].environment_compose == {"A": "${X}"}
    assert c.backend.env == {"B": "line 1\nline 2"} and c.backend.env_compose == {"B": "${X}"}


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

    from scaleout.config.model import BackendConfig

    assert BackendConfig(env={"A": "x$y"}).env_compose == {"A": "x$$y"}
    with pytest.raises(ValidationError) as err:
        BackendConfig(env={"A": "1"}, env_compose={"B": "1"})
    assert [e["msg"] for e in err.value.errors()] == ["Value error, env: inconsistent Compose text"]
    with pytest.raises(ValidationError, match="valid dictionary"):
        BackendConfig(env="A=1")


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
    assert s.environment == s.environment_compose == {"A": "a b"}


def test_service_models_built_in_code():
    from pydantic import ValidationError

    from scaleout.config.services import Healthcheck, ServiceConfig

    check = Healthcheck(test="pg_isready -h $HOST")
    assert check.test == ("CMD-SHELL", "pg_isready -h $HOST")
    assert check.test_compose == ("CMD-SHELL", "pg_isready -h $$HOST")
    assert Healthcheck(test=None).test_compose is None
    assert Healthcheck(test_compose=["CMD", "x"]).test_compose == ("CMD", "x")
    assert ServiceConfig(image="pg", command="run $X").command_compose == "run $$X"
    assert ServiceConfig(image="pg", command_compose=["a", 1]).command_compose == ("a", "1")
    with pytest.raises(ValidationError) as err:
        ServiceConfig(image="pg", environment={"A": "1"}, environment_compose={"B": "1"})
    assert [e["msg"] for e in err.value.errors()] == ["Value error, environment: inconsistent Compose text"]
    with pytest.raises(ValidationError, match="A: value must not contain a NUL character"):
        ServiceConfig(image="pg", environment={"A": "a\0b"})


def test_service_compose_text_of_a_model_built_in_code():
    from pydantic import ValidationError

    from scaleout.config.services import ServiceConfig

    s = ServiceConfig(image="pg", environment={"A": "x$y", "B": 2}, command=["run", "$X", 3])
    assert s.environment == {"A": "x$y", "B": "2"} and s.environment_compose == {"A": "x$$y", "B": "2"}
    assert s.command == ("run", "$X", "3") and s.command_compose == ("run", "$$X", "3")
    s = ServiceConfig(image="pg", environment=["A=$1"], command=None)
    assert s.environment_compose == {"A": "$$1"} and s.command is None and s.command_compose is None
    kept = ServiceConfig(image="pg", environment={"A": "$x"}, environment_compose={"A": "${X}"})
    assert kept.environment_compose == {"A": "${X}"}
    with pytest.raises(ValidationError, match="valid dictionary"):
        ServiceConfig(image="pg", environment="A=1")
    with pytest.raises(ValidationError, match="valid dictionary or instance of ServiceConfig"):
        ServiceConfig.model_validate("pg")


# --- scaleout/config/yamlload.py: bounded reading and the YAML event builder, in the test process ----------------


def test_read_capped_reads_big_files_whole_and_refuses_what_is_not_a_file(tmp_path):
    from scaleout.config.yamlload import read_capped

    data = bytes(range(256)) * 800  # 200 KiB: several reads
    (tmp_path / "big").write_bytes(data)
    assert read_capped(tmp_path / "big", display="big", limit=len(data)) == data
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "big", display="big", limit=len(data) - 1)
    assert str(err.value) == f"big: is {len(data)} bytes; at most {len(data) - 1} bytes are allowed"
    import os

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "fifo", display="fifo")
    assert str(err.value) == (
        "fifo: is not a regular file (a device, FIFO or socket?); scaleout reads only regular files")
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path, display="dir")
    assert str(err.value) == "dir: is a folder; scaleout reads only regular files"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "loop", display="loop")
    assert str(err.value) == "loop: cannot be read: Too many levels of symbolic links"
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "missing", display="missing")


@pytest.mark.parametrize("limit", [100, 100_000])
def test_read_capped_stops_at_the_limit_when_the_file_grew(tmp_path, monkeypatch, limit):
    import os

    from scaleout.config.yamlload import read_capped

    (tmp_path / "f").write_bytes(b"x" * (2 * limit + 70_000))
    real_fstat = os.fstat

    def small_fstat(fd):  # the size fstat saw before the file grew
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

    monkeypatch.setattr(os, "fstat", small_fstat)
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "f", display="f", limit=limit)
    assert str(err.value) == f"f: is larger than {limit} bytes"
    (tmp_path / "g").write_bytes(b"y" * limit)
    assert read_capped(tmp_path / "g", display="g", limit=limit) == b"y" * limit


def test_decode_text_counts_lines_from_the_first_byte():
    from scaleout.config.yamlload import decode_text

    assert decode_text(b"\xef\xbb\xbfname: x\n", display="f") == "name: x\n"
    with pytest.raises(ConfigError) as err:
        decode_text(b"\nabc\n\xff", display="f")
    assert str(err.value) == "f:3: cannot be read: not valid UTF-8 (byte 5); save it as UTF-8"


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: !custom x", "f.yaml:1: a: YAML tag !custom is not allowed"),
        ("a: !!python/name:os.system x", "f.yaml:1: a: YAML tag !!python/name:os.system is not allowed"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2: only one YAML document is allowed (remove the second '---')"),
        ("k" * 60 + ":\n  " + "j" * 57 + ":\n    - &x 1",
         "f.yaml:3: " + "k" * 60 + "." + "j" * 57 + ".0: YAML anchors (&x) are not allowed; write the value out"),
        ("k" * 60 + ":\n  " + "j" * 58 + ":\n    - &x 1",
         "f.yaml:3: " + "k" * 60 + "." + "j" * 56 + "...: YAML anchors (&x) are not allowed; write the value out"),
    ],
)
def test_yaml_refusals_name_the_key(text, message):
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, display="f.yaml")
    assert str(err.value) == message


# --- scaleout/config/model.py: messages of pydantic's own errors, .env, load_config, overrides -------------------


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


def test_a_problem_with_no_line_names_the_file_only(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "out").mkdir()
    (project / "public").symlink_to(tmp_path / "out")  # static.dir's default, not written in the file
    assert problem(project, "") == "scaleout.yaml: static.dir: 'public' points outside the project folder"
    with pytest.raises(ConfigError) as err:
        parse_config("", tmp_path, env={"SCALEOUT_LB_IMAGE": "bad image"})
    assert str(err.value) == ("scaleout.yaml: images.balancer: must be an image reference such as nginx:1.27 or "
                              "registry.example.com/team/app:tag (got 'bad image')")


def test_a_health_path_may_end_in_any_letter(proj):
    assert parse_config("backend:\n  health:\n    path: /X", proj, env={}).backend.health.path == "/X"


def test_health_command_compose_text_of_a_model_built_in_code():
    from scaleout.config.model import HealthConfig

    h = HealthConfig(command="curl -f localhost:$PORT")
    assert h.command == "curl -f localhost:$PORT" and h.command_compose == "curl -f localhost:$$PORT"
    assert HealthConfig(command="a", command_compose="b").command_compose == "b"


def test_dotenv_is_shown_beside_the_config_it_belongs_to(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / ".env").write_text("not a line\n")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, source="conf/scaleout.yaml", env={})
    assert str(err.value).startswith("conf/.env:1: ")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, source="./scaleout.yaml", env={})
    assert str(err.value).startswith(".env:1: ")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert str(err.value).startswith(".env:1: ")


def test_dotenv_files_that_cannot_be_used(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "o.env").write_text("A=1\n")
    (project / ".env").symlink_to(tmp_path / "o.env")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert err.value.message == ".env: is a link leading outside the project folder; scaleout does not follow it"
    assert err.value.hint == "put the variables in a .env file inside the project"
    (project / ".env").unlink()
    (project / ".env").symlink_to(project / "gone.env")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert str(err.value) == ".env: is a link to a file that does not exist"
    (project / ".env").unlink()
    (project / ".env").mkdir()
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert str(err.value) == ".env: is a folder; scaleout reads only regular files"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as err:
        parse_config("", tmp_path / "file", env={})
    assert str(err.value) == ".env: cannot be read: Not a directory"


def test_load_config_names_the_file_as_the_user_sees_it(tmp_path, monkeypatch):
    project = tmp_path / "p"
    project.mkdir()
    (project / "scaleout.yaml").write_text("name: Bad\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config("p", env={})
    assert str(err.value).startswith("p/scaleout.yaml:1: name: must be a DNS label")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError) as err:
        load_config(project, env={})
    assert str(err.value).startswith(f"{project}/scaleout.yaml:1: name: must be a DNS label")
    (project / "scaleout.yaml").write_text("name: good\n")
    monkeypatch.chdir(project)
    assert load_config(env={}).name == "good"
    (project / "scaleout.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value) == "scaleout.yaml:1: cannot be read: not valid UTF-8 (byte 6); save it as UTF-8"


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


def test_engine_environment_puts_the_shell_over_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("A=from-dotenv\nB=from-dotenv\n")
    c = parse_config("", tmp_path, env={})
    assert c.engine_environment({"B": "shell"}) == {"A": "from-dotenv", "B": "shell"}
    monkeypatch.setenv("B", "exported")
    env = c.engine_environment()
    assert env["A"] == "from-dotenv" and env["B"] == "exported" and "PATH" in env


def test_read_capped_reports_a_read_error(tmp_path, monkeypatch):
    import errno
    import os

    from scaleout.config.yamlload import read_capped

    (tmp_path / "f").write_text("name: x\n")

    def failing_read(fd, n):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "read", failing_read)
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "f", display="f")
    assert str(err.value) == "f: cannot be read: Input/output error"


@pytest.mark.parametrize(
    "text, data",
    [
        ("a: =", {"a": "="}),  # YAML 1.1's value key stays the text it is
        ("a: ! 12", {"a": 12}),  # the non-specific tag resolves as an untagged value
        ("a: 1." + "0" * 38, {"a": 1.0}),  # 40 characters: the longest number allowed
    ],
)
def test_yaml_scalars_near_a_rule(text, data):
    from scaleout.config.yamlload import load_yaml

    assert load_yaml(text, display="f.yaml").data == data


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: {<<: {b: 1}}", "f.yaml:1: a: merge keys (<<) are not allowed; write the keys out"),
        ("a: 1." + "0" * 39, "f.yaml:1: a: number is 41 characters long; at most 40 are allowed"),
        ("a: [" + "1," * 100_001 + "]", "f.yaml:1: more than 100000 values; this is not a scaleout.yaml"),
    ],
)
def test_more_yaml_refusals(text, message):
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, display="f.yaml")
    assert str(err.value) == message


@pytest.mark.parametrize(
    "number, value",
    [
        ("0b" + "1" * 18, 2**18 - 1),  # 18 binary digits: the prefix is not a digit
        ("0x" + "0" * 17 + "1", 1),  # leading zeros after the prefix do not count
        ("+" + "0" * 18 + "1", 1),  # nor a sign
        ("1" + "_0" * 9, 10**9),  # nor underscores
        ("1.0000000000000000000", 1.0),  # the digit rule is for integers only
    ],
)
def test_integer_digits_are_counted_as_digits(number, value):
    from scaleout.config.yamlload import load_yaml

    assert load_yaml(f"a: {number}", display="f.yaml").data == {"a": value}


def test_an_integer_with_too_many_digits_is_refused_even_when_small():
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml("a: 0b" + "1" * 19, display="f.yaml")  # 19 digits, though only 524287
    assert str(err.value) == "f.yaml:1: a: integer has more than 18 digits"


def test_load_config_names_a_scaleout_yaml_it_cannot_read(tmp_path, monkeypatch):
    (tmp_path / "scaleout.yaml").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value) == "scaleout.yaml: is a folder; scaleout reads only regular files"


@pytest.mark.parametrize(
    "folder, name",
    [("a" * 62 + "-bc", "a" * 62), ("---" + "a" * 61 + "bc", "a" * 61 + "bc")],
)
def test_default_name_trims_dashes_around_the_63_characters(tmp_path, folder, name):
    (tmp_path / folder).mkdir()
    assert default_name(tmp_path / folder) == name


def test_top_level_shape_and_internal_keys(proj, monkeypatch):
    assert problem(proj, "- a\n- b") == (
        "scaleout.yaml: the file must be a mapping of keys (name, backend, balancer, ...), not a list")
    assert problem(proj, "name: x\nproject_dir: /etc") == "scaleout.yaml:2: project_dir: unknown key"
    monkeypatch.setenv("SCALEOUT_LB_IMAGE", "local/lb:7")
    assert parse_config("", proj).images.balancer == "local/lb:7"  # env defaults to the process environment


def test_a_build_folder_that_is_a_link_loop_is_outside(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "loop").symlink_to(project / "loop")
    assert problem(project, "backend:\n  build: loop") == (
        "scaleout.yaml:2: backend.build: 'loop' points outside the project folder")


def test_yaml_limits_at_their_boundary():
    from scaleout.config.yamlload import load_yaml

    assert load_yaml("a: " + "[" * 31 + "]" * 31, display="f.yaml").data["a"]  # 32 levels with the mapping
    items = load_yaml("a: [" + "1," * 99_996 + "1]", display="f.yaml").data["a"]  # 100000 values in all
    assert len(items) == 99_997


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: " + "[" * 32 + "]" * 32, "f.yaml:1: a" + ".0" * 31 + ": nested deeper than 32 levels"),
        ("? [a]\n: 1", "f.yaml:1: not valid YAML for scaleout: a key must be a plain value, not a list or mapping"),
        ("a: 1\nb: \x07", "f.yaml:2: not valid YAML: character #x0007 is not allowed"),
        ("a: [1", "f.yaml:2: not valid YAML: did not find expected ',' or ']'"),  # at the end of the text
        ("a:\n  b: 1\n   c: 2", "f.yaml:3: not valid YAML: mapping values are not allowed in this context"),
    ],
)
def test_yaml_parse_errors_name_the_line(text, message):
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, display="f.yaml")
    assert str(err.value) == message


def test_interpolation_problems_name_the_list_item_and_every_internal_key(proj):
    assert problem(proj, svc('image: pg\ncommand: [run, "${"]')) == (
        "scaleout.yaml:4: services.db.command.1: '${': '${' is never closed with '}' (write $$ for a literal $)")
    assert problem(proj, "backend:\n  env_compose: {}\n  health:\n    command_compose: x") == (
        "scaleout.yaml:2: backend.env_compose: unknown key\n"
        "scaleout.yaml:4: backend.health.command_compose: unknown key")


def test_a_short_hexadecimal_integer_may_still_be_too_large():
    from scaleout.config.yamlload import load_yaml

    assert hex(10**18) == "0xde0b6b3a7640000"  # 15 digits, within the digit rule, but 10**18
    with pytest.raises(ConfigError) as err:
        load_yaml("a: 0xde0b6b3a7640000", display="f.yaml")
    assert str(err.value) == "f.yaml:1: a: integer has more than 18 digits"
    assert load_yaml("a: 0xde0b6b3a763ffff", display="f.yaml").data == {"a": 10**18 - 1}
