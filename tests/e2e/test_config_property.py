"""Property test: every accepted config renders to files that parse (YAML) and pass `nginx -t` (in the
balancer image, on the engine: hence e2e); every rejected one fails with a ConfigError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scaleout.config.load import parse_config
from scaleout.errors import ConfigError
from scaleout.layout import COMPOSE_FILE, NGINX_CONF
from scaleout.render.compose import render

PROJECT = Path("/tmp/scaleout-property/proj")

# hostile or odd scalars mixed with plausible ones
nasty = st.sampled_from([
    "8080; include /etc/passwd", "a\nb", "'\"", "{{ x }}", "${HOME}", "$$", "../..", "/etc", "", " ", "x" * 300,
    "backend-1", "0.0.0.0", "::1", "10m", "$cookie_session", "-1", "1e9", "nginx:1.27", "UPPER",
])
scalar = st.one_of(nasty, st.integers(-5, 70000), st.booleans(), st.none(), st.text(max_size=12),
                   st.floats(allow_nan=False))
small_int = st.one_of(st.integers(-2, 40), scalar)


def section(fields: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional=fields)


configs = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z"), scalar),
    "backend": st.one_of(scalar, section({
        "build": st.one_of(st.sampled_from(["backend", "./app", "src/api"]), scalar),
        "port": st.one_of(st.integers(1, 65535), scalar),
        "replicas": small_int,
        "health": st.one_of(scalar, section({
            "path": st.one_of(st.sampled_from(["/healthz", "/", "/a/b-c_d.e"]), scalar),
            "interval": small_int, "retries": small_int,
            "command": st.one_of(st.sampled_from(["true", "curl -f http://127.0.0.1:8000/"]), scalar),
        })),
        "env": st.one_of(scalar, st.dictionaries(st.one_of(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,8}\Z"), nasty),
                                                 scalar, max_size=3)),
        "weights": st.one_of(scalar, st.dictionaries(st.sampled_from(["backend-1", "backend-2", "web"]), small_int,
                                                     max_size=2)),
        "backup": st.one_of(scalar, st.lists(st.sampled_from(["backend-2", "backend-3", "x"]), max_size=2)),
    })),
    "balancer": st.one_of(scalar, section({
        "port": st.one_of(st.integers(1, 65535), scalar),
        "bind": st.one_of(st.sampled_from(["127.0.0.1", "0.0.0.0", "::1"]), scalar),
        "strategy": st.one_of(st.sampled_from(["round_robin", "least_conn", "ip_hash", "hash", "random"]), scalar),
        "hash_key": st.one_of(st.sampled_from(["$cookie_session", "$arg_user", "$remote_addr"]), scalar),
        "retries": small_int, "keepalive": small_int, "connect_timeout_ms": small_int,
        "client_max_body_size": st.one_of(st.sampled_from(["1m", "512k", "100"]), scalar),
    })),
    "static": st.one_of(scalar, section({
        "dir": st.one_of(st.sampled_from(["public", "web/static", "."]), scalar),
        "routes": st.one_of(scalar, st.lists(
            st.one_of(st.sampled_from(["/static/", "/a.html", "/assets/", "/"]), nasty), max_size=4)),
        "service_workers": st.one_of(scalar, st.lists(st.sampled_from(["/sw.js", "/service-worker.js"]), max_size=2)),
        "worker_scope": st.one_of(st.sampled_from(["/", "/app/"]), scalar),
        "generate_worker": st.booleans(),
    })),
    "images": st.one_of(scalar, section({
        "balancer": st.one_of(st.sampled_from(["nginx:1.27", "registry.local:5000/team/lb:1"]), scalar),
        "base": st.one_of(st.sampled_from(["python:3.12-slim", "node:20-slim"]), scalar),
    })),
})


@pytest.mark.e2e
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_accepted_configs_render_valid_files_and_rejected_ones_fail_cleanly(nginx_checker, data):
    text = yaml.safe_dump(data)
    try:
        cfg = parse_config(text, PROJECT, env={})
    except ConfigError as exc:
        event("rejected")
        assert str(exc).strip()
        assert all(line.startswith("scaleout.yaml") for line in exc.problems)
        return
    event("accepted")
    files = render(cfg, worker="// worker\n")
    compose = yaml.safe_load(files[COMPOSE_FILE])
    assert len([s for s in compose["services"] if s.startswith("backend-")]) == cfg.replicas
    ok, out = nginx_checker.check(files[NGINX_CONF])
    assert ok, f"{data!r}\n{out}\n{files[NGINX_CONF]}"


STRATEGIES = ("round_robin", "least_conn", "ip_hash", "hash", "random")
ROUTE = r"\A/[a-z0-9_~-][a-z0-9._~-]{0,9}/?\Z"


@st.composite
def valid_configs(draw, strategy: str) -> dict:
    """A config inside every documented rule for `strategy`: weights everywhere, backups where nginx allows
    them (round_robin, least_conn; at least one primary), hash keys that name a request variable."""
    replicas = draw(st.integers(1, 8))
    names = [f"backend-{i}" for i in range(1, replicas + 1)]
    backend: dict = {
        "replicas": replicas,
        "port": draw(st.integers(1, 65535)),
        "health": draw(section({"path": st.from_regex(r"\A/[a-z0-9_~-][a-z0-9._~/-]{0,20}\Z"),
                                "interval": st.integers(1, 300), "retries": st.integers(1, 100),
                                "start_period": st.integers(0, 3600)})),
        "env": draw(st.dictionaries(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,8}\Z"),
                                    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=20),
                                    max_size=3)),
        "weights": draw(st.dictionaries(st.sampled_from(names), st.integers(1, 100), max_size=3)),
        "drain_seconds": draw(st.integers(0, 300)),
    }
    if strategy in ("round_robin", "least_conn") and replicas > 1:
        backend["backup"] = draw(st.lists(st.sampled_from(names), max_size=replicas - 1, unique=True))
    balancer = {
        "strategy": strategy,
        "port": draw(st.integers(1, 65535)),
        "bind": draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "192.168.1.10"])),
        "max_fails": draw(st.integers(0, 100)), "fail_timeout": draw(st.integers(1, 3600)),
        "connect_timeout_ms": draw(st.integers(50, 60000)), "read_timeout": draw(st.integers(1, 3600)),
        "retries": draw(st.integers(1, 10)), "keepalive": draw(st.integers(0, 1024)),
        "client_max_body_size": draw(st.from_regex(r"\A[1-9][0-9]{0,5}[kKmM]?\Z")),
    }
    if strategy == "hash":
        balancer["hash_key"] = draw(st.one_of(st.from_regex(r"\A\$(cookie|arg|http)_[a-z0-9_]{1,12}\Z"),
                                              st.sampled_from(["$remote_addr", "$request_uri", "$host"])))
    static = draw(section({
        "dir": st.sampled_from(["public", "web/static", "a/b/c"]),  # "." publishes the project: refused
        "routes": st.lists(st.from_regex(ROUTE), max_size=5, unique=True),
        "service_workers": st.lists(st.from_regex(r"\A/[a-z0-9-]{1,10}\.js\Z"), max_size=2, unique=True),
        "worker_scope": st.from_regex(r"\A/[a-z0-9/-]{0,10}\Z"),
        "generate_worker": st.booleans(),
        "offline_page": st.from_regex(r"\A/[a-z0-9-]{1,10}\.html\Z"),
    }))
    name = draw(st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z"))
    return {"name": name, "backend": backend, "balancer": balancer, "static": static}


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_configs_of_every_strategy_are_accepted_and_pass_nginx_t(nginx_checker, strategy, data):
    config = data.draw(valid_configs(strategy))
    try:
        cfg = parse_config(yaml.safe_dump(config), PROJECT, env={})
    except ConfigError as exc:
        raise AssertionError(f"a valid config was rejected: {exc.problems}\n{config!r}") from None
    assert cfg.balancer.strategy == strategy
    event(f"{strategy}: {'weights ' if cfg.backend.weights else ''}{'backup' if cfg.backend.backup else ''}".strip())
    files = render(cfg, worker="// worker\n")
    compose = yaml.safe_load(files[COMPOSE_FILE])
    assert len([s for s in compose["services"] if s.startswith("backend-")]) == cfg.replicas
    text = files[NGINX_CONF]
    upstream = text.split("upstream backend {", 1)[1].split("}", 1)[0]
    assert upstream.count(" server ") == cfg.replicas  # every replica, named once
    assert upstream.count(" backup;") == len(cfg.backend.backup)
    ok, out = nginx_checker.check(text)
    assert ok, f"{config!r}\n{out}\n{text}"
