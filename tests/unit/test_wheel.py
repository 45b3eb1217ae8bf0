"""The wheel carries the templates, and an installed (not editable) scaleout finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    [whl] = out.glob("scaleout-*.whl")
    return whl


def test_wheel_contains_every_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"scaleout/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
                for p in (ROOT / "templates").rglob("*") if p.is_file()}
    assert expected and expected <= names, sorted(expected - names)
    assert "scaleout/cli/app.py" in names


def test_installed_package_renders_from_its_own_templates(wheel, tmp_path):
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    work = tmp_path / "work"
    work.mkdir()
    for args in (["init", "demo"], ["-C", "demo", "render", "--replicas", "2"]):
        r = subprocess.run([sys.executable, "-m", "scaleout", *args], cwd=work, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert (work / "demo" / "backend" / ".dockerignore").is_file()
    assert "backend-2:" in (work / "demo" / ".scaleout" / "docker-compose.yml").read_text()
    code = "import scaleout.render.templates as t; print(t.templates_dir())"
    where = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True).stdout
    assert where.startswith(str(site))
