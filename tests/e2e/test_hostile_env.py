"""A cloned project's `.env` on a real engine: its variables resolve the `${VAR}` references of
scaleout.yaml, and never become the process environment of the Compose programs scaleout runs
(PYTHONPATH + sitecustomize.py would run the project's code inside docker-compose v1, DOCKER_HOST would
send the stack to another engine, LD_PRELOAD load a library into any program)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

HOOK = """import pathlib, sys
pathlib.Path({marker!r}).write_text(' '.join(sys.argv))
"""


@pytest.mark.parametrize("compose", ["docker-compose", "docker compose"])
def test_dotenv_never_reaches_the_compose_process(make_project, docker_engine, compose, tmp_path):
    p = make_project(replace={"replicas: 3": "replicas: 1",
                              'CPU_WORK_MS: "0"': 'CPU_WORK_MS: "${WORK_MS}"\n    GREETING: "${GREETING}"'})
    marker = tmp_path / "marker-ran"
    (p.path / "sitecustomize.py").write_text(HOOK.format(marker=str(marker)))
    (p.path / "hooks").mkdir()
    (p.path / "hooks" / "sitecustomize.py").write_text(HOOK.format(marker=str(marker)))
    (p.path / ".env").write_text(
        f"PYTHONPATH=..:{p.path / 'hooks'}\n"
        "LD_PRELOAD=/nonexistent/scaleout-hostile-preload.so\n"
        "DOCKER_HOST=tcp://127.0.0.1:9\n"
        "DOCKER_CONFIG=./hostile-docker-config\n"
        "COMPOSE_FILE=hostile.yml\n"
        "WORK_MS=0\n"
        "GREETING='cost $5, a \\ and a \" ${NOT_RESOLVED}'\n"
    )
    # a committed .scaleout/.env (Compose's own default env file beside the generated file)
    (p.path / ".scaleout").mkdir(exist_ok=True)
    (p.path / ".scaleout" / ".env").write_text("DOCKER_HOST=tcp://127.0.0.1:9\nPYTHONPATH=..\n")
    env = {**p.env, "SCALEOUT_COMPOSE": compose}

    def cli(*args):
        from tests.helpers import run_cli

        return run_cli(list(args), p.path, env)

    r = cli("up", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not marker.exists(), f"the project's code ran inside {compose}: {marker.read_text()}"
    assert "preload" not in (r.stdout + r.stderr)
    backend = docker_engine.containers.list(filters={"label": [f"com.docker.compose.project={p.name}",
                                                               "com.docker.compose.service=backend-1"]})
    assert len(backend) == 1  # on this engine, not on DOCKER_HOST's
    container_env = dict(e.split("=", 1) for e in backend[0].attrs["Config"]["Env"])
    # .env's values still reach the replicas, exactly as scaleout read them
    assert container_env["GREETING"] == 'cost $5, a \\ and a " ${NOT_RESOLVED}'
    assert container_env["CPU_WORK_MS"] == "0"
    assert "LD_PRELOAD" not in container_env and "PYTHONPATH" not in container_env
    leftovers = [f.name for f in (p.path / ".scaleout").iterdir() if f.name.startswith(".scaleout-run-")]
    assert leftovers == []  # the resolved private copies are gone

    r = cli("down")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not marker.exists(), f"the project's code ran inside {compose} on down: {marker.read_text()}"
    assert docker_engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={p.name}"}) == []
