"""`up --watch`: every rebuild the watch loop rolls out uses the same command-line values as the first `up`
(a fake target records the configuration each deploy was given; no engine)."""

from __future__ import annotations

import json

import pytest

import scaleout.cli.stack as stack_cli
from scaleout.cli.app import main


class _Status:
    replicas: list = []

    def to_dict(self) -> dict:
        return {"replicas": []}


class _Stack:
    def __init__(self, seen: list, cfg) -> None:
        self.seen, self.cfg = seen, cfg

    def preflight(self) -> None:
        pass

    def up(self, plan, **_kw) -> _Status:
        self.seen.append((self.cfg, plan))
        return _Status()


@pytest.fixture
def fake_engine(monkeypatch):
    seen: list = []
    import scaleout.targets as targets
    import scaleout.watch as watch

    monkeypatch.setattr(targets, "open_target", lambda tgt, cfg, **kw: _Stack(seen, cfg))
    monkeypatch.setattr(stack_cli, "balancer_nginx_version", lambda cfg: (1, 22, 1))

    def one_change(folder, dockerfile, deploy, **kw):  # the watch loop: one saved change, then Ctrl-C
        deploy()
        return 1

    monkeypatch.setattr(watch, "watch_backend", one_change)
    return seen


def _project(tmp_path):
    from scaleout.scaffold import init_project

    init_project(tmp_path / "watched", "python")
    return tmp_path / "watched"


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        (["--tls"], {"tls": "local", "replicas": 3, "port": 8080}),
        (["--replicas", "2", "--port", "9091", "--strategy", "least_conn"],
         {"tls": None, "replicas": 2, "port": 9091, "strategy": "least_conn"}),
    ],
)
def test_up_watch_rolls_out_each_change_with_the_flags_of_up(tmp_path, fake_engine, capsys, flags, expect):
    proj = _project(tmp_path)
    main(["-q", "-C", str(proj), "up", "--json", "--watch", *flags])  # returns: the watch loop ended
    assert json.loads(capsys.readouterr().out) == {"replicas": []}
    assert len(fake_engine) == 2  # the first `up`, then the rebuild of the one change
    for cfg, plan in fake_engine:
        got = {"tls": cfg.balancer.tls, "replicas": cfg.backend.replicas, "port": cfg.balancer.port,
               "strategy": cfg.balancer.strategy}
        assert {k: got[k] for k in expect} == expect
        assert ("ssl_certificate" in plan.files[".scaleout/nginx/nginx.conf"]) == (expect["tls"] == "local")
