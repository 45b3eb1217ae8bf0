"""WebSockets in the rendered balancer: the Upgrade/Connection mapping, the location with its own idle
timeout, the bounded shutdown of old workers after a reload, and `balancer.websocket_timeout`'s
validation. The behaviour itself is tested through real stacks in tests/e2e/test_websocket.py, and
the rendered file in the balancer image (nginx -t, the headers a replica gets) in tests/e2e/test_websocket_nginx.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import crossplane
import pytest

from scaleout.config.load import parse_config
from scaleout.errors import ConfigError
from scaleout.render.nginx import render_nginx
from scaleout.render.swarm import swarm_nginx
from tests.helpers import run_cli

P = Path("/tmp/ws-project")


def cfg(balancer: str = ""):
    return parse_config(f"name: ws\nbalancer: {{{balancer}}}\n", P, env={})


def parsed(conf: str, tmp_path: Path) -> list[dict]:
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    out = crossplane.parse(str(path), check_ctx=True, check_args=True, single=True, comments=False)
    assert out["status"] == "ok", out["errors"]
    return out["config"][0]["parsed"]


def find(block: list[dict], directive: str, *args: str) -> list[dict]:
    return [d for d in block if d["directive"] == directive and tuple(d["args"][:len(args)]) == args]


def one(block: list[dict], directive: str, *args: str) -> dict:
    found = find(block, directive, *args)
    assert len(found) == 1, (directive, args, found)
    return found[0]


def values(block: list[dict], directive: str) -> list[list[str]]:
    return [d["args"] for d in find(block, directive)]


def locations(conf: str, tmp_path: Path) -> tuple[list[dict], list[dict], dict[str, list[dict]]]:
    main = parsed(conf, tmp_path)
    http = one(main, "http")["block"]
    server = one(http, "server")["block"]
    return main, http, {" ".join(d["args"]): d["block"] for d in find(server, "location")}


def test_the_default_timeout_is_an_hour_and_bounded():
    assert cfg().balancer.websocket_timeout == 3600
    assert cfg("websocket_timeout: 86400").balancer.websocket_timeout == 86400
    for bad in ("0", "86401", "-5", "forever"):
        with pytest.raises(ConfigError, match=r"scaleout.yaml:2: balancer.websocket_timeout"):
            cfg(f"websocket_timeout: {bad}")


def test_handshakes_are_mapped_and_plain_requests_keep_an_empty_connection_header(tmp_path):
    _, http, locs = locations(render_nginx(cfg("read_timeout: 45, websocket_timeout: 900")), tmp_path)
    mapping = one(http, "map", "$http_upgrade", "$connection_upgrade")["block"]
    assert {d["directive"]: d["args"] for d in mapping} == {"default": [""], "~*^websocket$": ["upgrade"]}

    plain = locs["/"]
    assert values(plain, "error_page") == [["418", "=", "@websocket"]]
    divert = one(plain, "if")
    assert divert["args"] == ["$connection_upgrade"] and divert["block"] == [
        {"directive": "return", "line": divert["block"][0]["line"], "args": ["418"]}]
    assert ["Connection", ""] in values(plain, "proxy_set_header")
    assert not [h for h in values(plain, "proxy_set_header") if h[0] == "Upgrade"]
    assert values(plain, "proxy_read_timeout") == [["45s"]]

    ws = locs["@websocket"]
    headers = values(ws, "proxy_set_header")
    assert ["Upgrade", "$http_upgrade"] in headers and ["Connection", "$connection_upgrade"] in headers
    assert values(ws, "proxy_http_version") == [["1.1"]]
    assert values(ws, "proxy_pass") == [["http://backend"]]
    assert values(ws, "proxy_read_timeout") == [["900s"]]
    assert values(ws, "proxy_send_timeout") == [["45s"]]
    # everything else a replica sees is the same for both kinds of request
    same = ("Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id")
    assert [h for h in headers if h[0] in same] == [h for h in values(plain, "proxy_set_header") if h[0] in same]
    for d in ("proxy_connect_timeout", "proxy_next_upstream", "proxy_next_upstream_tries", "add_header"):
        assert values(ws, d) == values(plain, d), d


@pytest.mark.parametrize("balancer, expected", [("", "3600s"), ("websocket_timeout: 30, read_timeout: 120", "120s")])
def test_old_workers_keep_connections_for_a_bounded_time(tmp_path, balancer, expected):
    main, _, _ = locations(render_nginx(cfg(balancer)), tmp_path)
    assert values(main, "worker_shutdown_timeout") == [[expected]]


def test_the_swarm_balancer_resolves_tasks_for_websockets_too(tmp_path):
    _, _, locs = locations(swarm_nginx(cfg()), tmp_path)
    for name in ("/", "@websocket"):
        assert values(locs[name], "set") == [["$scaleout_backend", "tasks.backend"]], name
        assert values(locs[name], "proxy_pass") == [["http://$scaleout_backend:8000"]], name


def test_gixy_finds_nothing_with_websockets(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx(cfg("websocket_timeout: 120")))
    r = subprocess.run([sys.executable, "-m", "gixy", "-f", "json", str(conf)], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout) == [], r.stdout


def test_a_bad_timeout_exits_2_and_writes_nothing(tmp_path):
    root = tmp_path / "p"
    run_cli(["init", str(root), "--name", "p"], tmp_path, check=True)
    cfg_file = root / "scaleout.yaml"
    cfg_file.write_text(cfg_file.read_text().replace("balancer:\n", "balancer:\n  websocket_timeout: 0\n", 1))
    r = run_cli(["render"], root)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "balancer.websocket_timeout" in r.stderr and "Traceback" not in r.stderr
    assert not (root / ".scaleout").exists()
