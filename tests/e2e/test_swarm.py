"""The Swarm target on a real single-node swarm: up 3 -> probe -> rescale to 4 under load -> down.

The `swarm` fixture turns the engine into a single-node swarm when it is not one yet, and leaves it
so: other projects share the engine, and Compose keeps working in swarm mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time

import docker
import pytest

from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.e2e
NS = "com.docker.stack.namespace"


@pytest.fixture(scope="session")
def swarm(docker_engine):
    state = docker_engine.info()["Swarm"]
    if state.get("LocalNodeState") != "active":
        r = subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], capture_output=True, text=True, timeout=60
        )
        state = docker_engine.info()["Swarm"]
        # another test process may have made the swarm at the same moment ("already part of a swarm")
        assert r.returncode == 0 or state.get("LocalNodeState") == "active", r.stderr
    if not state.get("ControlAvailable"):
        pytest.fail("the engine is a swarm worker; the e2e tests need a manager")
    return docker_engine


@pytest.fixture
def swarm_project(make_project, swarm):
    made = []

    def factory(**kw):
        p = make_project(**kw)
        made.append(p)
        return p

    yield factory
    for p in made:  # by the stack's label, whatever the test left
        subprocess.run(["docker", "stack", "rm", p.name], capture_output=True, timeout=60)
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda p=p: not swarm.containers.list(all=True, sparse=True, filters={"label": f"{NS}={p.name}"}),
                timeout=60,
                what="stack containers to go",
            )
        for obj in swarm.networks.list(filters={"label": f"{NS}={p.name}"}) + swarm.configs.list(
            filters={"label": f"{NS}={p.name}"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                obj.remove()


def _services(client, project: str) -> dict:
    return {s.name.split("_", 1)[1]: s for s in client.services.list(filters={"label": f"{NS}={project}"})}


def _running_task_ids(service) -> set[str]:
    return {t["ID"] for t in service.tasks(filters={"desired-state": "running"})}


def test_swarm_whole_loop(swarm_project, swarm):
    p = swarm_project()
    r = p.cli("up", "--target", "swarm", "--replicas", "3", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "every interface" in r.stderr  # says plainly that Swarm cannot publish on 127.0.0.1 only
    assert f"ready: http://127.0.0.1:{p.port}/" in r.stdout

    services = _services(swarm, p.name)
    assert sorted(services) == ["backend", "lb"]
    spec = services["backend"].attrs["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 3
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"][0] == "CMD-SHELL"
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    m = re.fullmatch(rf"scaleout/{p.name}-backend:([0-9a-f]{{16}})", image)
    assert m and swarm.images.get(image).id.split(":")[1].startswith(m.group(1))  # tagged by content
    lb_spec = services["lb"].attrs["Spec"]
    (conf,) = lb_spec["TaskTemplate"]["ContainerSpec"]["Configs"]
    assert (
        conf["ConfigName"].startswith(f"{p.name}_nginx_") and conf["File"]["Name"] == "/etc/scaleout/nginx/nginx.conf"
    )
    assert lb_spec["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"

    # probe and status find the swarm deployment by themselves (the target of the last `up`)
    r = p.cli("probe", "--json", "--requests", "600")
    res = json.loads(r.stdout)
    assert r.returncode == 0 and res["verdict"] == "pass", r.stdout + r.stderr
    assert res["failed"] == 0 and res["ok"] == 600
    assert sorted(b["name"] for b in res["backends"]) == ["backend-1", "backend-2", "backend-3"]
    # the cache headers hold on Swarm too, fingerprinted assets linked from / included
    kinds = {c["kind"] for c in res["cache_checks"] if c["ok"]}
    assert {"service_worker", "offline_page", "fingerprinted_asset"} <= kinds, res["cache_checks"]
    st = json.loads(p.cli("status", "--json", "--target", "swarm", check=True).stdout)
    assert [x["service"] for x in st["replicas"]] == ["backend-1", "backend-2", "backend-3"]
    assert all(x["state"] == "running" and x["health"] == "healthy" for x in st["replicas"])
    assert st["url"] == p.url and st["balancer"]["state"] == "running"
    addresses = {b["address"] for b in res["backends"]}
    assert addresses == {x["address"] for x in st["replicas"]}  # attribution is by task IP

    # rescale to 4 while hey keeps 8 connections busy: no failed request, the balancer untouched
    lb_tasks = _running_task_ids(services["lb"])
    hey = subprocess.Popen(
        ["hey", "-z", "120s", "-c", "8", p.url + "/"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        time.sleep(1.0)
        r = p.cli("up", "--target", "swarm", "--replicas", "4", timeout=400)
        assert r.returncode == 0, r.stdout + r.stderr
        time.sleep(2.0)  # the new task takes traffic under load too
    finally:
        hey.send_signal(signal.SIGINT)  # hey prints its summary on interrupt
        out, _ = hey.communicate(timeout=30)
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    assert codes and set(codes) == {"200"}, out
    assert int(codes["200"]) > 100, out
    assert "Error distribution" not in out, out
    assert _running_task_ids(_services(swarm, p.name)["lb"]) == lb_tasks

    res = json.loads(p.cli("probe", "--json", "--requests", "800", check=True).stdout)
    assert sorted(b["name"] for b in res["backends"]) == [f"backend-{i}" for i in range(1, 5)]

    r = p.cli("down", "--target", "swarm")
    assert r.returncode == 0, r.stderr
    assert _services(swarm, p.name) == {}
    assert swarm.containers.list(all=True, sparse=True, filters={"label": f"{NS}={p.name}"}) == []
    assert swarm.networks.list(filters={"label": f"{NS}={p.name}"}) == []
    assert swarm.configs.list(filters={"label": f"{NS}={p.name}"}) == []
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert st["running"] is False


def test_registry_push_failure_is_explained_and_nothing_is_deployed(swarm_project, swarm):
    p = swarm_project()
    registry = f"127.0.0.1:{free_port()}/team"  # nothing listens there: the push fails at once, locally
    r = p.cli("up", "--target", "swarm", "--replicas", "1", "--registry", registry, timeout=400)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"pushing {registry}/{p.name}-backend:" in r.stderr and "failed" in r.stderr
    assert "every node of the swarm pulls the images from there" in r.stderr
    assert "Traceback" not in r.stderr
    tagged = [
        t for img in swarm.images.list(name=f"{registry}/{p.name}-backend") for t in img.tags if t.startswith(registry)
    ]
    assert len(tagged) == 1 and re.fullmatch(rf"{re.escape(registry)}/{p.name}-backend:[0-9a-f]{{16}}", tagged[0])
    assert _services(swarm, p.name) == {}
    for t in tagged:
        swarm.images.remove(t)  # only the tag this test made


def test_bad_registry_and_compose_registry_are_usage_errors(swarm_project):
    p = swarm_project()
    r = p.cli("up", "--target", "swarm", "--registry", "https://127.0.0.1:5999/team")
    assert r.returncode == 2 and "--registry" in r.stderr and "HOST[:PORT]/PATH" in r.stderr
    assert not (p.path / ".scaleout" / "target").exists()  # a refused command changes nothing
    r = p.cli("up", "--registry", "127.0.0.1:5999/team")
    assert r.returncode == 2 and "only for --target swarm" in r.stderr


def test_stack_file_interpolates_the_images(swarm_project):
    """What `docker stack deploy` sees (`docker stack config`, Docker CLI >= 20.10): the image
    variables, and a clear error without them."""
    p = swarm_project()
    assert p.cli("export", "swarm", "--out", "deploy", check=True).returncode == 0
    d = p.path / "deploy"
    base = {k: v for k, v in os.environ.items() if not k.startswith("SCALEOUT_")}
    env = {**base, "SCALEOUT_BACKEND_IMAGE": "a/b:1", "SCALEOUT_BALANCER_IMAGE": "a/c:1"}
    r = subprocess.run(["docker", "stack", "config", "-c", "stack.yml"], cwd=d, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "image: a/b:1" in r.stdout and "image: a/c:1" in r.stdout
    r = subprocess.run(
        ["docker", "stack", "config", "-c", "stack.yml"], cwd=d, env=base, capture_output=True, text=True
    )
    # which missing variable the Docker CLI names first depends on its map order: either says what to set
    assert r.returncode != 0 and "is missing a value" in r.stderr, r.stderr
    assert (
        "set SCALEOUT_BACKEND_IMAGE to the backend image" in r.stderr
        or "set SCALEOUT_BALANCER_IMAGE to the balancer image" in r.stderr
    ), r.stderr


REDIS_IMAGE = "scaleout-local/redis:1"


def test_swarm_with_a_redis_service_shares_the_counter_and_down_volumes_removes_its_data(swarm_project, swarm):
    """python-redis on Swarm: the service is waited for before the backend is reported ready, every
    replica counts in the same Redis, .env reaches `docker stack deploy`, the volume goes only when asked."""
    import httpx

    try:
        swarm.images.get(REDIS_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {REDIS_IMAGE} is missing: run scripts/setup-service-images.sh")
    p = swarm_project(
        template="python-redis",
        replace={
            "    REDIS_URL: redis://redis:6379/0": "    REDIS_URL: redis://redis:6379/0\n    GREETING: ${GREETING}"
        },
    )
    p.env["REDIS_IMAGE"] = REDIS_IMAGE
    (p.path / ".env").write_text("GREETING=hello-from-dotenv\n")
    volume = f"{p.name}_redis-data"
    try:
        r = p.cli("up", "--target", "swarm", "--replicas", "3", timeout=400)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "redis is ready" in r.stderr, r.stderr
        first_backend = min(r.stderr.index(f"backend-{i} is ready") for i in (1, 2, 3))
        assert r.stderr.index("redis is ready") < first_backend, r.stderr

        services = _services(swarm, p.name)
        assert sorted(services) == ["backend", "lb", "redis"]
        env = services["backend"].attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
        assert "GREETING=hello-from-dotenv" in env  # ${GREETING} resolved by stack deploy from .env
        redis_spec = services["redis"].attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert redis_spec["Image"] == REDIS_IMAGE and redis_spec["Healthcheck"]["Test"][:2] == ["CMD", "redis-cli"]
        st = json.loads(p.cli("status", "--json", check=True).stdout)
        assert [(s["service"], s["state"], s["health"]) for s in st["services"]] == [("redis", "running", "healthy")]
        assert len(st["replicas"]) == 3 and all(x["health"] == "healthy" for x in st["replicas"])

        # one session (one cookie jar) through the balancer: the count goes up whichever replica answers
        with httpx.Client(trust_env=False, timeout=10) as session:
            seen = []
            for _ in range(12):
                resp = session.get(p.url + "/api/count")
                assert resp.status_code == 200, resp.text
                seen.append((resp.json()["backend"], resp.json()["count"]))
        assert [c for _, c in seen] == list(range(1, 13)), seen
        assert len({b for b, _ in seen}) >= 2, seen  # served by different replicas, one shared counter
        assert volume in [v.name for v in swarm.volumes.list(filters={"label": f"{NS}={p.name}"})]

        r = p.cli("down", "--target", "swarm")
        assert r.returncode == 0, r.stderr
        assert _services(swarm, p.name) == {}
        assert swarm.volumes.get(volume)  # the data stays unless asked
        r = p.cli("down", "--target", "swarm", "--volumes")
        assert r.returncode == 0, r.stderr
        assert [v.name for v in swarm.volumes.list(filters={"label": f"{NS}={p.name}"})] == []
    finally:
        subprocess.run(["docker", "stack", "rm", p.name], capture_output=True, timeout=60)
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda p=p: not swarm.containers.list(all=True, sparse=True, filters={"label": f"{NS}={p.name}"}),
                timeout=60,
                what="stack containers to go",
            )
        with contextlib.suppress(docker.errors.APIError):
            swarm.volumes.get(volume).remove()
