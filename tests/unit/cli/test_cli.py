"""The CLI without an engine: init, render, bad input, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

BAD_FLAGS = [
    ["render", "--replicas", "0"],
    ["render", "--replicas", "1000"],
    ["render", "--replicas", "x"],
    ["render", "--port", "70000"],
    ["render", "--port", "8080; include /etc/passwd"],
    ["render", "--strategy", "fastest"],
    ["up", "--replicas", "-1"],
    ["up", "--port", "0"],
    ["probe", "--requests", "0"],
    ["probe", "--concurrency", "0"],
    ["probe", "--path", "no-slash"],
    ["probe", "--header", "novalue"],
    ["probe", "--strategy", "x"],
]


def tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


@pytest.fixture
def project(tmp_path):
    r = run_cli(["init", "proj"], tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path / "proj"


def test_help_is_plain_and_fast_to_import():
    r = subprocess.run([sys.executable, "-m", "scaleout", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("init", "render", "up", "probe", "status", "down"):
        assert cmd in r.stdout
    # heavy libraries stay out of start-up
    code = ("import sys, scaleout.cli.app; "
            "print(sorted(m for m in ('docker','httpx','jinja2','yaml','pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}).stdout
    assert out.strip() == "[]"


def test_the_cli_process_skips_the_exit_time_collections_and_pydantics_plugin_scan(project):
    """What a cold `up` saves at both ends of the process: the objects alive at the end are frozen
    (the interpreter's last collections skip them), pydantic scans for no plugins."""
    code = ("import atexit, gc, os, sys; atexit.register(lambda: print("
            "'frozen', gc.get_freeze_count(), os.environ.get('PYDANTIC_DISABLE_PLUGINS'))); "
            "import scaleout.cli.app; sys.argv = ['scaleout', 'render']; scaleout.cli.app.main()")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert words[0] == "frozen" and int(words[1]) > 10_000 and words[2] == "__all__", r.stdout
    # in-process callers (tests, embedders) keep their garbage collector as it was
    code = "import gc, scaleout.cli.app; scaleout.cli.app.main(['--version']); print(gc.get_freeze_count())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.split()[-1] == "0", r.stdout + r.stderr


def test_init_scaffolds_a_project(project):
    for rel in ("scaleout.yaml", "backend/app.py", "backend/Dockerfile", "public/offline.html", ".gitignore"):
        assert (project / rel).is_file(), rel
    text = (project / "scaleout.yaml").read_text()
    assert "name: proj" in text and "# " in text  # commented


def test_init_node_template(tmp_path):
    r = run_cli(["init", "n", "--template", "node"], tmp_path)
    assert r.returncode == 0
    assert (tmp_path / "n" / "backend" / "server.js").is_file()
    assert "ARG BASE_IMAGE" in (tmp_path / "n" / "backend" / "Dockerfile").read_text()


def test_init_refuses_to_overwrite(project, tmp_path):
    (project / "backend" / "app.py").write_text("# mine\n")
    r = run_cli(["init", "proj"], tmp_path)
    assert r.returncode == 6
    assert "would overwrite" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert (project / "backend" / "app.py").read_text() == "# mine\n"
    r = run_cli(["init", "proj", "--force"], tmp_path)
    assert r.returncode == 0
    assert (project / "backend" / "app.py").read_text() != "# mine\n"


def test_init_unknown_template(tmp_path):
    r = run_cli(["init", "x", "--template", "cobol"], tmp_path)
    assert r.returncode == 2 and "--template" in r.stderr
    assert not (tmp_path / "x").exists()


def test_render_writes_only_inside_dot_scaleout(project):
    before = tree(project)
    r = run_cli(["render", "--replicas", "4"], project)
    assert r.returncode == 0, r.stderr
    new = tree(project) - before
    assert new and all(p.startswith(".scaleout") for p in new)
    compose = (project / ".scaleout" / "docker-compose.yml").read_text()
    assert "backend-4:" in compose and "backend-5:" not in compose
    assert "127.0.0.1:8080:80" in compose
    assert "docker.sock" not in compose


def test_render_refuses_hand_edited_files(project):
    assert run_cli(["render"], project).returncode == 0
    conf = project / ".scaleout" / "nginx" / "nginx.conf"
    conf.write_text(conf.read_text() + "# my tweak\n")
    r = run_cli(["render"], project)
    assert r.returncode == 6
    assert ".scaleout/nginx/nginx.conf" in r.stderr and "--force" in r.stderr
    assert conf.read_text().endswith("# my tweak\n")
    assert run_cli(["render", "--force"], project).returncode == 0
    assert not conf.read_text().endswith("# my tweak\n")


@pytest.mark.parametrize("args", BAD_FLAGS, ids=[" ".join(a) for a in BAD_FLAGS])
def test_bad_flags_exit_2_without_traceback_or_files(project, args):
    before = tree(project)
    r = run_cli(args, project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.strip()
    assert tree(project) == before


@pytest.mark.parametrize(
    "text, key",
    [
        ("backend:\n  port: 99999\n", "backend.port"),
        ("balancer: [1, 2]\n", "balancer"),
        ("static:\n  dir: ../../etc\n", "static.dir"),
        ("name: 'x\ny'\n", "name"),
        ("backend: {replicas: 0}\n", "backend.replicas"),
        ("balancer:\n  bind: '0.0.0.0\n  listen 9999'\n", "balancer.bind"),
        ("{{ evil }}: 1\n", "not valid YAML"),
        ("'{{ evil }}': 1\n", "unknown key"),
        ("", None),
    ],
)
def test_bad_config_exit_2_names_key_and_writes_nothing(project, text, key):
    (project / "scaleout.yaml").write_text(text)
    before = tree(project)
    if key is None:  # an empty file is valid: all defaults (render only: `up` would start a stack)
        assert run_cli(["render"], project).returncode == 0
        return
    for cmd in (["render"], ["up"]):
        r = run_cli(cmd, project)
        assert r.returncode == 2, r.stderr
        assert "scaleout.yaml" in r.stderr and key in r.stderr and "Traceback" not in r.stderr
        assert tree(project) == before


def test_missing_config(tmp_path):
    r = run_cli(["render"], tmp_path)
    assert r.returncode == 2 and "scaleout.yaml: not found" in r.stderr and "scaleout init" in r.stderr


def test_probe_refuses_remote_targets(project, tmp_path):
    # refused before anything else: no Docker engine is needed to say no
    r = run_cli(["probe", "--url", "http://192.0.2.10:8080"], project, {"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 2
    assert "--allow-remote" in r.stderr and "Traceback" not in r.stderr


def test_second_up_fails_clearly_while_locked(project):
    from scaleout.files import project_lock

    with project_lock(project):
        r = run_cli(["up"], project)
    assert r.returncode == 6
    assert "another scaleout command" in r.stderr and "Traceback" not in r.stderr


def test_global_options_after_the_command(project):
    r = run_cli(["render", "-q", "-C", str(project)], project.parent)
    assert r.returncode == 0, r.stderr


def test_the_strategy_of_the_last_up_is_remembered(tmp_path):
    from scaleout.targets import applied_strategy, remember_strategy

    assert applied_strategy(tmp_path) is None
    remember_strategy(tmp_path, "least_conn")
    assert applied_strategy(tmp_path) == "least_conn"
    (tmp_path / ".scaleout" / "strategy").write_text("nonsense\n")
    assert applied_strategy(tmp_path) is None


@pytest.mark.parametrize("edit, key", [
    (("  dir: public", "  dir: no-such-folder"), "static.dir"),
    (("  build: backend", "  build: nowhere"), "backend.build"),
])
def test_folders_named_in_the_config_must_exist(project, edit, key):
    cfg = project / "scaleout.yaml"
    assert edit[0] in cfg.read_text()
    cfg.write_text(cfg.read_text().replace(*edit))
    before = tree(project)
    for cmd in (["render"], ["up"]):
        r = run_cli(cmd, project)
        assert r.returncode == 2, r.stderr
        assert key in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.stderr
        assert tree(project) == before
