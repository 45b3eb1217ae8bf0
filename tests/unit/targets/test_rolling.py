"""The rolling update's decisions without an engine: which replicas need replacing (from `docker inspect`
shaped data), batches, the interim upstream nginx gets, and the config keys that steer it."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.errors import ConfigError
from scaleout.render.nginx import render_nginx, render_watch_env
from scaleout.targets.rolling import batches, is_current, parse_hashes, plan_update, upstream
from scaleout.targets.views import ContainerView

OLD_IMAGE = "sha256:" + "a" * 64
NEW_IMAGE = "sha256:" + "b" * 64
HASH = "1" * 64
OTHER_HASH = "2" * 64


def inspect(service: str, number: int = 1, *, image: str = NEW_IMAGE, config_hash: str = HASH,
            status: str = "running", health: str = "healthy") -> ContainerView:
    """The parts of `docker inspect` of a Compose replica that the update reads."""
    return ContainerView({
        "Id": f"{service}-{number}-id",
        "Name": f"/demo-{service}-{number}",
        "Image": image,
        "Config": {"Labels": {
            "com.docker.compose.project": "demo",
            "com.docker.compose.service": service,
            "com.docker.compose.container-number": str(number),
            "com.docker.compose.config-hash": config_hash,
            "io.scaleout.project": "demo",
            "io.scaleout.role": "backend",
        }},
        "State": {"Status": status, "Health": {"Status": health}},
    })


def test_a_new_image_or_new_settings_roll_a_running_replica_and_nothing_else():
    wanted = ["backend-1", "backend-2", "backend-3", "backend-4"]
    by_service = {
        "backend-1": [inspect("backend-1")],  # current
        "backend-2": [inspect("backend-2", image=OLD_IMAGE)],  # rebuilt image
        "backend-3": [inspect("backend-3", config_hash=OTHER_HASH)],  # settings changed
        # backend-4 does not exist yet (a rescale)
    }
    hashes = {f"backend-{i}": HASH for i in range(1, 5)}
    plan = plan_update(wanted, by_service, hashes, NEW_IMAGE)
    assert plan.keep == ["backend-1"]
    assert plan.roll == ["backend-2", "backend-3"]
    assert plan.start == ["backend-4"]
    assert plan.retire == [] and plan.discard == []


def test_nothing_changed_means_no_change():
    wanted = ["backend-1", "backend-2"]
    by_service = {s: [inspect(s)] for s in wanted}
    plan = plan_update(wanted, by_service, dict.fromkeys(wanted, HASH), NEW_IMAGE)
    assert plan.keep == wanted and not plan.changes


def test_a_stopped_replica_is_started_by_compose_not_rolled():
    plan = plan_update(["backend-1"], {"backend-1": [inspect("backend-1", image=OLD_IMAGE, status="exited")]},
                       {"backend-1": HASH}, NEW_IMAGE)
    assert plan.start == ["backend-1"] and plan.roll == []


def test_an_interrupted_update_keeps_the_current_running_container_and_drains_the_other():
    old = inspect("backend-1", 1, image=OLD_IMAGE)
    new = inspect("backend-1", 2)
    gone = inspect("backend-2", 1, image=OLD_IMAGE, status="exited")
    live = inspect("backend-2", 2)
    plan = plan_update(["backend-1", "backend-2"], {"backend-1": [old, new], "backend-2": [gone, live]},
                       {"backend-1": HASH, "backend-2": HASH}, NEW_IMAGE)
    assert plan.keep == ["backend-1", "backend-2"]
    assert plan.retire == ["demo-backend-1-1"]  # running: out of nginx, drained, then stopped
    assert plan.discard == ["demo-backend-2-1"]  # not running: removed at once


def test_unknown_hash_or_image_counts_as_current():
    v = inspect("backend-1", image=OLD_IMAGE, config_hash=OTHER_HASH)
    assert is_current(v, None, None)
    assert not is_current(v, None, NEW_IMAGE)
    assert not is_current(v, HASH, None)


@pytest.mark.parametrize("parallelism, max_surge, expected", [
    (1, 1, [["backend-1"], ["backend-2"], ["backend-3"]]),
    (2, 2, [["backend-1", "backend-2"], ["backend-3"]]),
    (3, 1, [["backend-1"], ["backend-2"], ["backend-3"]]),  # one new container at a time caps the batch
    (5, 5, [["backend-1", "backend-2", "backend-3"]]),
])
def test_batches(parallelism, max_surge, expected):
    assert batches(["backend-1", "backend-2", "backend-3"], parallelism, max_surge) == expected


def test_hashes_are_read_from_compose_output_among_warnings():
    out = ["The Docker Engine you're using is running in swarm mode.", "", f"backend-1 {HASH}", f"lb {OTHER_HASH}",
           "backend-2 not-a-hash"]
    assert parse_hashes(out) == {"backend-1": HASH, "lb": OTHER_HASH}


def upstream_servers(conf: str, tmp_path: Path) -> list[str]:
    """The `server` addresses of the upstream block, as nginx's own grammar (crossplane) reads them."""
    import crossplane

    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    parsed = crossplane.parse(str(path), single=True, check_ctx=True, check_args=True)
    assert parsed["status"] == "ok", parsed["errors"]
    http = next(d for d in parsed["config"][0]["parsed"] if d["directive"] == "http")["block"]
    block = next(d for d in http if d["directive"] == "upstream")["block"]
    return [d["args"][0] for d in block if d["directive"] == "server"]


def _config(tmp_path: Path, text: str):
    return parse_config(text, tmp_path)


def test_the_interim_upstream_names_both_containers_with_the_replicas_weight(tmp_path):
    cfg = _config(tmp_path, "name: demo\nbackend:\n  replicas: 3\n  weights: {backend-2: 3}\n  backup: [backend-3]\n")
    servers = upstream(cfg, {"backend-2": ["demo-backend-2-1", "demo-backend-2-2"]})
    assert [(s.name, s.weight, s.backup) for s in servers] == [
        ("backend-1", 1, False), ("demo-backend-2-1", 3, False), ("demo-backend-2-2", 3, False),
        ("backend-3", 1, True)]
    conf = render_nginx(cfg, replicas=servers)
    assert upstream_servers(conf, tmp_path) == ["backend-1:8000", "demo-backend-2-1:8000", "demo-backend-2-2:8000",
                                      "backend-3:8000"]
    assert "server demo-backend-2-2:8000 weight=3 " in conf
    assert 'REPLICAS="backend-1 demo-backend-2-1 demo-backend-2-2 backend-3"' in render_watch_env(cfg, servers)
    # without interim entries: exactly the rendered file
    assert render_nginx(cfg, replicas=upstream(cfg, {})) == render_nginx(cfg)


def test_update_keys_default_and_validate(tmp_path):
    cfg = _config(tmp_path, "name: demo\n")
    assert (cfg.backend.update.parallelism, cfg.backend.update.max_surge) == (1, 1)
    cfg = _config(tmp_path, "name: demo\nbackend:\n  update:\n    parallelism: 2\n    max_surge: 3\n")
    assert (cfg.backend.update.parallelism, cfg.backend.update.max_surge) == (2, 3)
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, "name: demo\nbackend:\n  update:\n    max_surge: 0\n")
    assert "scaleout.yaml:4: backend.update.max_surge:" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, "name: demo\nbackend:\n  update:\n    order: stop-first\n")
    assert "backend.update.order: unknown key" in str(err.value)


def test_status_says_in_lb_only_for_the_container_the_balancer_routes():
    from scaleout.targets.balancer import routed_to
    from scaleout.targets.status import ServiceStatus

    def row(container: str, address: str) -> ServiceStatus:
        return ServiceStatus("backend-2", container, "running", "healthy", address, "backend")

    # during an update: by container name
    during = [["demo-backend-2-1", "down", "127.0.0.1:9"], ["demo-backend-2-2", "up", "10.0.0.7:8000"]]
    assert not routed_to(row("demo-backend-2-1", "10.0.0.5:8000"), during)
    assert routed_to(row("demo-backend-2-2", "10.0.0.7:8000"), during)
    # by service name: only the container at the address the balancer answered from
    by_service = [["backend-2", "up", "10.0.0.7:8000"]]
    assert routed_to(row("demo-backend-2-2", "10.0.0.7:8000"), by_service)
    assert not routed_to(row("demo-backend-2-1", "10.0.0.5:8000"), by_service)
    assert not routed_to(row("demo-backend-2-2", "10.0.0.7:8000"), [["backend-2", "down", "10.0.0.7:8000"]])
    assert not routed_to(row("demo-backend-2-2", "10.0.0.7:8000"), [["backend-1", "up", "10.0.0.3:8000"]])
