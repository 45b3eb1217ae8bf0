"""Secrets are never published by the balancer or copied by `export k8s`: static.dir may not be the
project (or a hidden folder, or a folder holding .env, env files, .git/, .scaleout/); a route may not name
a hidden file; nginx denies hidden names under folder routes; the export skips hidden and env files."""

from __future__ import annotations

import pytest
import yaml

from scaleout.config.load import load_config
from scaleout.errors import ConfigError
from scaleout.render.k8s import read_static_files
from scaleout.render.nginx import render_nginx


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "p"
    (p / "public" / "static").mkdir(parents=True)
    (p / "public" / "offline.html").write_text("<p>offline</p>")
    (p / "public" / "static" / "app.css").write_text("p{}")
    (p / "scaleout.yaml").write_text("name: p\nbackend: {image: app:1}\n")
    return p


def _with(project, text: str):
    (project / "scaleout.yaml").write_text("name: p\nbackend: {image: app:1}\n" + text)
    return load_config(project, env={})


@pytest.mark.parametrize("static, message", [
    ("{dir: '.'}", "is the project folder itself"),
    ("{dir: .git}", "is a hidden folder"),
    ("{dir: .scaleout/tls}", "is a hidden folder"),
    ("{dir: public/.secret}", "is a hidden folder"),
])
def test_a_static_dir_that_publishes_the_project_is_refused(project, static, message):
    with pytest.raises(ConfigError, match=message) as info:
        _with(project, f"static: {static}\n")
    assert "static.dir" in str(info.value)


@pytest.mark.parametrize("marker", [".env", ".git", ".scaleout", "scaleout.yaml"])
def test_a_static_dir_holding_a_projects_secrets_is_refused(project, marker):
    (project / "site").mkdir()
    (project / "site" / marker).write_text("x")
    with pytest.raises(ConfigError, match=f"static.dir: site/ holds {marker}"):
        _with(project, "static: {dir: site}\n")


def test_a_static_dir_holding_an_env_file_is_refused(project):
    (project / "public" / "conf").mkdir()
    (project / "public" / "conf" / "app.env").write_text("TOKEN=x\n")
    with pytest.raises(ConfigError, match="holds the env file public/conf/app.env"):
        _with(project, "services:\n  cache:\n    image: redis:7\n    env_file: public/conf/app.env\n")


def test_a_link_to_the_project_as_static_dir_is_refused(project):
    (project / "site").symlink_to(".")
    with pytest.raises(ConfigError, match="static.dir"):
        _with(project, "static: {dir: site}\n")


@pytest.mark.parametrize("key, value", [
    ("routes", "['/.env']"), ("routes", "['/.git/']"), ("routes", "['/static/.htpasswd']"),
    ("routes", "['/a/.ssh/id_rsa']"), ("service_workers", "['/.sw.js']"), ("offline_page", "/.offline.html"),
])
def test_routes_to_hidden_files_are_refused(project, key, value):
    with pytest.raises(ConfigError, match=f"static.{key}.*hidden file or folder"):
        _with(project, f"static: {{{key}: {value}}}\n")


def test_well_known_stays_allowed_and_nginx_denies_hidden_names_below_folder_routes(project):
    cfg = _with(project, "static: {routes: ['/static/', '/.well-known/', '/offline.html']}\n")
    text = render_nginx(cfg)
    deny = text.index('location ~ "^(?:/static/|/\\.well\\-known/)(?:.*/)?\\." {')
    assert "deny all;" in text[deny:deny + 120]
    # the first regular-expression location: nginx takes the first that matches
    assert text.index("location ~") == deny


def test_export_k8s_reads_no_hidden_file_and_no_env_file(project):
    static = project / "public"
    (static / "static" / ".env").write_text("SECRET=1\n")
    (static / "sub" / ".git").mkdir(parents=True)
    (static / "sub" / ".git" / "config").write_text("x")
    (static / ".hidden.css").write_text("x")
    (static / "conf").mkdir()
    (static / "conf" / "svc.env").write_text("TOKEN=2\n")
    cfg = load_config(project, env={})
    files = read_static_files(cfg.model_copy(update={"backend": cfg.backend.model_copy(
        update={"env_file": ("public/conf/svc.env",)})}))
    assert not any(rel.startswith(".") or "/." in rel for rel in files), sorted(files)
    assert "static/app.css" in files
    assert "conf/svc.env" not in files and "offline.html" in files


def test_yaml_of_the_rendered_nginx_stays_loadable(project):
    # the deny location holds no character that breaks the k8s ConfigMap's YAML
    cfg = _with(project, "")
    assert "deny all;" in yaml.safe_dump({"nginx.conf": render_nginx(cfg)})
