"""`scaleout init --from` on hostile or broken Compose files: one clear message (file:line where there is
one), exit 2, no traceback, quickly, and nothing written."""

from __future__ import annotations

import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scaleout.adopt import adopt
from scaleout.adopt.compose_file import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_compose_file
from scaleout.errors import ConfigError, ScaleoutError
from tests.helpers import run_cli

WEB = "services:\n  web:\n    image: acme/web:1\n    ports: ['8000:5000']\n"


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return WEB + "x-bomb:\n" + "".join(f"  {line}\n" for line in lines)


CASES = {
    "alias bomb": (alias_bomb(), "once aliases are expanded (an alias bomb?)"),
    "recursive alias": (WEB + "x-loop: &loop\n  - *loop\n", "the alias *loop refers to a node that contains it"),
    "deep flow nesting": (WEB + "x-deep: " + "[" * 5000 + "]" * 5000 + "\n", "compose.yaml:5: not valid YAML"),
    "deep block nesting": (WEB + "x-deep:\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(60)) + "  " * 61
                           + "v: 1\n", f"nested deeper than {MAX_DEPTH} levels"),
    "deep through aliases": (WEB + "x-a: &a " + "[" * 30 + "1" + "]" * 30 + "\nx-b: " + "[" * 20 + "*a" + "]" * 20
                             + "\n", "once aliases are expanded"),
    "too many nodes": (WEB + "".join(f"x-wide{j}:\n" + "".join(f"  k{i}: {i}\n" for i in range(1000))
                                     for j in range(MAX_NODES // 1000 + 1)), f"more than {MAX_NODES} values"),
    # each list and map has its own bound too (config/bounds.py COMPOSE_BOUNDS), far below the node count
    "many ports": ("services:\n  web:\n    image: acme/web:1\n    ports:\n"
                   + "".join(f"      - '{9000 + i}:{9000 + i}'\n" for i in range(300)),
                   "compose.yaml:4: services.web.ports: at most 256 items are allowed"),
    "many depends_on": (WEB + "    depends_on:\n" + "".join(f"      - s{i}\n" for i in range(300)),
                        "compose.yaml:5: services.web.depends_on: at most 256 items are allowed"),
    "many environment keys": (WEB + "    environment:\n" + "".join(f"      V{i}: x\n" for i in range(1100)),
                              "compose.yaml:5: services.web.environment: at most 1024 keys are allowed"),
    "many services": (WEB + "".join(f"  s{i}: {{image: r/s:1}}\n" for i in range(300)),
                      "compose.yaml:1: services: at most 256 keys are allowed"),
    "many labels in an extension": (WEB + "x-labels:\n" + "".join(f"  l{i}: x\n" for i in range(1100)),
                                    "compose.yaml:5: x-labels: at most 1024 keys are allowed"),
    "an aliased list over its key's bound": (
        "x-many: &many [" + ", ".join(f"s{i}" for i in range(300)) + "]\n" + WEB + "    depends_on: *many\n",
        "compose.yaml:6: services.web.depends_on: at most 256 items are allowed (it has 300 once aliases"),
    "merged keys over the bound": (
        "x-env: &env {" + ", ".join(f"A{i}: x" for i in range(1000)) + "}\n" + WEB
        + "    environment:\n      <<: *env\n" + "".join(f"      B{i}: y\n" for i in range(100)),
        "services.web.environment: at most 1024 keys are allowed (it has 1100 once aliases and merge keys"),
    "duplicate service": ("services:\n  web:\n    image: a/b:1\n  web:\n    image: c/d:1\n",
                          "compose.yaml:4: services.web: duplicate key (first set on line 2)"),
    "duplicate environment key": (WEB + "    environment:\n      A: 1\n      A: 2\n",
                                  "compose.yaml:7: services.web.environment.A: duplicate key (first set on line 6)"),
    "two documents": (WEB + "---\n" + WEB,
                      "only one YAML document is allowed"),
    "python tag": (WEB + "x-evil: !!python/object/apply:os.system ['touch pwned']\n",
                   "compose.yaml:5: x-evil: YAML tag !!python/object/apply:os.system is not allowed"),
    "unknown tag": (WEB + "    environment: !reset []\n", "compose.yaml:5: services.web.environment: YAML tag !reset "
                                                         "is not allowed"),
    "syntax error": ("services:\n  web: [unclosed\n", "compose.yaml:3: not valid YAML"),
    "top-level list": ("- services\n", "a Compose file is a mapping"),
    "no services": ("volumes: {}\n", "no `services:` mapping"),
    "version 1 format": ("web:\n  image: a/b:1\n", "the old version 1 format"),
    "service not a mapping": ("services:\n  web: nginx\n", "compose.yaml:2: services.web: must be a mapping"),
    "complex key": ("services:\n  ? [a, b]\n  : {image: x}\n", "compose.yaml:2: services: not valid YAML for scaleout: "
                                                              "a key must be a plain value"),
    "bad service name": ('services:\n  "web;rm -rf": {image: x}\n', "is not a service name"),
    "service named lb": (WEB + "  lb:\n    image: nginx:1.27\n",
                         "compose.yaml:5: services.lb: the name 'lb' is taken by scaleout for its load balancer"),
    "service named backend-1": (WEB + "  backend-1:\n    image: redis:7\n",
                                "services.backend-1: the name 'backend-1' is taken by scaleout for its replicas"),
    "service named Backend": (WEB + "  Backend:\n    image: redis:7\n", "the name 'Backend' is taken by scaleout"),
    "bad port": (WEB.replace("'8000:5000'", "'80:http'"), "compose.yaml:4: services.web.ports.0: not a port mapping"),
    "bad healthcheck": (WEB + "    healthcheck:\n      test: [CURL, x]\n",
                        "compose.yaml:6: services.web.healthcheck.test: must start with CMD, CMD-SHELL or NONE"),
    "required variable": (WEB.replace("'8000:5000'", "'${PORT:?PORT is required}'"),
                          "services.web.ports.0: required variable PORT is not set: PORT is required"),
    "not utf-8": (b"services:\n  web: {image: \xff}\n", "compose.yaml:2: cannot be read: not valid UTF-8"),
    "empty": ("", "the file is empty"),
    "nul byte": ("services:\n  web: {image: a\0b}\n", "compose.yaml:2: not valid YAML: character #x0000"),
    "build outside": ("services:\n  web:\n    build: ../elsewhere\n",
                      "compose.yaml:3: services.web.build.context: ../elsewhere is outside the project folder"),
    "build from git": ("services:\n  web:\n    build: https://github.com/acme/web.git\n",
                       "services.web.build.context: scaleout builds from a folder inside the project"),
    "missing build folder": ("services:\n  web:\n    build: ./nope\n", "services.web.build.context: folder ./nope "
                                                                       "does not exist"),
    "bad image": (WEB.replace("acme/web:1", "'ACME WEB'"), "backend.image: must be an image reference"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_compose_file_exits_2_cleanly(tmp_path, case):
    content, message = CASES[case]
    path = tmp_path / "compose.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    t0 = time.monotonic()
    r = run_cli(["init", "--from", "compose.yaml", "--service", "web"], tmp_path, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]
    assert not (tmp_path / "pwned").exists()
    assert elapsed < 20, f"took {elapsed:.1f}s"


def test_a_file_over_one_mib_is_not_read(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text(WEB + "# " + "x" * MAX_BYTES + "\n")
    r = run_cli(["init", "--from", "compose.yaml"], tmp_path)
    size = path.stat().st_size
    assert r.returncode == 2 and f"compose.yaml: is {size} bytes; at most {MAX_BYTES} bytes are allowed" in r.stderr
    assert not (tmp_path / "scaleout.yaml").exists()


def test_a_file_just_under_the_cap_is_read(tmp_path):
    path = tmp_path / "compose.yaml"
    padding = MAX_BYTES - len(WEB) - 3
    path.write_text(WEB + "#" + "x" * padding + "\n")
    assert path.stat().st_size <= MAX_BYTES
    assert load_compose_file(path).data["services"]["web"]["image"] == "acme/web:1"


@pytest.mark.parametrize("target, message", [("/dev/zero", "compose.yaml: is not a regular file"),
                                             ("/dev/urandom", "compose.yaml: is not a regular file"),
                                             ("/proc/self/environ", "compose.yaml:1: not valid YAML")])
def test_a_link_to_a_device_or_proc_is_not_read(tmp_path, target, message):
    os.symlink(target, tmp_path / "compose.yaml")
    t0 = time.monotonic()
    r = run_cli(["init", "--from", "compose.yaml"], tmp_path, timeout=30)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 20


def test_a_fifo_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "compose.yaml")
    r = run_cli(["init", "--from", "compose.yaml"], tmp_path, timeout=30)
    assert r.returncode == 2 and "not a regular file" in r.stderr


def test_a_folder_is_not_a_compose_file(tmp_path):
    (tmp_path / "compose.yaml").mkdir()
    r = run_cli(["init", "--from", "compose.yaml"], tmp_path)
    assert r.returncode == 2 and "compose.yaml: is a folder; scaleout reads only regular files" in r.stderr


@pytest.mark.parametrize("rel, message", [
    (".env", "compose.yaml: .env: is a link leading outside the project folder"),
    ("app/Dockerfile", "compose.yaml:3: services.web.build: app/Dockerfile leads outside the project folder"),
])
def test_dotenv_and_dockerfile_are_read_within_bounds(tmp_path, rel, message):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: ./app\n    ports: ['5000']\n")
    (tmp_path / "app").mkdir()
    if rel != "app/Dockerfile":
        (tmp_path / "app" / "Dockerfile").write_text("FROM x\n")
    os.symlink("/dev/zero", tmp_path / rel)
    r = run_cli(["init", "--from", "compose.yaml"], tmp_path, timeout=30)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "scaleout.yaml").exists()


def test_a_dockerfile_that_is_a_fifo_does_not_hang(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: ./app\n    ports: ['5000']\n")
    (tmp_path / "app").mkdir()
    os.mkfifo(tmp_path / "app" / "Dockerfile")
    r = run_cli(["init", "--from", "compose.yaml"], tmp_path, timeout=30)
    assert r.returncode == 2 and "services.web.build: app/Dockerfile: is not a regular file" in r.stderr


def test_anchors_and_merge_keys_within_bounds_are_expanded(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text(
        "x-env: &env\n  A: '1'\n  B: '2'\n"
        "services:\n  web:\n    image: acme/web:1\n    ports: ['5000']\n"
        "    environment:\n      <<: *env\n      B: '3'\n"
        "  worker:\n    image: acme/web:1\n    environment: *env\n"
    )
    cf = load_compose_file(path)
    assert cf.data["services"]["web"]["environment"] == {"A": "1", "B": "3"}
    assert cf.data["services"]["worker"]["environment"] == {"A": "1", "B": "2"}
    assert cf.where("services", "worker", "environment") == f"{path}:13"
    assert cf.where("services", "web", "environment", "A") == f"{path}:2"  # from the anchor


def test_yaml_1_2_scalars_like_compose(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  db:\n    image: x\n    ports: [22:22, 0755]\n    environment: {A: yes, B: on, "
                    "C: true, D: 2001-01-01, E: 010}\n")
    svc = load_compose_file(path).data["services"]["db"]
    assert svc["ports"] == ["22:22", 755]  # YAML 1.1 would read 1342 (base 60) and 493 (octal)
    assert svc["environment"] == {"A": "yes", "B": "on", "C": True, "D": "2001-01-01", "E": 10}


def test_loader_errors_are_config_errors_with_the_source_name(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(ConfigError) as err:
        load_compose_file(path, "shown/c.yml")
    assert str(err.value) == "shown/c.yml:2: a: duplicate key (first set on line 1); remove one of them"



# --- any Compose-shaped input: a result or a ScaleoutError, never a traceback -----------------------------

_nasty = st.sampled_from([
    "8000:5000", "127.0.0.1:80:8080", "5000/udp", "${PORT:-5000}", "${X:?no}", "$$", "${", "a\0b", "./app", "../up",
    "/etc", "~/x", ".", "data:/data", "./c:/c:ro", "a:b:c:d", "CMD", "CMD-SHELL", "NONE", "curl -f http://localhost/",
    "1m30s", "500ms", "x" * 200, "", " ", "lb", "backend-1", "web", "redis", "service_healthy", "a\nb", "🙂",
])
_scalar = st.one_of(_nasty, st.integers(-5, 70000), st.booleans(), st.none(), st.floats(allow_nan=True),
                    st.text(max_size=8))
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.one_of(_nasty, st.text(max_size=6)), inner,
                                                                       max_size=4)), max_leaves=12)
# plausible shapes for each key, so that many examples get through to the mapping
_PLAUSIBLE = {
    "build": st.sampled_from(["./app", "app", {"context": "app", "args": ["BASE_IMAGE=x:1", "A=1"]}, "../up"]),
    "image": st.sampled_from(["redis:7", "acme/web:${TAG:-1}", "ghcr.io/a/b@sha256:" + "a" * 64]),
    "ports": st.lists(st.sampled_from(["5000", "8000:5000", 5000, "127.0.0.1::80", {"target": 80, "published": 8080},
                                       "${P:-1}:2"]), max_size=3),
    "expose": st.lists(st.sampled_from(["5000", 80, "9000/udp"]), max_size=2),
    "healthcheck": st.fixed_dictionaries({}, optional={
        "test": st.sampled_from([["CMD", "curl", "-f", "http://localhost:5000/h"], "wget -q http://127.0.0.1/",
                                 ["CMD-SHELL", "exit 0"], ["NONE"], "a\nb"]),
        "interval": st.sampled_from(["5s", "1m", "0s", 5, "2h"]), "retries": st.sampled_from([0, 3, "x"])}),
    "environment": st.one_of(st.lists(st.sampled_from(["A=1", "B", "C=${X:-y}", "D=$$"]), max_size=3),
                             st.dictionaries(st.sampled_from(["A", "b.c", "D"]), _scalar, max_size=3)),
    "env_file": st.sampled_from([".env", ["a.env", {"path": "b.env", "required": False}], "/etc/passwd"]),
    "depends_on": st.sampled_from([["db"], {"db": {"condition": "service_healthy"}}, ["web", "cache"]]),
    "deploy": st.sampled_from([{"replicas": 2}, {"resources": {"limits": {"memory": "1G", "cpus": "1"}}},
                               {"mode": "global"}]),
    "volumes": st.lists(st.sampled_from(["data:/d", "./c:/c:ro", "/abs:/a", "/anon", {"type": "tmpfs", "target": "/t"},
                                         {"type": "bind", "source": "./x", "target": "/x"}]), max_size=3),
    "command": st.sampled_from(["run it", ["run", "it"]]),
}
_KEYS = ("build", "image", "ports", "expose", "healthcheck", "environment", "env_file", "depends_on", "deploy",
         "volumes", "command", "container_name", "network_mode", "profiles", "scale", "mem_limit", "x-ext",
         "unknown_key")


def _service_with(required: tuple[str, ...]) -> st.SearchStrategy:
    def field(key: str) -> st.SearchStrategy:
        return st.one_of(*[_PLAUSIBLE.get(key, _value)] * 4, _value)  # mostly plausible, now and then anything

    return st.fixed_dictionaries({k: field(k) for k in required},
                                 optional={k: field(k) for k in _KEYS if k not in required})


_service = st.one_of(_service_with(("image",)), _service_with(()))
_compose = st.fixed_dictionaries({"services": st.fixed_dictionaries({"web": _service_with(("build",))},
                                                                   optional={"db": _service, "w_1": _service})},
                                 optional={"name": _value, "volumes": _value, "networks": _value, "secrets": _value,
                                           "include": _value})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=_compose, service=st.sampled_from([None, "web", "web"]))
def test_any_compose_shape_gives_a_result_or_a_clear_error(tmp_path, data, service):
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.12-slim\nFROM ${BASE_IMAGE}\nEXPOSE 5000\n")
    path = root / "compose.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        adoption = adopt(path, service=service, env={})
    except ScaleoutError as exc:
        event(type(exc).__name__)
        assert int(exc.exit_code) == 2
        assert str(exc).strip()
        return
    event("adopted")
    text = adoption.text()
    assert yaml.safe_load(text) == adoption.data
    assert all("\n" not in n for n in adoption.notes)
    assert [line for line in text.splitlines() if line.startswith("#   - ")] == [f"#   - {n}" for n in adoption.notes]
