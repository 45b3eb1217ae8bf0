"""Services beside the replicas on a real engine: a Redis every replica shares (the python-redis and
node-redis templates), health-gated start, data that survives `down`/`up` and goes with
`down --volumes`, a service that never becomes healthy, rescales that leave services alone."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import LOCAL_IMAGE

pytestmark = pytest.mark.e2e
REDIS_IMAGE = "scaleout-local/redis:1"


@pytest.fixture
def redis_image(docker_engine):
    try:
        docker_engine.images.get(REDIS_IMAGE)
    except Exception:  # noqa: BLE001
        pytest.fail(f"image {REDIS_IMAGE} is missing: run scripts/setup-service-images.sh")
    return REDIS_IMAGE


def counts(url: str, n: int, client: httpx.Client | None = None) -> list[tuple[str, int]]:
    """n visits of one session (one cookie jar): (replica, count) of each."""
    own = client is None
    client = client or httpx.Client(trust_env=False, timeout=10)
    out = []
    try:
        for _ in range(n):
            r = client.get(url + "/api/count")
            assert r.status_code == 200, r.text
            body = r.json()
            out.append((body["backend"], body["count"]))
    finally:
        if own:
            client.close()
    return out


def containers(engine, project: str) -> dict[str, object]:
    return {c.labels["com.docker.compose.service"]: c
            for c in engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}


def volumes(engine, project: str) -> list[str]:
    return [v.name for v in engine.volumes.list(filters={"label": f"com.docker.compose.project={project}"})]


def test_replicas_share_state_in_a_redis_service(make_project, docker_engine, redis_image):
    p = make_project("python-redis")
    p.env["REDIS_IMAGE"] = redis_image
    r = p.cli("up")
    assert r.returncode == 0, r.stderr
    assert "redis is healthy" in r.stderr
    assert r.stderr.index("redis is healthy") < r.stderr.index("backend-1 is healthy")

    # the lesson of scaling out: three replicas, one session, a count that keeps going up
    with httpx.Client(trust_env=False, timeout=10) as session:
        seen = counts(p.url, 9, session)
    assert [c for _, c in seen] == list(range(1, 10)), seen
    assert len({b for b, _ in seen}) == 3, seen

    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert [s["service"] for s in st["services"]] == ["redis"] and st["services"][0]["health"] == "healthy"
    assert all(s["service"] != "redis" for s in st["replicas"])

    # a rescale never restarts the service
    redis_id = containers(docker_engine, p.name)["redis"].id
    assert p.cli("up", "--replicas", "2", "-q").returncode == 0
    assert containers(docker_engine, p.name)["redis"].id == redis_id

    # and the probe passes on it
    probe = p.cli("probe", "-n", "300")
    assert probe.returncode == 0, probe.stdout + probe.stderr

    # data survives down/up: the named volume stays
    with httpx.Client(trust_env=False, timeout=10) as session:
        before = counts(p.url, 1, session)[0][1]
        assert p.cli("down").returncode == 0
        assert volumes(docker_engine, p.name), "down removed the named volume"
        assert p.cli("up", "-q").returncode == 0
        assert counts(p.url, 1, session)[0][1] == before + 1

    # down --volumes removes it: a new stack starts from nothing
    assert p.cli("down", "--volumes").returncode == 0
    assert volumes(docker_engine, p.name) == []
    assert p.cli("up", "-q").returncode == 0
    assert counts(p.url, 1)[0][1] == 1


def test_node_redis_template_shares_state(make_project, redis_image):
    p = make_project("node-redis", replace={"replicas: 3": "replicas: 2"})
    p.env["REDIS_IMAGE"] = redis_image
    r = p.cli("up", "-q")
    assert r.returncode == 0, r.stderr
    seen = counts(p.url, 4)
    assert [c for _, c in seen] == [1, 2, 3, 4] and len({b for b, _ in seen}) == 2, seen


def test_a_service_that_never_gets_healthy_stops_up_before_any_replica(make_project, docker_engine):
    bad = (
        "balancer:\n  # Published"
    )
    p = make_project(replace={"balancer:\n  # Published": (
        "services:\n"
        "  db:\n"
        f"    image: {LOCAL_IMAGE}\n"
        "    command: [\"sh\", \"-c\", \"echo starting the database; echo disk is full; sleep 600\"]\n"
        "    healthcheck: {test: [\"CMD\", \"false\"], interval: 1s, timeout: 1s, retries: 2}\n\n" + bad)})
    r = p.cli("up", "--timeout", "60")
    assert r.returncode == 5, r.stderr
    assert "service db" in r.stderr and "disk is full" in r.stderr and "Traceback" not in r.stderr
    assert [s for s in containers(docker_engine, p.name) if s.startswith("backend-")] == []
