"""`scaleout export`: where it writes, what it refuses to overwrite, what it cleans up. No engine needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_cli


@pytest.fixture
def project(tmp_path) -> Path:
    r = run_cli(["init", "shop", "--name", "shop"], tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path / "shop"


def export(project: Path, *args: str):
    if args and args[0] == "k8s" and "--image" not in args:
        args = (*args, "--image", "registry.example.com/team/shop:1.0")
    return run_cli(["export", *args], project)


def test_k8s_export_needs_to_know_the_image(project):
    r = run_cli(["export", "k8s", "--out", "deploy/k8s"], project)
    assert r.returncode == 2 and "--image" in r.stderr and "Traceback" not in r.stderr
    assert not (project / "deploy").exists()


def test_k8s_export_writes_then_reports_unchanged(project):
    r = export(project, "k8s", "--out", "deploy/k8s")
    assert r.returncode == 0, r.stderr
    out = project / "deploy" / "k8s"
    assert sorted(p.name for p in out.iterdir()) == [".scaleout-export.json", "backend.yaml", "balancer.yaml"]
    assert "kubectl apply -f deploy/k8s" in r.stderr
    for name in ("backend.yaml", "balancer.yaml"):
        assert all(d["metadata"]["name"].startswith("shop-") for d in yaml.safe_load_all((out / name).read_text()))
    r = export(project, "k8s", "--out", "deploy/k8s")
    assert r.returncode == 0 and r.stderr.count("unchanged") == 2 and "wrote" not in r.stderr


def test_export_never_overwrites_an_edited_or_foreign_file_without_force(project):
    out = project / "deploy"
    out.mkdir()
    (out / "stack.yml").write_text("# my own stack file\n")
    r = export(project, "swarm", "--out", "deploy")
    assert r.returncode == 6, r.stderr
    assert "refusing to overwrite" in r.stderr and "stack.yml" in r.stderr and "--force" in r.stderr
    assert (out / "stack.yml").read_text() == "# my own stack file\n"
    assert not (out / "nginx.conf").exists()  # nothing half-written

    r = export(project, "swarm", "--out", "deploy", "--force")
    assert r.returncode == 0, r.stderr
    assert "services" in yaml.safe_load((out / "stack.yml").read_text())

    (out / "nginx.conf").write_text((out / "nginx.conf").read_text() + "# tuned by hand\n")
    r = export(project, "swarm", "--out", "deploy", "--replicas", "5")
    assert r.returncode == 6 and "nginx.conf" in r.stderr
    assert (out / "nginx.conf").read_text().endswith("# tuned by hand\n")


def test_a_new_config_rewrites_scaleouts_own_files_and_removes_stale_ones(project):
    assert export(project, "k8s", "--out", "k8s", "--balancer", "ingress").returncode == 0
    out = project / "k8s"
    assert (out / "ingress.yaml").exists()
    r = export(project, "k8s", "--out", "k8s", "--replicas", "6")  # back to the nginx balancer
    assert r.returncode == 0, r.stderr
    assert not (out / "ingress.yaml").exists() and "removed" in r.stderr
    deployment = next(d for d in yaml.safe_load_all((out / "backend.yaml").read_text()) if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 6
    manifest = json.loads((out / ".scaleout-export.json").read_text())
    assert manifest["kind"] == "k8s" and sorted(manifest["files"]) == ["backend.yaml", "balancer.yaml"]


@pytest.mark.parametrize("out, message", [
    (".", "is the project folder itself"),
    (".scaleout/k8s", "inside .scaleout/"),
    ("/", "filesystem root"),
    ("/etc/scaleout-k8s", "inside the system folder /etc"),
    ("scaleout.yaml", "exists and is not a folder"),
])
def test_unreasonable_out_folders_are_refused(project, out, message):
    r = export(project, "k8s", "--out", out)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not Path("/etc/scaleout-k8s").exists()


@pytest.mark.parametrize("args, message", [
    (["helm", "--out", "x"], "'helm' is not one of 'k8s', 'swarm'"),
    (["swarm", "--out", "x", "--balancer", "ingress"], "--balancer: only for `scaleout export k8s`"),
    (["k8s", "--out", "x", "--balancer", "traefik"], "--balancer: must be one of nginx, ingress"),
    (["k8s", "--out", "x", "--ingress-class", "nginx"], "--ingress-class: only with --balancer ingress"),
])
def test_bad_options_are_explained(project, args, message):
    r = export(project, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (project / "x").exists()


def test_exported_stack_file_is_the_one_up_deploys(project):
    """`up --target swarm` writes .scaleout/swarm/{stack.yml,nginx.conf}: the same text as the export."""
    from scaleout.config.load import load_config
    from scaleout.render import plan_for

    assert export(project, "swarm", "--out", "deploy/swarm").returncode == 0
    files = plan_for("swarm", load_config(project, env={})).files
    for name in ("stack.yml", "nginx.conf"):
        assert (project / "deploy" / "swarm" / name).read_text() == files[f".scaleout/swarm/{name}"]


def test_a_tampered_export_manifest_cannot_delete_outside_out(project, tmp_path):
    """The manifest lives in the user's folder: an entry climbing out of --out is ignored."""
    import hashlib
    import json

    assert export(project, "swarm", "--out", "deploy/swarm").returncode == 0
    victim = project / "victim.txt"
    victim.write_text("keep me\n")
    manifest = next((project / "deploy" / "swarm").glob(".scaleout-export*.json"))
    data = json.loads(manifest.read_text())
    data["files"]["../../victim.txt"] = hashlib.sha256(victim.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(data))
    assert export(project, "swarm", "--out", "deploy/swarm").returncode == 0
    assert victim.read_text() == "keep me\n"
