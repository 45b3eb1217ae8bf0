"""The Swarm pin route: with the stack's secret a request names one task of the backend service by its
container name (resolved by the engine's DNS); no other name can be pinned, and without a secret the Swarm
nginx.conf is what it was. The secret reaches only the 0600 copy of nginx.conf, never an export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.render import plan_for
from scaleout.render.nginx import render_nginx
from scaleout.render.swarm import render_swarm, swarm_nginx
from tests.unit.replay.test_pin import _locations

SECRET = "ab" * 32


def _cfg(tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "public").mkdir(exist_ok=True)
    (tmp_path / "public" / "offline.html").write_text("offline\n")
    return parse_config("name: rp-1\nbackend:\n  build: .\n  port: 8000\n  replicas: 2\n", tmp_path)


def _pin_regex(text: str) -> re.Pattern:
    """The pin map's one regex key, as nginx (PCRE) reads it."""
    m = re.search(r'^\s*"~(\^[^"]+)" \$1;$', text, re.M)
    assert m, "the Swarm nginx.conf has a regex pin map key"
    return re.compile(m.group(1))


def test_no_secret_no_route(tmp_path):
    text = swarm_nginx(_cfg(tmp_path))
    assert "scaleout_pin" not in text and "X-Scaleout-Pin" not in text and "@pinned" not in text


def test_only_a_task_of_this_stacks_backend_can_be_pinned(tmp_path):
    pin = _pin_regex(swarm_nginx(_cfg(tmp_path), pin=SECRET))
    task = "rp-1_backend.2.x3kq8w0v1c9r2m4n7p5s6t8u0"
    assert pin.fullmatch(f"{SECRET}:{task}").group(1) == task
    for bad in (
        f"{'0' * 64}:{task}",  # another secret
        f"{SECRET}:rp-1_redis.1.x3kq8w0v1c9r2m4n7p5s6t8u0",  # another service of the stack
        f"{SECRET}:other_backend.1.x3kq8w0v1c9r2m4n7p5s6t8u0",  # another stack
        f"{SECRET}:rp-1_backend.2.x3kq8w0v1c9r2m4n7p5s6t8u0.evil.example",
        f"{SECRET}:10.0.1.5",  # an address
        f"{SECRET}:rp-1_backend.2.x3kq8w0v1c9r2m4n7p5s6t8u0:6379",
        f"{SECRET}:rp-1Xbackend.2.x3kq8w0v1c9r2m4n7p5s6t8u0",  # the '-' and '_' are literal
    ):
        assert not pin.search(bad), bad


def test_every_location_to_the_tasks_drops_the_pin_header(tmp_path):
    locations = _locations(swarm_nginx(_cfg(tmp_path), pin=SECRET), tmp_path)
    to_tasks = {n: b for n, b in locations.items() if any(d["directive"] == "proxy_pass" for d in b)}
    assert {"/", "@websocket", "@pinned"} <= set(to_tasks)
    for name, block in to_tasks.items():
        assert ["X-Scaleout-Pin", ""] in [d["args"] for d in block if d["directive"] == "proxy_set_header"], name
    pinned = {d["directive"]: d["args"] for d in to_tasks["@pinned"]}
    assert pinned["proxy_pass"] == ["http://$scaleout_pin:8000"] and pinned["resolver"][0] == "127.0.0.11"


def test_a_dynamic_pin_route_needs_the_service_name(tmp_path):
    with pytest.raises(ValueError):
        render_nginx(_cfg(tmp_path), {"target": "t", "host": "tasks.backend", "resolver": "127.0.0.11",
                                      "valid": 5}, pin=SECRET)


def test_up_plan_carries_the_secret_in_a_0600_nginx_conf_export_does_not(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_for("swarm", cfg, None, pin=SECRET)
    conf = ".scaleout/swarm/nginx.conf"
    assert SECRET in plan.files[conf] and plan.modes[conf] == 0o600
    assert SECRET not in "".join(render_swarm(cfg).values())
    assert conf not in plan_for("swarm", cfg, None).modes  # no secret in it: as before


def test_on_compose_too_the_nginx_conf_holding_the_secret_is_its_owners_only(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_for("compose", cfg, None, pin=SECRET)
    conf = ".scaleout/nginx/nginx.conf"
    assert SECRET in plan.files[conf] and plan.modes[conf] == 0o600
    assert conf not in plan_for("compose", cfg, None).modes  # `scaleout render`: no secret, as before
