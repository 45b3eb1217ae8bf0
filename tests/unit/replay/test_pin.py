"""The pin route is rendered only with a secret; the secret file is 0600, made once and removed by down."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.render.nginx import render_nginx
from scaleout.replay.secret import SECRET_FILE, ensure_secret, forget_secret, read_secret, save_secret


def _cfg(tmp_path: Path):
    return parse_config("name: rp\nbackend:\n  build: .\n  port: 8000\n  replicas: 2\n", tmp_path)


def test_no_secret_no_route(tmp_path):
    text = render_nginx(_cfg(tmp_path))
    assert "scaleout_pin" not in text and "X-Scaleout-Pin" not in text


def test_route_keys_hold_the_secret(tmp_path):
    secret = "ab" * 32
    text = render_nginx(_cfg(tmp_path), pin=secret)
    assert f'"{secret}:backend-1" backend-1;' in text and f'"{secret}:backend-2" backend-2;' in text
    assert text.index("map_hash_bucket_size") < text.index("map $http_upgrade")
    assert 'proxy_set_header X-Scaleout-Pin "";' in text


def test_bad_secret_is_refused(tmp_path):
    with pytest.raises(ValueError):
        render_nginx(_cfg(tmp_path), pin='x"; }')


def test_secret_made_once_0600_and_forgotten(tmp_path):
    first = ensure_secret(tmp_path)
    assert ensure_secret(tmp_path) == first == read_secret(tmp_path)
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    forget_secret(tmp_path)
    assert read_secret(tmp_path) is None
    assert ensure_secret(tmp_path) != first


def _locations(text: str, tmp_path: Path) -> dict[str, list[dict]]:
    """location name -> its directives, from crossplane's parse of the rendered nginx.conf."""
    import crossplane

    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    parsed = crossplane.parse(str(conf), single=True, check_ctx=False, check_args=False)

    def walk(block):
        for d in block:
            if d["directive"] == "location":
                yield " ".join(d["args"]), d.get("block", [])
            yield from walk(d.get("block", []))

    return dict(walk(parsed["config"][0]["parsed"]))


def test_every_location_to_the_replicas_drops_the_pin_header(tmp_path):
    locations = _locations(render_nginx(_cfg(tmp_path), pin="ab" * 32), tmp_path)
    to_replicas = {name: block for name, block in locations.items()
                   if any(d["directive"] == "proxy_pass" for d in block)}
    assert {"/", "@websocket", "@pinned"} <= set(to_replicas)
    for name, block in to_replicas.items():
        headers = [d["args"] for d in block if d["directive"] == "proxy_set_header"]
        assert ["X-Scaleout-Pin", ""] in headers, f"location {name} passes X-Scaleout-Pin to the replica"


def test_render_writes_the_nginx_conf_up_writes(tmp_path):
    from scaleout.config.load import load_config
    from scaleout.render import plan_for
    from tests.helpers import run_cli

    assert run_cli(["init", "proj"], tmp_path).returncode == 0
    project = tmp_path / "proj"
    assert run_cli(["render"], project).returncode == 0
    secret = read_secret(project)
    assert secret is not None and (project / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    conf = (project / ".scaleout" / "nginx" / "nginx.conf").read_text()
    up_plan = plan_for("compose", load_config(project, env={}), None, pin=secret)  # what `up` renders
    assert conf == up_plan.files[".scaleout/nginx/nginx.conf"]
    assert run_cli(["render"], project).returncode == 0 and read_secret(project) == secret  # kept, not rotated
    assert secret not in "".join(p.read_text() for p in project.rglob("*")
                                 if p.is_file() and ".scaleout" not in p.parts)


def test_bench_renders_the_pin_route_up_renders(tmp_path, monkeypatch):
    """The stack `bench` leaves running answers `replay`: its nginx.conf carries the pin route and the secret."""
    import scaleout.probe.bench as bench
    from scaleout.cli.app import main
    from scaleout.errors import NotRunningError
    from tests.helpers import run_cli

    assert run_cli(["init", "proj"], tmp_path).returncode == 0
    project = tmp_path / "proj"
    plans = []

    def fake_bench(cfg, counts, render_files, **kw):  # no engine: look at what each size would render
        plans.append(render_files(cfg))
        raise NotRunningError("stopped here by the test")

    monkeypatch.setattr(bench, "run_bench", fake_bench)
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--replicas", "2"])
    assert exit_.value.code == 7
    secret = read_secret(project)
    assert secret is not None and f'"{secret}:backend-1"' in plans[0].files[".scaleout/nginx/nginx.conf"]


def test_secret_is_never_written_read_or_removed_through_a_link(tmp_path):
    from scaleout.errors import UnsafePathError

    outside, project = tmp_path / "outside", tmp_path / "proj"
    outside.mkdir()
    project.mkdir()
    (outside / "replay-secret").write_text("cd" * 32 + "\n")
    (project / ".scaleout").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        save_secret(project, "ab" * 32)
    assert read_secret(project) is None
    forget_secret(project)
    assert (outside / "replay-secret").read_text() == "cd" * 32 + "\n"
