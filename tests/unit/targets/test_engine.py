"""Engine detection and Podman's quirks without an engine: recorded `GET /version` answers, socket discovery,
the CLI environment, the messages of engine errors (targets/engine.py, targets/runner.py), the health of a
container without a check (targets/views.py) and image identity (targets/images.py)."""

from __future__ import annotations

import pytest

from scaleout.errors import StackError
from scaleout.targets import engine
from scaleout.targets.images import normalise_ref, same_ref
from scaleout.targets.views import ContainerView

# Podman 4.3.1 (Debian 12) and Docker 20.10 answers, trimmed to the keys read
PODMAN_VERSION = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1", "Details": {"APIVersion": "4.3.1"}},
                   {"Name": "Conmon", "Version": "conmon version 2.1.6"}],
    "Version": "4.3.1", "ApiVersion": "1.41",
}
DOCKER_VERSION = {"Components": [{"Name": "Engine", "Version": "20.10.24+dfsg1"}], "Version": "20.10.24+dfsg1",
                  "ApiVersion": "1.41"}
HOST = engine.EngineHost("unix:///run/podman/podman.sock", "Podman's rootful socket")


@pytest.fixture
def engine_is(monkeypatch):
    def set_(version: dict, host: engine.EngineHost = HOST) -> engine.EngineInfo:
        info = engine.identify(version, host)
        monkeypatch.setattr(engine, "_current", info)
        return info

    return set_


def test_identify_names_podman_and_docker():
    podman = engine.identify(PODMAN_VERSION, HOST)
    assert (podman.name, podman.version, podman.podman, podman.runs_healthchecks) == (
        "Podman Engine", "4.3.1", True, False)
    assert podman.label == "Podman Engine 4.3.1" and podman.libpod_api == "4.3.1"
    docker = engine.identify(DOCKER_VERSION, HOST)
    assert (docker.label, docker.podman, docker.runs_healthchecks) == ("Docker Engine 20.10.24+dfsg1", False, True)
    assert podman.to_dict()["name"] == "Podman Engine" and podman.to_dict()["host"] == HOST.url


def test_find_host_prefers_docker_host_then_dockers_then_podmans_sockets():
    assert engine.find_host({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, lambda p: True).url == "tcp://127.0.0.1:2375"
    both = engine.find_host({}, lambda p: True)
    assert both.url == "unix:///var/run/docker.sock" and not both.from_env
    rootful = engine.find_host({}, lambda p: p == "/run/podman/podman.sock")
    assert rootful.url == "unix:///run/podman/podman.sock" and rootful.looks_like_podman
    rootless = engine.find_host({"XDG_RUNTIME_DIR": "/run/user/1000"},
                                lambda p: p == "/run/user/1000/podman/podman.sock")
    assert rootless.url == "unix:///run/user/1000/podman/podman.sock"
    assert rootless.source == "Podman's rootless socket"
    assert engine.find_host({}, lambda p: False).url == "unix:///var/run/docker.sock"


def test_cli_env_builds_classic_on_podman_and_points_the_cli_at_a_found_socket(engine_is):
    assert engine.cli_env(engine.identify(PODMAN_VERSION, HOST)) == {
        "DOCKER_HOST": "unix:///run/podman/podman.sock", "DOCKER_BUILDKIT": "0"}
    from_env = engine.EngineHost("unix:///run/podman/podman.sock", "DOCKER_HOST")
    assert engine.cli_env(engine.identify(PODMAN_VERSION, from_env)) == {"DOCKER_BUILDKIT": "0"}
    dockers = engine.EngineHost("unix:///var/run/docker.sock", "Docker's default socket")
    assert engine.cli_env(engine.identify(DOCKER_VERSION, dockers)) == {}


def test_a_child_gets_classic_builds_on_podman(engine_is):
    from scaleout.targets.childenv import child_environment

    engine_is(PODMAN_VERSION, engine.EngineHost("unix:///run/podman/podman.sock", "DOCKER_HOST"))
    env = child_environment(engine.cli_env(), environ={"PATH": "/usr/bin"})
    assert env["DOCKER_BUILDKIT"] == "0" and env["PATH"] == "/usr/bin"


def test_an_rlimit_failure_names_the_engine_and_the_fix(engine_is):
    from scaleout.targets.runner import raise_for_output

    engine_is(PODMAN_VERSION)
    tail = ["Error response from daemon: crun: setrlimit `RLIMIT_NPROC`: Operation not permitted: "
            "OCI permission denied", "Error: error setting rlimit type 7: operation not permitted"]
    with pytest.raises(StackError) as err:
        raise_for_output("starting the replicas", 1, tail)
    assert "on Podman Engine 4.3.1" in str(err.value)
    assert "default_ulimits" in err.value.hint and "containers.conf" in err.value.hint
    with pytest.raises(StackError) as other:
        raise_for_output("starting the replicas", 1, ["no such image"])
    assert "on Podman Engine 4.3.1" in str(other.value) and other.value.hint is None


def test_sdk_errors_name_the_engine(engine_is):
    import docker.errors

    from scaleout.targets.runner import engine_errors

    engine_is(DOCKER_VERSION, engine.EngineHost("unix:///var/run/docker.sock", "Docker's default socket"))
    with pytest.raises(StackError) as err, engine_errors("starting x"):
        raise docker.errors.APIError("500", explanation="error setting rlimit type 7: operation not permitted")
    assert "Docker Engine 20.10.24+dfsg1 at unix:///var/run/docker.sock refused" in str(err.value)
    assert "default_ulimits" in err.value.hint


def test_a_container_without_a_health_check_is_none_on_podman_too():
    podman_no_check = {"State": {"Status": "running", "Health": {"Status": "", "FailingStreak": 0}},
                       "Config": {"Labels": {}}}
    podman_not_run_yet = {"State": {"Status": "running", "Health": {"Status": ""}},
                          "Config": {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost/"]}}}
    docker_no_check = {"State": {"Status": "running"}, "Config": {}}
    disabled = {"State": {"Status": "running", "Health": {"Status": ""}}, "Config": {"Healthcheck": {"Test": ["NONE"]}}}
    assert [ContainerView(attrs).health for attrs in (podman_no_check, podman_not_run_yet, docker_no_check,
                                                       disabled)] == ["none", "starting", "none", "none"]


@pytest.mark.parametrize(("a", "b"), [
    ("scaleout-local/bookworm:1", "localhost/scaleout-local/bookworm:1"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("nginx", "docker.io/library/nginx:latest"),
    ("user/app", "index.docker.io/user/app:latest"),
])
def test_one_image_spelled_two_ways_is_the_same(a, b):
    assert same_ref(a, b)


def test_different_images_differ():
    assert not same_ref("nginx:1.27", "nginx:1.26")
    assert not same_ref("registry.example:5000/nginx:1", "nginx:1")
    assert normalise_ref("registry.example:5000/nginx") == "registry.example:5000/nginx:latest"


def test_the_swarm_target_on_podman_says_it_is_not_supported(engine_is, monkeypatch):
    from scaleout.errors import UsageError
    from scaleout.targets import swarm

    engine_is(PODMAN_VERSION)
    monkeypatch.setattr(swarm, "docker_client", lambda: object())
    with pytest.raises(UsageError) as err:
        swarm.SwarmStack._client(None)
    assert "Podman Engine 4.3.1 does not have" in str(err.value) and "Compose target" in err.value.hint


class _Response:
    def __init__(self, status_code: int, text: str = "") -> None:
        self.status_code, self.text = status_code, text


class _Api:
    base_url = "http+docker://localhost"

    def __init__(self, answers: dict[str, _Response]) -> None:
        self.answers, self.calls = answers, []

    def get(self, url: str, timeout: float):
        self.calls.append(url)
        return self.answers[url.rsplit("/", 2)[-2]]


class _Client:
    def __init__(self, answers: dict[str, _Response]) -> None:
        self.api = _Api(answers)


class _Container:
    def __init__(self, cid: str) -> None:
        self.attrs = {"Id": cid, "State": {"Status": "running", "Health": {"Status": "starting"}},
                      "Config": {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000}}}


def test_podman_health_checks_run_through_libpod_and_a_container_removed_meanwhile_is_no_error():
    from scaleout.targets.podman import HealthDriver

    info = engine.identify(PODMAN_VERSION, HOST)
    client = _Client({"a": _Response(200, '{"Status": "healthy"}'),
                      "gone": _Response(404, "no container with name or ID gone found: no such container"),
                      "stopped": _Response(409, "container stopped is not running"),
                      "slow": _Response(500, '{"cause":"healthcheck command exceeded timeout of 2s"}')})
    driver = HealthDriver(client, info)
    for _ in range(4):  # a check that timed out is a failed check, however often: never the engine's refusal
        driver.last_run.clear()
        driver.drive([_Container("a"), _Container("gone"), _Container("stopped"), _Container("slow")])
    client.api.calls[4:] = []
    assert sorted(url.split("/libpod/containers/")[1] for url in client.api.calls) == [
        "a/healthcheck", "gone/healthcheck", "slow/healthcheck", "stopped/healthcheck"]
    assert all("/v4.3.1/libpod/" in url for url in client.api.calls)
    driver.drive([_Container("a")])  # not due again before its interval
    assert len(client.api.calls) == 4


def test_podman_refusing_to_run_a_health_check_again_and_again_fails_naming_the_engine():
    from scaleout.errors import UnhealthyError
    from scaleout.targets.podman import HealthDriver

    client = _Client({"a": _Response(500, "crun: error setting rlimit type 7: operation not permitted")})
    driver = HealthDriver(client, engine.identify(PODMAN_VERSION, HOST))
    for _ in range(2):  # once or twice may be a hiccup of a busy engine
        driver.last_run.clear()
        driver.drive([_Container("a")])
    driver.last_run.clear()
    with pytest.raises(UnhealthyError) as err:
        driver.drive([_Container("a")])
    assert "Podman Engine 4.3.1 does not run health checks by itself" in str(err.value)
    assert "error setting rlimit" in str(err.value) and "default_ulimits" in err.value.hint
