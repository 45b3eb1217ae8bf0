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
    # the files appear after the config was checked (which refuses them, below): the export skips them itself
    cfg = load_config(project, env={})
    static = project / "public"
    (static / "static" / ".env").write_text("SECRET=1\n")
    (static / "sub" / ".git").mkdir(parents=True)
    (static / "sub" / ".git" / "config").write_text("x")
    (static / ".hidden.css").write_text("x")
    (static / "conf").mkdir()
    (static / "conf" / "svc.env").write_text("TOKEN=2\n")
    files = read_static_files(cfg.model_copy(update={"backend": cfg.backend.model_copy(
        update={"env_file": ("public/conf/svc.env",)})}))
    assert not any(rel.startswith(".") or "/." in rel for rel in files), sorted(files)
    assert "static/app.css" in files
    assert "conf/svc.env" not in files and "offline.html" in files


def test_yaml_of_the_rendered_nginx_stays_loadable(project):
    # the deny location holds no character that breaks the k8s ConfigMap's YAML
    cfg = _with(project, "")
    assert "deny all;" in yaml.safe_dump({"nginx.conf": render_nginx(cfg)})


@pytest.mark.parametrize("rel", [".env.production", "config/.env", "deep/er/app.env", "certs/server.pem", "tls.KEY",
                                 "id_rsa", "keys/id_ed25519", ".npmrc", ".netrc", "admin/.htpasswd", "sub/.git",
                                 "home/.ssh", ".aws", "store.p12"])
def test_a_file_whose_name_says_secret_anywhere_under_static_dir_is_refused(project, rel):
    path = project / "public" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith((".git", ".ssh", ".aws")):
        path.mkdir()
        (path / "config").write_text("x")
    else:
        path.write_text("SECRET=1\n")
    with pytest.raises(ConfigError) as err:
        load_config(project, env={})
    assert f"static.dir: public/{rel}: the name says it holds a secret" in str(err.value), str(err.value)
    assert "move it out of public/" in str(err.value)


def test_a_link_named_like_a_secret_is_refused_and_never_followed(project, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (project / "public" / "id_rsa").symlink_to(tmp_path / "elsewhere")
    (project / "public" / "loop").symlink_to(project / "public")  # followed, this would never end
    with pytest.raises(ConfigError, match="public/id_rsa: the name says"):
        load_config(project, env={})


def test_public_files_with_nearby_names_stay_allowed(project):
    for rel in ("id_rsa.pub", "keys.html", "env.js", "environment.css", "pem/readme.txt", ".well-known/security.txt",
                "docs/dotenv.md"):
        path = project / "public" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert load_config(project, env={}).static.dir == "public"


def test_many_secret_files_are_named_five_at_most(project):
    for i in range(8):
        (project / "public" / f"k{i}.pem").write_text("x")
    with pytest.raises(ConfigError) as err:
        load_config(project, env={})
    assert "public/k0.pem, public/k1.pem, public/k2.pem, public/k3.pem, public/k4.pem ...:" in str(err.value)


@pytest.mark.timeout(60)
def test_a_crafted_deep_tree_under_static_dir_is_refused_without_a_traceback(project):
    import os

    here = os.getcwd()
    os.chdir(project / "public")
    try:
        for _ in range(1100):  # deeper than Python's recursion limit
            os.mkdir("a")
            os.chdir("a")
    finally:
        os.chdir(here)
    try:
        with pytest.raises(ConfigError, match=r"static.dir: public/a/a/.*: folders nested deeper than 64 levels"):
            load_config(project, env={})
    finally:  # removed from the bottom up: pytest's own (recursive) cleanup of tmp_path would fail on it
        deepest = project / "public" / "/".join(["a"] * 1100)
        for path in (deepest, *deepest.parents):
            if path == project / "public":
                break
            path.rmdir()
